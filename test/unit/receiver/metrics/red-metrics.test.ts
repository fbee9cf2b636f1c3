import { bucketIndex, HistogramStore, OVERFLOW_ATTRIBUTES } from '../../../../receiver/metrics/histogram-store';
import { HTTP_DURATION_BUCKETS, httpDurationObservation } from '../../../../receiver/metrics/http-duration';
import { makeResource, makeSpan } from '../../../fixtures/spans';

const resource = makeResource('checkout', 7);
const ms = (n: number): bigint => BigInt(n) * 1_000_000n;

describe('httpDurationObservation (semconv RED attributes)', () => {
  it('SERVER span: method, route, status, scheme, protocol version — never url.path or server.address', () => {
    const span = makeSpan(resource, {
      kind: 'SERVER',
      startTimeUnixNano: 1_000_000_000n,
      endTimeUnixNano: 1_000_000_000n + ms(120),
      attributes: {
        'http.request.method': 'GET',
        'url.path': '/users/7',
        'url.query': 'a=1',
        'url.scheme': 'http',
        'http.route': '/users/{id}',
        'http.response.status_code': 200,
        'server.address': 'evil-host-header',
        'server.port': 8080,
        'client.address': '10.0.0.1',
        'network.protocol.version': '1.1',
      },
    });
    expect(httpDurationObservation(span)).toEqual({
      instrument: 'http.server.request.duration',
      seconds: 0.12,
      attributes: {
        'http.request.method': 'GET',
        'http.route': '/users/{id}',
        'http.response.status_code': 200,
        'url.scheme': 'http',
        'network.protocol.version': '1.1',
      },
    });
  });

  it('CLIENT span: server.address and server.port; error.type from the span or its status', () => {
    const span = makeSpan(resource, {
      kind: 'CLIENT',
      status: { code: 'ERROR' },
      attributes: {
        'http.request.method': 'POST',
        'url.full': 'http://backend:9090/pay?x=1',
        'server.address': 'backend',
        'server.port': 9090,
        'http.response.status_code': 503,
      },
    });
    expect(httpDurationObservation(span)).toMatchObject({
      instrument: 'http.client.request.duration',
      attributes: {
        'http.request.method': 'POST',
        'server.address': 'backend',
        'server.port': 9090,
        'http.response.status_code': 503,
        'error.type': '503',
      },
    });
    const noStatus = makeSpan(resource, { kind: 'CLIENT', status: { code: 'ERROR' }, attributes: { 'http.request.method': 'GET', 'error.type': 'timeout' } });
    expect(httpDurationObservation(noStatus)?.attributes['error.type']).toBe('timeout');
  });

  it('no route: no http.route (the path is never used instead); non-HTTP spans are skipped', () => {
    const span = makeSpan(resource, { attributes: { 'http.request.method': 'GET', 'url.path': '/x/1' } });
    expect(httpDurationObservation(span)?.attributes).toEqual({ 'http.request.method': 'GET' });
    expect(httpDurationObservation(makeSpan(resource, { attributes: { 'db.system': 'redis' } }))).toBeUndefined();
  });

  it('a negative duration counts as 0', () => {
    const span = makeSpan(resource, { startTimeUnixNano: 10n, endTimeUnixNano: 5n });
    expect(httpDurationObservation(span)?.seconds).toBe(0);
  });
});

describe('HistogramStore', () => {
  it('puts values in (prev, bound] buckets, the last one unbounded', () => {
    const b = HTTP_DURATION_BUCKETS;
    expect(b).toEqual([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]);
    expect(bucketIndex(b, 0)).toBe(0);
    expect(bucketIndex(b, 0.005)).toBe(0);
    expect(bucketIndex(b, 0.0051)).toBe(1);
    expect(bucketIndex(b, 10)).toBe(13);
    expect(bucketIndex(b, 11)).toBe(14);
  });

  it('aggregates per resource, instrument and attribute set (key order does not matter)', () => {
    const store = new HistogramStore(HTTP_DURATION_BUCKETS, 10, () => 1000);
    const other = makeResource('cart', 8);
    store.record(resource, 'http.server.request.duration', { a: 1, b: 'x' }, 0.02);
    store.record(resource, 'http.server.request.duration', { b: 'x', a: 1 }, 0.2);
    store.record(resource, 'http.server.request.duration', { a: 2 }, 3);
    store.record(other, 'http.server.request.duration', { a: 1, b: 'x' }, 0.02);
    const entries = [...store.entries()];
    expect(entries).toHaveLength(2);
    const [res, instruments] = entries[0];
    expect(res).toBe(resource);
    const points = instruments[0].points;
    expect(points).toHaveLength(2);
    expect(points[0]).toMatchObject({ attributes: { a: 1, b: 'x' }, count: 2, sum: 0.22, min: 0.02, max: 0.2, startMs: 1000 });
    expect(points[0].counts).toEqual([0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(points[1].counts[11]).toBe(1);
  });

  it('bounds the attribute sets per instrument; the rest goes to the overflow series', () => {
    const store = new HistogramStore(HTTP_DURATION_BUCKETS, 2);
    expect(store.record(resource, 'i', { r: '/a' }, 1).overflow).toBe(false);
    expect(store.record(resource, 'i', { r: '/b' }, 1).overflow).toBe(false);
    expect(store.record(resource, 'i', { r: '/c' }, 1)).toMatchObject({ attributes: OVERFLOW_ATTRIBUTES, overflow: true });
    expect(store.record(resource, 'i', { r: '/d' }, 1).overflow).toBe(true);
    expect(store.record(resource, 'i', { r: '/a' }, 1).overflow).toBe(false); // known sets still count
    const points = [...store.entries()][0][1][0].points;
    expect(points.map((p) => [p.attributes, p.count])).toEqual([
      [{ r: '/a' }, 2],
      [{ r: '/b' }, 1],
      [{ 'otel.metric.overflow': true }, 2],
    ]);
  });
});
