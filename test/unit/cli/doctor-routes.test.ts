import { routesReport, formatDoctorReport, buildDoctorReport } from '../../../src/cli/doctor';
import { parsePatternList } from '../../../src/spans/routes/pattern';
import { DEFAULT_ROUTES, type RoutesSettings } from '../../../src/spans/routes/route-policy';
import { ALL_BPF_FEATURES, LOCKED_DOWN_HOST } from '../helpers/capabilities';

function patterns(...p: string[]) {
  const r = parsePatternList(p);
  if (!r.ok) throw new Error(r.why);
  return r.patterns;
}

describe('doctor: how routes are obtained', () => {
  it('reports the default plan: Go pattern first, then the heuristic, 1,000 routes per service', () => {
    const r = routesReport(DEFAULT_ROUTES);
    expect(r.default).toBe('heuristic (ids -> {id})');
    expect(r.maxPerService).toBe(1000);
    expect(r.selections).toEqual([]);
  });

  it('names declared patterns, globally and per selection, in the text report', () => {
    const settings: RoutesSettings = {
      global: { patterns: patterns('/users/{id}', '/orders/{id}'), unmatched: 'heuristic' },
      bySelection: { 'exe shop-api': { patterns: patterns('/carts/{cart}'), unmatched: 'path' }, 'port 8080': { unmatched: 'unset' } },
      maxPerService: 200,
    };
    const r = routesReport(settings);
    expect(r.selections).toEqual([
      { selection: 'exe shop-api', routes: '1 declared pattern > the path itself', patterns: ['/carts/{cart}'] },
      { selection: 'port 8080', routes: '2 declared patterns > no route (unset)', patterns: ['/users/{id}', '/orders/{id}'] },
    ]);
    const text = formatDoctorReport(buildDoctorReport(LOCKED_DOWN_HOST, ALL_BPF_FEATURES, [], undefined, settings));
    expect(text).toContain('every process       2 declared patterns > heuristic (ids -> {id})');
    expect(text).toContain('patterns: /users/{id}, /orders/{id}');
    expect(text).toContain('selection exe shop-api: 1 declared pattern > the path itself');
    expect(text).toContain('limit               200 distinct routes per service; then http.route=(overflow)');
  });
});
