/**
 * Declared route patterns (`routes.patterns`): parsing, validation and matching.
 *
 * Syntax, per path segment:
 *   `users`            a literal segment (matched exactly, case-sensitive)
 *   `{id}` or `:id`    one non-empty segment
 *   `*`                one non-empty segment (unnamed)
 *   `{rest...}`, `**`  the rest of the path, zero or more segments (last segment only)
 *
 * A path with or without a trailing slash matches the same pattern (`/users/42/` = `/users/42`).
 * The most specific pattern wins, decided left to right: at the first segment where two matching
 * patterns differ, a literal beats a parameter, which beats a rest wildcard (so `/users/me` beats
 * `/users/{id}`, and `/files/{id}` beats `/files/{path...}`). The matcher is a trie searched in that
 * order, so the first match found is the most specific one; the cost is per path segment, not per
 * pattern.
 */

export type SegmentKind = 'literal' | 'param' | 'rest';

export interface PatternSegment {
  readonly kind: SegmentKind;
  /** The literal text, or the parameter name ('' for `*` and `**`). */
  readonly text: string;
}

export interface RoutePattern {
  /** The route reported as `http.route`: the pattern as declared, without a trailing slash. */
  readonly route: string;
  readonly segments: readonly PatternSegment[];
}

export type ParsedPattern = { ok: true; pattern: RoutePattern } | { ok: false; why: string };

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const FORBIDDEN = /[\s?#]/;

/** Strips one trailing slash (not from the root). */
export function trimTrailingSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** Parses one declared pattern; `why` says what is wrong in words a user can act on. */
export function parsePattern(raw: unknown): ParsedPattern {
  if (typeof raw !== 'string') return { ok: false, why: `expected a string like /users/{id}, got ${JSON.stringify(raw)}` };
  const text = raw.trim();
  if (!text.startsWith('/')) return { ok: false, why: 'a pattern starts with / (like /users/{id})' };
  if (FORBIDDEN.test(text)) return { ok: false, why: 'a pattern has no spaces, ? or # (it matches url.path, without the query)' };
  const route = trimTrailingSlash(text);
  if (route.includes('//')) return { ok: false, why: 'empty segment (//)' };
  const segments: PatternSegment[] = [];
  const names = new Set<string>();
  const parts = route === '/' ? [] : route.slice(1).split('/');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    let seg: PatternSegment;
    if (part === '**') {
      seg = { kind: 'rest', text: '' };
    } else if (part === '*') {
      seg = { kind: 'param', text: '' };
    } else if (part.startsWith('{') || part.endsWith('}')) {
      if (!part.startsWith('{') || !part.endsWith('}') || part.length < 3) {
        return { ok: false, why: `segment '${part}': a parameter is a whole segment like {id}` };
      }
      const inner = part.slice(1, -1);
      const rest = inner.endsWith('...');
      const name = rest ? inner.slice(0, -3) : inner;
      if (!NAME.test(name)) return { ok: false, why: `segment '${part}': parameter name '${name}' is not a name like id or order_id` };
      seg = { kind: rest ? 'rest' : 'param', text: name };
    } else if (part.startsWith(':')) {
      const name = part.slice(1);
      if (!NAME.test(name)) return { ok: false, why: `segment '${part}': parameter name '${name}' is not a name like id or order_id` };
      seg = { kind: 'param', text: name };
    } else if (/[{}*]/.test(part)) {
      return { ok: false, why: `segment '${part}': {, } and * are only allowed as a whole segment ({id}, *, **)` };
    } else {
      seg = { kind: 'literal', text: part };
    }
    if (seg.kind === 'rest' && i !== parts.length - 1) {
      return { ok: false, why: `segment '${part}': a rest wildcard is only allowed as the last segment` };
    }
    if (seg.text && seg.kind !== 'literal') {
      if (names.has(seg.text)) return { ok: false, why: `parameter '${seg.text}' appears twice` };
      names.add(seg.text);
    }
    segments.push(seg);
  }
  return { ok: true, pattern: { route, segments } };
}

/** The shape two patterns match by (parameter names do not matter): `/users/{id}` = `/users/:uid`. */
export function patternShape(p: RoutePattern): string {
  return p.segments.map((s) => (s.kind === 'literal' ? `L${s.text}` : s.kind === 'param' ? 'P' : 'R')).join('/');
}

/**
 * Parses a list of patterns. Errors name the entry (`[2]`) so the config loader can point at it;
 * two entries that match exactly the same paths are an error (which one would win is unclear).
 */
export function parsePatternList(raw: unknown): { ok: true; patterns: RoutePattern[] } | { ok: false; at: string; why: string } {
  const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : raw;
  if (!Array.isArray(list)) return { ok: false, at: '', why: `expected a list of path patterns like ['/users/{id}', '/orders/{order}/items/{item}']` };
  const patterns: RoutePattern[] = [];
  const shapes = new Map<string, string>();
  for (let i = 0; i < list.length; i++) {
    const p = parsePattern(list[i]);
    if (!p.ok) return { ok: false, at: `[${i}]`, why: `${JSON.stringify(list[i])}: ${p.why}` };
    const shape = patternShape(p.pattern);
    const prev = shapes.get(shape);
    if (prev !== undefined) return { ok: false, at: `[${i}]`, why: `'${p.pattern.route}' matches the same paths as '${prev}'` };
    shapes.set(shape, p.pattern.route);
    patterns.push(p.pattern);
  }
  return { ok: true, patterns };
}

interface Node {
  readonly literals: Map<string, Node>;
  param?: Node;
  /** A rest wildcard ending here: its route. */
  rest?: string;
  /** A pattern ending exactly here: its route. */
  route?: string;
}

const newNode = (): Node => ({ literals: new Map() });

/** Matches paths against a set of declared patterns; the most specific match wins. */
export class RouteMatcher {
  private readonly root: Node = newNode();
  readonly size: number;

  constructor(patterns: readonly RoutePattern[]) {
    for (const p of patterns) this.insert(p);
    this.size = patterns.length;
  }

  private insert(p: RoutePattern): void {
    let node = this.root;
    for (const seg of p.segments) {
      if (seg.kind === 'rest') {
        node.rest ??= p.route;
        return;
      }
      if (seg.kind === 'param') {
        node.param ??= newNode();
        node = node.param;
      } else {
        let next = node.literals.get(seg.text);
        if (!next) {
          next = newNode();
          node.literals.set(seg.text, next);
        }
        node = next;
      }
    }
    node.route ??= p.route;
  }

  /** The route of the most specific pattern matching `path` (url.path, no query), or undefined. */
  match(path: string): string | undefined {
    if (this.size === 0 || !path.startsWith('/')) return undefined;
    const trimmed = trimTrailingSlash(path);
    const segments = trimmed === '/' ? [] : trimmed.slice(1).split('/');
    return search(this.root, segments, 0);
  }
}

function search(node: Node, segs: readonly string[], i: number): string | undefined {
  if (i === segs.length) return node.route ?? node.rest;
  const seg = segs[i];
  const lit = node.literals.get(seg);
  if (lit) {
    const r = search(lit, segs, i + 1);
    if (r !== undefined) return r;
  }
  if (node.param && seg !== '') {
    const r = search(node.param, segs, i + 1);
    if (r !== undefined) return r;
  }
  return node.rest;
}
