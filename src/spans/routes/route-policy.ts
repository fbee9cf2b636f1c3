/**
 * How routes are obtained, as configured: the declared patterns and the unmatched-path mode, once
 * globally (`routes.*`) and optionally per selection (`selections[].routes`), plus the per-service
 * route limit. Also the words `doctor`, the start-up report and the attach table use for it.
 */
import type { RoutePattern } from './pattern';

/**
 * What a server span without a framework or declared route gets:
 *   heuristic  identifier-like segments replaced by placeholders (heuristic.ts), the default;
 *   path       the path itself (bounded only by the route limit);
 *   wildcard   `/**` for every unmatched path;
 *   unset      no http.route (span name `{method}`).
 */
export type UnmatchedMode = 'heuristic' | 'path' | 'wildcard' | 'unset';
export const UNMATCHED_MODES: readonly UnmatchedMode[] = ['heuristic', 'path', 'wildcard', 'unset'];

export const WILDCARD_ROUTE = '/**';
/** The route of requests beyond a service's route limit (never a real path: it has no leading /). */
export const OVERFLOW_ROUTE = '(overflow)';
export const DEFAULT_MAX_ROUTES_PER_SERVICE = 1000;

/** Where a span's http.route came from (`spanbridge.route.source`). */
export type RouteSource = 'framework' | 'declared' | 'heuristic' | 'path' | 'wildcard' | 'overflow';

export interface RoutePolicy {
  readonly patterns: readonly RoutePattern[];
  readonly unmatched: UnmatchedMode;
}

/** A selection entry's `routes`: what it sets replaces the global value for the processes it selects. */
export interface RouteOverrides {
  readonly patterns?: readonly RoutePattern[];
  readonly unmatched?: UnmatchedMode;
}

export interface RoutesSettings {
  readonly global: RoutePolicy;
  /** Keyed by the match reason a selection entry produces (`exe api`, `port 8080`, `pid 7`). */
  readonly bySelection: Readonly<Record<string, RouteOverrides>>;
  readonly maxPerService: number;
}

export const DEFAULT_ROUTES: RoutesSettings = {
  global: { patterns: [], unmatched: 'heuristic' },
  bySelection: {},
  maxPerService: DEFAULT_MAX_ROUTES_PER_SERVICE,
};

export function policyFor(settings: RoutesSettings, reason: string | undefined): RoutePolicy {
  const o = reason === undefined ? undefined : settings.bySelection[reason];
  return {
    patterns: o?.patterns ?? settings.global.patterns,
    unmatched: o?.unmatched ?? settings.global.unmatched,
  };
}

const UNMATCHED_WORDS: Record<UnmatchedMode, string> = {
  heuristic: 'heuristic (ids -> {id})',
  path: 'the path itself',
  wildcard: `${WILDCARD_ROUTE} (wildcard)`,
  unset: 'no route (unset)',
};

/**
 * How a process's routes are obtained, in order of precedence, e.g.
 * `Go ServeMux pattern (Request.Pattern) > 3 declared patterns > heuristic (ids -> {id})`.
 * `framework` names the framework source when the process has one.
 */
export function describePolicy(policy: RoutePolicy, framework?: string): string {
  const steps: string[] = [];
  if (framework) steps.push(framework);
  const n = policy.patterns.length;
  if (n > 0) steps.push(`${n} declared pattern${n === 1 ? '' : 's'}`);
  steps.push(UNMATCHED_WORDS[policy.unmatched]);
  return steps.join(' > ');
}
