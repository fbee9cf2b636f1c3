import { SelfMetrics } from '../../../../src/metrics/counters';
import { parsePatternList, type RoutePattern } from '../../../../src/spans/routes/pattern';
import { DEFAULT_ROUTES, OVERFLOW_ROUTE, type RoutesSettings } from '../../../../src/spans/routes/route-policy';
import { ROUTES_DISTINCT, ROUTES_OVERFLOW, RouteStage } from '../../../../src/spans/routes/route-stage';
import type { Attributes, Resource, Span } from '../../../../src/spans/span';
import { makeSpan } from '../../../fixtures/spans';

function patterns(...p: string[]): RoutePattern[] {
  const r = parsePatternList(p);
  if (!r.ok) throw new Error(r.why);
  return r.patterns;
}

/** A server span of `path` (routes read only the method, the path and the resource). */
function span(resource: Resource, path: string, extra: Partial<Span> & { attributes?: Attributes } = {}): Span {
  return makeSpan(resource, { name: 'GET', ...extra, attributes: { 'http.request.method': 'GET', 'url.path': path, ...extra.attributes } });
}

function logger(): { warn: jest.Mock; lines: string[] } & Record<string, unknown> {
  const lines: string[] = [];
  const warn = jest.fn((l: string) => lines.push(l));
  return { debug: jest.fn(), info: jest.fn(), warn, error: jest.fn(), warnEvery: jest.fn(), lines };
}

const svc = (name: string): Resource => ({ attributes: { 'service.name': name } });

describe('route stage', () => {
  it('heuristic by default: route, name and source', () => {
    const stage = new RouteStage(DEFAULT_ROUTES, new SelfMetrics());
    const s = stage.apply(span(svc('a'), '/items/42'));
    expect(s.name).toBe('GET /items/{id}');
    expect(s.attributes['http.route']).toBe('/items/{id}');
    expect(s.attributes['spanbridge.route.source']).toBe('heuristic');
  });

  it('a framework route (Go Request.Pattern) always wins, even over a declared pattern', () => {
    const stage = new RouteStage({ ...DEFAULT_ROUTES, global: { patterns: patterns('/items/{item}'), unmatched: 'heuristic' } }, new SelfMetrics());
    const s = stage.apply(span(svc('a'), '/items/42', { name: 'GET /items/{n}', attributes: { 'http.route': '/items/{n}' } }));
    expect(s.name).toBe('GET /items/{n}');
    expect(s.attributes['http.route']).toBe('/items/{n}');
    expect(s.attributes['spanbridge.route.source']).toBe('framework');
  });

  it('declared patterns beat the heuristic; per-selection patterns replace the global ones', () => {
    const settings: RoutesSettings = {
      global: { patterns: patterns('/items/{item}'), unmatched: 'heuristic' },
      bySelection: { 'exe api': { patterns: patterns('/carts/{cart}'), unmatched: 'path' } },
      maxPerService: 100,
    };
    const stage = new RouteStage(settings, new SelfMetrics());
    const api = svc('api');
    const other = svc('other');
    expect(stage.register(api, 'exe api')).toBe('1 declared pattern > the path itself');
    expect(stage.register(other, 'port 80', 'Go ServeMux pattern (Request.Pattern)')).toBe('Go ServeMux pattern (Request.Pattern) > 1 declared pattern > heuristic (ids -> {id})');
    expect(stage.apply(span(other, '/items/42/')).attributes).toMatchObject({ 'http.route': '/items/{item}', 'spanbridge.route.source': 'declared' });
    expect(stage.apply(span(other, '/carts/9')).attributes).toMatchObject({ 'http.route': '/carts/{id}', 'spanbridge.route.source': 'heuristic' });
    expect(stage.apply(span(api, '/carts/9')).attributes).toMatchObject({ 'http.route': '/carts/{cart}', 'spanbridge.route.source': 'declared' });
    expect(stage.apply(span(api, '/items/9')).attributes).toMatchObject({ 'http.route': '/items/9', 'spanbridge.route.source': 'path' });
  });

  it('wildcard and unset', () => {
    const wild = new RouteStage({ ...DEFAULT_ROUTES, global: { patterns: [], unmatched: 'wildcard' } }, new SelfMetrics());
    expect(wild.apply(span(svc('a'), '/x/1'))).toMatchObject({ name: 'GET /**', attributes: { 'http.route': '/**', 'spanbridge.route.source': 'wildcard' } });
    const unset = new RouteStage({ ...DEFAULT_ROUTES, global: { patterns: patterns('/x/{id}'), unmatched: 'unset' } }, new SelfMetrics());
    const s = unset.apply(span(svc('a'), '/y/1'));
    expect(s.name).toBe('GET');
    expect(s.attributes['http.route']).toBeUndefined();
    expect(s.attributes['spanbridge.route.source']).toBeUndefined();
    expect(unset.apply(span(svc('a'), '/x/1')).name).toBe('GET /x/{id}');
  });

  it('client spans and non-HTTP spans pass unchanged; unknown methods are named HTTP', () => {
    const stage = new RouteStage(DEFAULT_ROUTES, new SelfMetrics());
    const client = span(svc('a'), '/items/1', { kind: 'CLIENT' });
    expect(stage.apply(client)).toBe(client);
    expect(client.attributes['http.route']).toBeUndefined();
    const other = stage.apply(span(svc('a'), '/items/1', { attributes: { 'http.request.method': '_OTHER', 'http.request.method_original': 'PURGE' } }));
    expect(other.name).toBe('HTTP /items/{id}');
  });

  it('the route limit: at most N distinct routes per service, the rest folded, counted and logged once', () => {
    const metrics = new SelfMetrics();
    const log = logger();
    const stage = new RouteStage({ ...DEFAULT_ROUTES, global: { patterns: [], unmatched: 'path' }, maxPerService: 50 }, metrics, log as never);
    const a = svc('a');
    const b = svc('b');
    const names = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      names.add(stage.apply(span(a, `/r/${Math.random().toString(36).slice(2)}`)).name);
    }
    expect(names.size).toBe(51);
    expect(names.has(`GET ${OVERFLOW_ROUTE}`)).toBe(true);
    // Routes admitted before the limit keep their name.
    const first = [...names][0];
    expect(stage.apply(span(a, first.slice(4))).name).toBe(first);
    const folded = stage.apply(span(a, '/r/new-one'));
    expect(folded.attributes).toMatchObject({ 'http.route': OVERFLOW_ROUTE, 'spanbridge.route.source': 'overflow' });
    expect(metrics.get(ROUTES_OVERFLOW, { service: 'a' })).toBe(10_000 - 50 + 1);
    expect(metrics.get(ROUTES_DISTINCT, { service: 'a' })).toBe(50);
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(log.lines[0]).toMatch(/service 'a' reached 50 distinct routes \(routes\.max_per_service\)/);
    // Another service has its own budget.
    expect(stage.apply(span(b, '/r/x')).attributes['http.route']).toBe('/r/x');
  });
});
