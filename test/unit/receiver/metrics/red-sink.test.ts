import { HistogramStore } from '../../../../receiver/metrics/histogram-store';
import { HTTP_DURATION_BUCKETS, httpDurationKey, httpDurationObservation } from '../../../../receiver/metrics/http-duration';
import { RedMetricsSink } from '../../../../receiver/metrics/red-sink';
import { PrometheusRegistry } from '../../../../receiver/prometheus/registry';
import { ResourceMerger } from '../../../../receiver/resource-merge';
import { SelfMetrics } from '../../../../src/metrics/counters';
import type { Span } from '../../../../src/spans/span';
import { makeResource, makeSpan } from '../../../fixtures/spans';

const ms = (n: number): bigint => BigInt(n) * 1_000_000n;
const a = makeResource('checkout', 7);
const b = makeResource('payments', 8);

/** A mix of series: repeated keys, values that differ only in type, errors with and without error.type. */
function traffic(): Span[] {
  const out: Span[] = [];
  const variants: Array<Partial<Span>> = [
    { attributes: { 'http.request.method': 'GET', 'http.route': '/a', 'http.response.status_code': 200 } },
    { attributes: { 'http.request.method': 'GET', 'http.route': '/a', 'http.response.status_code': '200' } },
    { attributes: { 'http.request.method': 'GET', 'http.route': '/b', 'http.response.status_code': 500 }, status: { code: 'ERROR' } },
    { attributes: { 'http.request.method': 'GET', 'http.route': '/b', 'http.response.status_code': 500 } },
    { attributes: { 'http.request.method': 'GET', 'http.route': '', 'url.path': '/x/1' } },
    { kind: 'CLIENT', attributes: { 'http.request.method': 'POST', 'server.address': 'db', 'server.port': 5432, 'error.type': 'timeout' }, status: { code: 'ERROR' } },
    { attributes: { 'db.system': 'redis' } },
  ];
  for (let i = 0; i < 60; i++) {
    const v = variants[i % variants.length];
    out.push(makeSpan(i % 2 ? a : b, { startTimeUnixNano: ms(0), endTimeUnixNano: ms(i * 7), ...v }));
  }
  return out;
}

function slowPath(spans: Span[], maxSeries: number, merger: ResourceMerger) {
  const store = new HistogramStore(HTTP_DURATION_BUCKETS, maxSeries, () => 0);
  const prom = new PrometheusRegistry();
  let overflows = 0;
  for (const span of spans) {
    const obs = httpDurationObservation(span);
    if (!obs) continue;
    const r = store.record(span.resource, obs.instrument, obs.attributes, obs.seconds);
    if (r.overflow) overflows++;
    prom.observeRed(obs.instrument, merger.merge(span.resource), r.attributes, obs.seconds);
  }
  return { store, prom, overflows };
}

describe('RedMetricsSink (series resolved once, by key)', () => {
  it.each([2000, 3])('records exactly what the per-span path records (series limit %i)', async (maxSeries) => {
    const merger = new ResourceMerger({ 'deployment.environment': 'prod' });
    const spans = traffic();
    const expected = slowPath(spans, maxSeries, merger);
    const store = new HistogramStore(HTTP_DURATION_BUCKETS, maxSeries, () => 0);
    const prom = new PrometheusRegistry();
    const counters = new SelfMetrics();
    const sink = new RedMetricsSink(store, counters, prom, merger);
    for (const span of spans) sink.add(span);
    expect([...store.entries()]).toEqual([...expected.store.entries()]);
    expect(await prom.render()).toBe(await expected.prom.render());
    const overflowed = counters.snapshot().filter((p) => p.name.includes('overflow')).reduce((n, p) => n + p.value, 0);
    expect(overflowed).toBe(expected.overflows);
    if (maxSeries === 3) expect(overflowed).toBeGreaterThan(0);
  });

  it('gives equal keys exactly to spans with equal observation attributes', () => {
    const spans = traffic();
    for (const x of spans) {
      for (const y of spans) {
        const ox = httpDurationObservation(x);
        const oy = httpDurationObservation(y);
        const same = ox !== undefined && oy !== undefined && ox.instrument === oy.instrument && JSON.stringify(Object.entries(ox.attributes).map(([k, v]) => [k, typeof v, v]).sort()) === JSON.stringify(Object.entries(oy.attributes).map(([k, v]) => [k, typeof v, v]).sort());
        if (ox === undefined) expect(httpDurationKey(x)).toBeUndefined();
        else if (oy !== undefined) expect(httpDurationKey(x) === httpDurationKey(y)).toBe(same);
      }
    }
  });
});
