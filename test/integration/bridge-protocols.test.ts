/**
 * The Collector bridge against the stock Collector, over every OTLP protocol: the spans sent
 * arrive exactly, and the metrics (RED histograms per process resource, self-metrics under the
 * agent's resource) arrive too, with OTEL_RESOURCE_ATTRIBUTES merged in.
 */
import { bridgeFromEnv } from '../helpers/delivery';
import { SPANS_DROPPED, SPANS_EXPORTED } from '../../receiver/index';
import { SelfMetrics } from '../../src/metrics/counters';
import type { Span } from '../../src/spans/span';
import { startCollector, type RunningCollector } from './helpers/collector';
import { syntheticResource, syntheticSpan } from './helpers/bridge-driver';

jest.setTimeout(60_000);

const CASES = [
  { protocol: 'http/protobuf', compression: 'none' },
  { protocol: 'http/protobuf', compression: 'gzip' },
  { protocol: 'http/json', compression: 'gzip' },
  { protocol: 'grpc', compression: 'none' },
  { protocol: 'grpc', compression: 'gzip' },
] as const;

describe('bridge -> stock Collector, per protocol', () => {
  let collector: RunningCollector;

  beforeAll(async () => {
    collector = await startCollector();
  });
  afterAll(async () => {
    await collector?.stop();
  });

  it.each(CASES)('$protocol ($compression): traces and metrics arrive', async ({ protocol, compression }) => {
    const service = `svc-${protocol.replace('/', '-')}-${compression}`;
    const metrics = new SelfMetrics();
    const warnings: string[] = [];
    const bridge = bridgeFromEnv({
      metrics,
      log: { warn: (m) => warnings.push(m), info: () => {} },
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: protocol === 'grpc' ? collector.grpcEndpoint : collector.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        OTEL_EXPORTER_OTLP_COMPRESSION: compression,
        OTEL_RESOURCE_ATTRIBUTES: `deployment.environment=it,service.name=never-wins`,
        OTEL_SERVICE_NAME: `agent-${service}`,
        SPANBRIDGE_PROMETHEUS_PORT: 'off',
      },
      bridge: { queue: { scheduledDelayMs: 100 } },
    });
    await bridge.start();
    const resource = syntheticResource(service);
    const sent: Span[] = [];
    for (let i = 0; i < 25; i++) sent.push(syntheticSpan(resource, {}, 30));
    sent.push(syntheticSpan(resource, { kind: 'CLIENT', name: 'POST', status: { code: 'ERROR' }, attributes: { 'http.request.method': 'POST', 'server.address': 'pay', 'server.port': 9090, 'url.full': 'http://pay:9090/x', 'http.response.status_code': 503 } }, 600));
    for (const s of sent) bridge.add(s);
    await bridge.forceFlush();
    await bridge.shutdown(); // final metrics export carries the final counters
    expect(warnings).toEqual([]);
    expect(metrics.get(SPANS_EXPORTED)).toBe(sent.length);
    expect(metrics.total(SPANS_DROPPED)).toBe(0);

    const ids = new Set(sent.map((s) => s.spanId));
    const spans = await collector.waitForSpans((all) => all.filter((s) => ids.has(s.spanId)).length >= sent.length);
    const mine = spans.filter((s) => ids.has(s.spanId));
    expect(new Set(mine.map((s) => s.spanId)).size).toBe(sent.length);
    expect(mine[0].resource).toMatchObject({ 'service.name': service, 'deployment.environment': 'it' });

    const points = await collector.waitForMetrics((all) =>
      all.some((p) => p.resource['service.name'] === service && p.name === 'http.client.request.duration') &&
      all.some((p) => p.resource['service.name'] === `agent-${service}` && p.name === SPANS_EXPORTED && p.value === sent.length),
    );
    const server = points.filter((p) => p.resource['service.name'] === service && p.name === 'http.server.request.duration');
    const last = server[server.length - 1];
    expect(last).toMatchObject({
      type: 'histogram',
      unit: 's',
      temporality: 2,
      count: 25,
      explicitBounds: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10],
      attributes: { 'http.request.method': 'GET', 'http.route': '/items/{id}', 'http.response.status_code': 200, 'url.scheme': 'http' },
    });
    expect(last.resource['deployment.environment']).toBe('it');
    const client = points.filter((p) => p.resource['service.name'] === service && p.name === 'http.client.request.duration');
    expect(client[client.length - 1].attributes).toEqual({
      'http.request.method': 'POST',
      'http.response.status_code': 503,
      'error.type': '503',
      'server.address': 'pay',
      'server.port': 9090,
    });
    const self = points.filter((p) => p.resource['service.name'] === `agent-${service}`);
    expect(self.find((p) => p.name === SPANS_EXPORTED && p.value === sent.length)).toMatchObject({ type: 'sum', isMonotonic: true });
    expect(self.map((p) => p.name)).toEqual(expect.arrayContaining(['spanbridge_export_attempts_total', 'spanbridge_export_queue_spans']));
  });
});
