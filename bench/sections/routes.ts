/**
 * The route stage (src/spans/routes), in process: what it adds to each server span the agent
 * delivers. Measured on a realistic mix of paths with the default heuristic, with 50 declared
 * patterns, and on random paths past the per-service limit (a scan). No agent, no kernel: the
 * figure adds to the agent's CPU per span of the `go` and `sys` sections.
 */
import { SelfMetrics } from '../../src/metrics/counters';
import { parsePatternList } from '../../src/spans/routes/pattern';
import { DEFAULT_ROUTES, type RoutesSettings } from '../../src/spans/routes/route-policy';
import { RouteStage } from '../../src/spans/routes/route-stage';
import type { Resource, Span } from '../../src/spans/span';
import { fig, section, type SectionResult } from '../lib/report';
import { spread } from '../lib/stats';
import type { BenchContext } from './context';

const MIX = [
  '/api/v1/users/123456/orders/550e8400-e29b-41d4-a716-446655440000',
  '/items/42',
  '/static/app.3f9a2c1b.js',
  '/api/health',
  '/v2/reports/2024-05-01',
  '/blobs/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b',
  '/users/me/settings',
  '/search',
];

/** Built the way the assemblers build spans (attributes by assignment, not by spread). */
function span(resource: Resource, path: string): Span {
  const attributes: Span['attributes'] = {};
  attributes['http.request.method'] = 'GET';
  attributes['url.path'] = path;
  attributes['url.scheme'] = 'http';
  return {
    traceId: 'a'.repeat(32),
    spanId: 'b'.repeat(16),
    parentSpanId: '',
    traceFlags: 1,
    traceState: '',
    name: 'GET',
    kind: 'SERVER',
    startTimeUnixNano: 1n,
    endTimeUnixNano: 2n,
    status: { code: 'UNSET' },
    attributes,
    resource,
  };
}

/** ns per span over `ms` of applying the stage to `paths` in turn (spans built outside the timing). */
function measure(stage: RouteStage, resource: Resource, paths: readonly string[], ms: number): number {
  let n = 0;
  let ns = 0n;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const spans = paths.map((p) => span(resource, p));
    const t = process.hrtime.bigint();
    for (const s of spans) stage.apply(s);
    ns += process.hrtime.bigint() - t;
    n += spans.length;
  }
  return Number(ns) / n;
}

export async function routesSection(ctx: BenchContext): Promise<SectionResult> {
  const s = section('routes', 'Route stage (http.route for every server span)');
  const ms = Math.max(300, Math.round((ctx.config.seconds * 1000) / 5));
  const declared = parsePatternList([...Array.from({ length: 48 }, (_, i) => `/svc${i}/items/{id}`), '/api/v1/users/{user}/orders/{order}', '/items/{item}']);
  if (!declared.ok) throw new Error(declared.why);
  const withPatterns: RoutesSettings = { ...DEFAULT_ROUTES, global: { patterns: declared.patterns, unmatched: 'heuristic' } };
  const scanPaths = Array.from({ length: 4096 }, (_, i) => `/${i.toString(36)}x${Math.random().toString(36).slice(2, 10)}/wp-${Math.random().toString(36).slice(2, 8)}`);
  const arms: Array<{ id: string; label: string; settings: RoutesSettings; paths: readonly string[] }> = [
    { id: 'routes.heuristic_ns', label: 'Heuristic route, realistic paths', settings: DEFAULT_ROUTES, paths: MIX },
    { id: 'routes.declared_ns', label: '50 declared patterns, then heuristic', settings: withPatterns, paths: MIX },
    { id: 'routes.scan_ns', label: 'Random paths past the 1,000-route limit', settings: DEFAULT_ROUTES, paths: scanPaths },
  ];
  for (const arm of arms) {
    const values: number[] = [];
    for (let i = 0; i < ctx.config.rounds; i++) {
      ctx.log(`routes: ${arm.id} round ${i + 1}/${ctx.config.rounds}`);
      // A fresh stage per round; a warm-up pass fills the limiter (the scan arm starts past it).
      const stage = new RouteStage(arm.settings, new SelfMetrics());
      const resource: Resource = { attributes: { 'service.name': 'bench' } };
      measure(stage, resource, arm.paths, 100);
      values.push(measure(stage, resource, arm.paths, ms));
      await new Promise((r) => setImmediate(r));
    }
    const sp = spread(values);
    s.figures.push(fig({ id: arm.id, label: arm.label, value: sp.median, unit: 'ns/span', rounds: sp.n, spread: sp, detail: `${arm.paths.length} paths in turn, ${ms} ms per round` }));
    s.raw[arm.id] = values;
  }
  s.notes.push('In-process, on the harness CPU; adds to the agent CPU per span of the go and sys sections.');
  return s;
}
