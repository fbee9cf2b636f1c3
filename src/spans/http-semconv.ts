/**
 * HTTP semantic-convention helpers shared by every HTTP tracer (stable HTTP semconv).
 */
import type { Attributes, StatusCode } from './span';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY']);

/** `http.request.method` is a known method or `_OTHER` (the original then goes in `_original`). */
export function methodAttributes(method: string): Attributes {
  return setMethodAttributes({}, method);
}

/**
 * Sets the method attributes on `attrs` in place. Used on the hot path instead of spreading
 * `methodAttributes()` into a literal: V8 turns a spread object that then gets more keys into a
 * slow dictionary object, two orders of magnitude slower per span (bench/results/2026-12-06-code-comment-measurements.md).
 */
export function setMethodAttributes(attrs: Attributes, method: string): Attributes {
  if (KNOWN_METHODS.has(method)) {
    attrs['http.request.method'] = method;
  } else {
    attrs['http.request.method'] = '_OTHER';
    attrs['http.request.method_original'] = method;
  }
  return attrs;
}

/**
 * The route from a Go ServeMux pattern: "[METHOD ][HOST]/PATH" -> "/PATH" ("GET /items/{id}" ->
 * "/items/{id}"). Returns '' when there is no path part.
 */
export function routeFromGoPattern(pattern: string): string {
  let p = pattern.trim();
  const space = p.search(/[ \t]/);
  if (space >= 0) p = p.slice(space).trim();
  const slash = p.indexOf('/');
  return slash >= 0 ? p.slice(slash) : '';
}

/** Go patterns seen -> their routes: a server has few patterns, each seen on every request. */
const goRoutes = new Map<string, string>();
const GO_ROUTES_MAX = 1024;

/** routeFromGoPattern, remembered (bounded: emptied when full). */
export function goRouteOf(pattern: string): string {
  let route = goRoutes.get(pattern);
  if (route === undefined) {
    route = routeFromGoPattern(pattern);
    if (goRoutes.size >= GO_ROUTES_MAX) goRoutes.clear();
    goRoutes.set(pattern, route);
  }
  return route;
}

/** Span name: `{method} {route}` when the route is known, else `{method}`; never the raw path. */
export function httpSpanName(method: string, route: string): string {
  const m = KNOWN_METHODS.has(method) ? method : 'HTTP';
  return route ? `${m} ${route}` : m;
}

/** Server spans: 5xx is an error, 4xx is not (the server did its job). Client spans: >= 400. */
export function httpStatus(kind: 'SERVER' | 'CLIENT', status: number): { code: StatusCode; errorType?: string } {
  if (status >= 500 || (kind === 'CLIENT' && status >= 400)) return { code: 'ERROR', errorType: String(status) };
  return UNSET;
}

/** The verdict of every status that is not an error: read only, shared. */
const UNSET: { code: StatusCode; errorType?: string } = Object.freeze({ code: 'UNSET' });

/** Splits "host:port", "[v6]:port" or "host"; port undefined when absent or invalid. */
export function splitHostPort(hostPort: string): { host: string; port?: number } {
  const s = hostPort.trim();
  if (!s) return { host: '' };
  let host = s;
  let portStr = '';
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close > 0) {
      host = s.slice(1, close);
      if (s[close + 1] === ':') portStr = s.slice(close + 2);
    }
  } else {
    const colon = s.lastIndexOf(':');
    if (colon >= 0 && s.indexOf(':') === colon) {
      host = s.slice(0, colon);
      portStr = s.slice(colon + 1);
    }
  }
  const port = /^\d{1,5}$/.test(portStr) ? Number(portStr) : undefined;
  return port !== undefined && port <= 65535 ? { host, port } : { host };
}
