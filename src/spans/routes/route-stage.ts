/**
 * The route stage of the pipeline: every SERVER span, from every tracer (Go uprobes, syscall
 * tracepoints), passes here once, after assembly and before any sink, and leaves with its
 * `http.route`, `spanbridge.route.source` and the span name `{method} {route}`:
 *
 *   1. a framework route already on the span (Go's Request.Pattern) wins;
 *   2. else the most specific declared pattern of the process's selection (or the global ones);
 *   3. else the unmatched mode: heuristic (default), path, wildcard or unset;
 *   4. then the per-service route limit (route-limiter.ts) folds routes beyond it into one.
 *
 * Processes are registered with the selection that matched them (their resource is the key, as
 * spans carry it); a span of an unregistered resource gets the global policy.
 */
import type { Logger } from '../../log';
import type { SelfMetrics } from '../../metrics/counters';
import { httpSpanName } from '../http-semconv';
import { withName } from '../ids-span';
import type { Resource, Span } from '../span';
import { heuristicRoute } from './heuristic';
import { RouteMatcher, type RoutePattern } from './pattern';
import { RouteLimiter } from './route-limiter';
import { describePolicy, OVERFLOW_ROUTE, policyFor, WILDCARD_ROUTE, type RoutePolicy, type RouteSource, type RoutesSettings, type UnmatchedMode } from './route-policy';
import { routesDistinct, routesOverflow } from '../../metrics/catalogue';

export const ROUTES_OVERFLOW = routesOverflow.name;
export const ROUTES_DISTINCT = routesDistinct.name;
export const ROUTE_SOURCE_ATTRIBUTE = 'spanbridge.route.source';

interface Plan {
  readonly matcher: RouteMatcher | undefined;
  readonly unmatched: UnmatchedMode;
  /**
   * path -> [route, source] already resolved under this plan ('' route: none). Real traffic repeats
   * paths (/api/health, hot items), and a hit skips the matcher and the heuristic. Bounded: emptied
   * when full, so a scan of random paths costs one insert each and never more memory.
   */
  readonly cache: Map<string, readonly [string, RouteSource]>;
}

const PATH_CACHE_SIZE = 4096;

/** The declared or unmatched route of `path` under `plan` (and remembers it). */
function resolve(plan: Plan, path: string): readonly [string, RouteSource] {
  let out: readonly [string, RouteSource];
  const declared = plan.matcher?.match(path);
  if (declared !== undefined) {
    out = [declared, 'declared'];
  } else {
    switch (plan.unmatched) {
      case 'heuristic':
        out = [heuristicRoute(path), 'heuristic'];
        break;
      case 'path':
        out = [path, 'path'];
        break;
      case 'wildcard':
        out = [WILDCARD_ROUTE, 'wildcard'];
        break;
      case 'unset':
        out = ['', 'heuristic'];
        break;
    }
  }
  if (plan.cache.size >= PATH_CACHE_SIZE) plan.cache.clear();
  plan.cache.set(path, out);
  return out;
}

export class RouteStage {
  private readonly limiter: RouteLimiter;
  private readonly plans = new WeakMap<Resource, Plan>();
  /** One matcher per distinct pattern list (the global one, and each selection's own). */
  private readonly matchers = new Map<readonly RoutePattern[], RouteMatcher>();
  private readonly globalPlan: Plan;
  /** Plans of selections with their own `routes`, shared by the processes they select (one cache each). */
  private readonly selectionPlans = new Map<string, Plan>();
  /** The last name made and what made it: consecutive spans mostly share theirs (the same string,
   * so the comparison with the span's own name is mostly one pointer, no new string per span). */
  private lastMethod = '';
  private lastRoute = '';
  private lastName = '';

  constructor(
    private readonly settings: RoutesSettings,
    private readonly metrics: SelfMetrics,
    private readonly log?: Logger,
  ) {
    this.limiter = new RouteLimiter(settings.maxPerService);
    this.globalPlan = this.planOf(settings.global);
  }

  private planOf(policy: RoutePolicy): Plan {
    let matcher: RouteMatcher | undefined;
    if (policy.patterns.length > 0) {
      matcher = this.matchers.get(policy.patterns);
      if (!matcher) {
        matcher = new RouteMatcher(policy.patterns);
        this.matchers.set(policy.patterns, matcher);
      }
    }
    return { matcher, unmatched: policy.unmatched, cache: new Map() };
  }

  /**
   * Registers a traced process (by its resource) under the selection that matched it; returns how
   * its routes are obtained, for the start-up report. `framework` names a framework route source
   * the process has (e.g. Go's Request.Pattern).
   */
  register(resource: Resource, reason: string | undefined, framework?: string): string {
    const policy = policyFor(this.settings, reason);
    let plan = this.globalPlan;
    if (reason !== undefined && this.settings.bySelection[reason] !== undefined) {
      plan = this.selectionPlans.get(reason) ?? this.planOf(policy);
      this.selectionPlans.set(reason, plan);
    }
    this.plans.set(resource, plan);
    return describePolicy(policy, framework);
  }

  /** Sets the route of a SERVER span; other spans pass unchanged. Never throws on span content. */
  apply(span: Span): Span {
    if (span.kind !== 'SERVER') return span;
    const a = span.attributes;
    const method = a['http.request.method'];
    if (typeof method !== 'string') return span;
    const framework = a['http.route'];
    let route: string | undefined;
    let source: RouteSource;
    if (typeof framework === 'string' && framework !== '') {
      route = framework;
      source = 'framework';
    } else {
      const path = a['url.path'];
      if (typeof path !== 'string') return span;
      const plan = this.plans.get(span.resource) ?? this.globalPlan;
      const cached = plan.cache.get(path) ?? resolve(plan, path);
      if (cached[0] === '') return span;
      [route, source] = cached;
    }
    const service = String(span.resource.attributes['service.name'] ?? '');
    const admission = this.limiter.admit(service, route);
    if (admission.added) {
      routesDistinct.set(this.metrics, { service }, this.limiter.count(service));
    }
    if (admission.overflow) {
      source = 'overflow';
      routesOverflow.add(this.metrics, { service });
      if (admission.firstOverflow) {
        this.log?.warn(
          `routes: service '${service}' reached ${this.settings.maxPerService} distinct routes (routes.max_per_service); ` +
            `spans and RED metrics of further new routes get http.route=${OVERFLOW_ROUTE} (counted in ${ROUTES_OVERFLOW}). ` +
            'Declare patterns (routes.patterns) to group its paths.',
        );
      }
    }
    a['http.route'] = admission.route;
    a[ROUTE_SOURCE_ATTRIBUTE] = source;
    const name = this.nameOf(method, admission.route);
    return name === span.name ? span : withName(span, name);
  }

  private nameOf(method: string, route: string): string {
    if (method === this.lastMethod && route === this.lastRoute && this.lastName !== '') return this.lastName;
    const name = httpSpanName(method, route);
    this.lastMethod = method;
    this.lastRoute = route;
    this.lastName = name;
    return name;
  }
}
