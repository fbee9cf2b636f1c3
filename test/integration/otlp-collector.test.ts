/**
 * Our OTLP/HTTP exporter against the real, stock Collector: what the Collector receives (and writes
 * with its file exporter) must be exactly the spans we sent, grouped by resource.
 */
import { pipelineFromEnv } from '../helpers/delivery';
import { version } from '../../package.json';
import { SPANS_DROPPED, SPANS_EXPORTED } from '../../receiver/index';
import { SelfMetrics } from '../../src/metrics/counters';
import { spanToPrinted } from '../../src/spans/print-json';
import type { Resource, Span } from '../../src/spans/span';
import { startCollector, type FlatSpan, type RunningCollector } from './helpers/collector';

jest.setTimeout(60_000);

const frontend: Resource = {
  attributes: {
    'service.name': 'frontend',
    'service.instance.id': 'node-1/4242',
    'process.pid': 4242,
    'process.executable.name': 'frontend',
    'host.name': 'node-1',
  },
};
const backend: Resource = {
  attributes: { 'service.name': 'backend', 'process.pid': 5151, 'host.name': 'node-1' },
};

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const serverSpan: Span = {
  traceId,
  spanId: '00f067aa0ba902b7',
  parentSpanId: '',
  traceFlags: 0x01,
  traceState: '',
  name: 'GET /checkout',
  kind: 'SERVER',
  startTimeUnixNano: 1732500000123456789n,
  endTimeUnixNano: 1732500000987654321n,
  status: { code: 'UNSET' },
  attributes: {
    'http.request.method': 'GET',
    'url.path': '/checkout',
    'url.scheme': 'http',
    'http.route': '/checkout',
    'http.response.status_code': 200,
    'server.port': 8080,
    'network.protocol.version': '1.1',
  },
  resource: frontend,
};
const clientSpan: Span = {
  traceId,
  spanId: 'b7ad6b7169203331',
  parentSpanId: serverSpan.spanId,
  traceFlags: 0x01,
  traceState: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE',
  name: 'POST',
  kind: 'CLIENT',
  startTimeUnixNano: 1732500000200000001n,
  endTimeUnixNano: 1732500000900000009n,
  status: { code: 'ERROR' },
  attributes: {
    'http.request.method': 'POST',
    'server.address': 'backend',
    'server.port': 9090,
    'url.full': 'http://backend:9090/pay',
    'http.response.status_code': 503,
    'error.type': '503',
  },
  resource: frontend,
};
const backendSpan: Span = {
  traceId,
  spanId: '53995c3f42cd8ad8',
  parentSpanId: clientSpan.spanId,
  traceFlags: 0x01,
  traceState: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE',
  name: 'POST /pay',
  kind: 'SERVER',
  startTimeUnixNano: 1732500000300000000n,
  endTimeUnixNano: 1732500000800000000n,
  status: { code: 'ERROR', message: 'Service Unavailable' },
  attributes: {
    'http.request.method': 'POST',
    'url.path': '/pay',
    'url.scheme': 'http',
    'http.route': '/pay',
    'http.response.status_code': 503,
    'client.address': '10.0.0.7',
    'server.load': 0.75,
    'retry.allowed': false,
  },
  resource: backend,
};

/**
 * What the Collector must hand on for one of our spans: the span flattened as --print-spans does
 * (the same OTLP/JSON field names and encodings), with our scope and the OTLP span flags.
 */
function expected(span: Span, remoteParent: boolean): FlatSpan {
  return {
    ...spanToPrinted(span),
    scope: { name: 'spanbridge', version },
    flags: span.traceFlags | 0x100 | (remoteParent ? 0x200 : 0),
  };
}

describe('OTLP export to the stock Collector', () => {
  let collector: RunningCollector;

  beforeAll(async () => {
    collector = await startCollector();
  });
  afterAll(async () => {
    await collector?.stop();
  });

  it('delivers 3 spans of 2 resources exactly', async () => {
    const metrics = new SelfMetrics();
    const warnings: string[] = [];
    const pipeline = pipelineFromEnv({
      metrics,
      log: { warn: (m) => warnings.push(m), info: () => {} },
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint },
    });
    for (const span of [serverSpan, clientSpan, backendSpan]) pipeline.add(span);
    await pipeline.shutdown();
    expect(warnings).toEqual([]);
    expect(metrics.get(SPANS_EXPORTED)).toBe(3);
    expect(metrics.total(SPANS_DROPPED)).toBe(0);

    const spans = await collector.waitForSpans((s) => s.length >= 3);
    expect(spans).toHaveLength(3);
    const bySpanId = new Map(spans.map((s) => [s.spanId, s]));
    expect(bySpanId.get(serverSpan.spanId)).toEqual(expected(serverSpan, false));
    expect(bySpanId.get(clientSpan.spanId)).toEqual(expected(clientSpan, false));
    expect(bySpanId.get(backendSpan.spanId)).toEqual(expected(backendSpan, true));

    // One request, grouped by resource: 2 resourceSpans, one scopeSpans each.
    const records = await collector.readRecords();
    expect(records).toHaveLength(1);
    const resourceSpans = (records[0] as { resourceSpans: Array<{ scopeSpans: unknown[] }> }).resourceSpans;
    expect(resourceSpans).toHaveLength(2);
    for (const rs of resourceSpans) expect(rs.scopeSpans).toHaveLength(1);
  });
});
