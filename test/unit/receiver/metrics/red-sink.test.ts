import { HistogramStore } from '../../../../receiver/metrics/histogram-store';
import { HTTP_DURATION_BUCKETS, httpDurationKey, httpDurationObservation, readSeriesKeys, SERIES_KEYS } from '../../../../receiver/metrics/http-duration';
import { RedMetricsSink } from '../../../../receiver/metrics/red-sink';
import { Histogram, Registry } from 'prom-client';
import { HTTP_INSTRUMENT_DESCRIPTIONS, type HttpInstrument } from '../../../../receiver/metrics/http-duration';
import { PrometheusRegistry, RED_LABELS, RED_PROMETHEUS_NAMES, redLabels } from '../../../../receiver/prometheus/registry';
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

/** The reference: every observation through prom-client's own histograms (what /metrics served before). */
class PromClientRed {
  private readonly registry = new Registry();
  private readonly histograms = new Map<HttpInstrument, Histogram>();

  constructor() {
    for (const instrument of Object.keys(RED_PROMETHEUS_NAMES) as HttpInstrument[]) {
      this.histograms.set(instrument, new Histogram({ name: RED_PROMETHEUS_NAMES[instrument], help: HTTP_INSTRUMENT_DESCRIPTIONS[instrument], buckets: [...HTTP_DURATION_BUCKETS], labelNames: [...RED_LABELS], registers: [this.registry] }));
    }
  }

  observeRed(instrument: HttpInstrument, resource: Span['resource'], attributes: Span['attributes'], seconds: number): void {
    this.histograms.get(instrument)!.observe(redLabels(resource, attributes), seconds);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

function slowPath(spans: Span[], maxSeries: number, merger: ResourceMerger) {
  const store = new HistogramStore(HTTP_DURATION_BUCKETS, maxSeries, () => 0);
  const prom = new PromClientRed();
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

/**
 * Line for line the same text, except that a `_sum` may differ in its last bits: series of the
 * store that Prometheus shows under one label set (e.g. status 200 and "200") are added per series
 * at scrape time, not in observation order.
 */
function expectSameExposition(actual: string, expected: string): void {
  const a = actual.split('\n');
  const e = expected.split('\n');
  expect(a.length).toBe(e.length);
  a.forEach((line, i) => {
    const [sa, se] = [/^(\S+_sum\S*) (\S+)$/.exec(line), /^(\S+_sum\S*) (\S+)$/.exec(e[i])];
    if (sa && se) {
      expect(sa[1]).toBe(se[1]);
      expect(Number(sa[2])).toBeCloseTo(Number(se[2]), 9);
    } else {
      expect(line).toBe(e[i]);
    }
  });
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
    expectSameExposition(await prom.render(), await expected.prom.render());
    const overflowed = counters.snapshot().filter((p) => p.name.includes('overflow')).reduce((n, p) => n + p.value, 0);
    expect(overflowed).toBe(expected.overflows);
    if (maxSeries === 3) expect(overflowed).toBeGreaterThan(0);
  });

  it('spans of one path in runs, server and client in turn (the last path per kind compared, not looked up): the same store as the slow path', () => {
    // Runs of equal paths broken by one value (its type, an empty route, the error flag, NaN, the
    // resource), with the other kind's spans between: the last path of a kind must lead to the
    // series its values would.
    const server = (i: number): Span =>
      makeSpan(i % 9 === 0 ? b : a, {
        startTimeUnixNano: ms(0),
        endTimeUnixNano: ms(i % 13),
        status: { code: i % 11 === 0 ? 'ERROR' : 'UNSET' },
        attributes: { 'http.request.method': 'GET', 'http.route': i % 17 === 0 ? '' : '/a', 'http.response.status_code': i % 7 === 0 ? '200' : 200, 'url.scheme': 'http', ...(i % 23 === 0 ? { 'custom.ratio': Number.NaN } : {}) },
      });
    const client = (i: number): Span =>
      makeSpan(a, {
        kind: 'CLIENT',
        startTimeUnixNano: ms(0),
        endTimeUnixNano: ms(i % 5),
        attributes: { 'http.request.method': 'GET', 'server.address': 'db', 'server.port': i % 19 === 0 ? Number.NaN : 5432, 'http.response.status_code': 200 },
      });
    const spans = Array.from({ length: 400 }, (_, i) => [server(i), server(i), client(i)]).flat();
    const merger = new ResourceMerger({});
    const expected = slowPath(spans, 2000, merger);
    const store = new HistogramStore(HTTP_DURATION_BUCKETS, 2000, () => 0);
    const sink = new RedMetricsSink(store, new SelfMetrics(), new PrometheusRegistry(), merger);
    for (const span of spans) sink.add(span);
    expect([...store.entries()]).toEqual([...expected.store.entries()]);
  });

  it('renders label values that need escaping, and sums, as prom-client does', async () => {
    const merger = new ResourceMerger({});
    const odd = makeResource('a"b\\c\nd', 9);
    const spans = [0.0004, 0.005, 0.0051, 3, 11, 0.1 + 0.2].map((s, i) =>
      makeSpan(odd, { startTimeUnixNano: 0n, endTimeUnixNano: BigInt(Math.round(s * 1e9)), attributes: { 'http.request.method': i % 2 ? 'GET' : 'P"OST', 'http.route': '/q\\', 'http.response.status_code': 200 } }),
    );
    const expected = slowPath(spans, 2000, merger);
    const store = new HistogramStore(HTTP_DURATION_BUCKETS, 2000, () => 0);
    const prom = new PrometheusRegistry();
    const sink = new RedMetricsSink(store, new SelfMetrics(), prom, merger);
    for (const span of spans) sink.add(span);
    expect(await prom.render()).toBe(await expected.prom.render());
  });

  it('adds the self-metrics after the RED histograms, separated as prom-client separates metrics', async () => {
    const prom = new PrometheusRegistry();
    const self = new SelfMetrics();
    self.add('spanbridge_test_total', 'a test counter', { reason: 'x' }, 3);
    prom.syncSelfMetrics(self.snapshot());
    const text = await prom.render();
    expect(text).toMatch(/# TYPE http_client_request_duration_seconds histogram\n\n# HELP spanbridge_test_total a test counter\n# TYPE spanbridge_test_total counter\nspanbridge_test_total\{reason="x"\} 3\n$/);
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

describe('readSeriesKeys', () => {
  it('reads SERIES_KEYS in their order, \'\' as absent, as a load per key from the list would', () => {
    const values: unknown[] = ['', 'GET', 'x', 200, '200', 0, -0, true, undefined, '1.1', 'http'];
    for (let i = 0; i < 500; i++) {
      const a: Record<string, unknown> = {};
      // Shapes vary: keys present or not, in varying order, with other keys between them.
      for (const k of [...SERIES_KEYS.client, 'url.path', 'thread.id'].sort(() => ((i * 7919) % 3) - 1)) {
        const v = values[(i * 31 + k.length * 17) % values.length];
        if (v !== undefined) a[k] = v;
      }
      for (const client of [false, true]) {
        const keys = client ? SERIES_KEYS.client : SERIES_KEYS.server;
        const out: unknown[] = [];
        expect(readSeriesKeys(a, client, out)).toBe(keys.length);
        expect(out).toEqual(keys.map((k) => (a[k] === '' ? undefined : a[k])));
        out.forEach((v, j) => expect(Object.is(v, a[keys[j]] === '' ? undefined : a[keys[j]])).toBe(true));
      }
    }
  });
});
