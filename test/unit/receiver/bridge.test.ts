/**
 * The whole bridge against local servers: spans to the traces endpoint, RED + self-metrics to the
 * metrics endpoint (OTLP/JSON here, so the payload can be read back) and on the Prometheus endpoint.
 */
import { bridgeFromEnv } from '../../helpers/delivery';
import { isLoopbackHost, type CollectorBridge } from '../../../receiver/index';
import { protoFields } from '../../../receiver/otlp/rpc-status';
import { serializeMetrics } from '../../../receiver/otlp/serializers';
import { SelfMetrics } from '../../../src/metrics/counters';
import { ok, recordingLog, startOtlpServer, unusedPort, type TestServer } from './helpers/otlp-server';
import { makeResource, makeSpan } from '../../fixtures/spans';

const ms = (n: number): bigint => BigInt(n) * 1_000_000n;

describe('CollectorBridge', () => {
  let server: TestServer | undefined;
  let bridge: CollectorBridge | undefined;

  afterEach(async () => {
    await bridge?.shutdown();
    await server?.close();
    bridge = undefined;
    server = undefined;
  });

  async function setup(env: Record<string, string> = {}) {
    server = await startOtlpServer(ok);
    const metrics = new SelfMetrics();
    metrics.set('spanbridge_processes_attached', 'Processes currently traced', {}, 2);
    metrics.set('spanbridge_kernel_drops', 'Kernel-side drops', { reason: 'ringbuf_full' }, 3);
    const log = recordingLog();
    const port = await unusedPort();
    bridge = bridgeFromEnv({
      metrics,
      log,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${server.port}`,
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test',
        SPANBRIDGE_PROMETHEUS_PORT: String(port),
        ...env,
      },
      bridge: { queue: { scheduledDelayMs: 50 } },
    });
    await bridge.start();
    return { metrics, log, port, bridge };
  }

  const checkout = makeResource('checkout', 7);
  const spans = () => [
    makeSpan(checkout, { startTimeUnixNano: 0n, endTimeUnixNano: ms(20), attributes: { 'http.request.method': 'GET', 'http.route': '/users/{id}', 'url.path': '/users/1', 'http.response.status_code': 200 } }),
    makeSpan(checkout, { startTimeUnixNano: 0n, endTimeUnixNano: ms(300), attributes: { 'http.request.method': 'GET', 'http.route': '/users/{id}', 'url.path': '/users/2', 'http.response.status_code': 200 } }),
    makeSpan(checkout, { kind: 'CLIENT', status: { code: 'ERROR' }, startTimeUnixNano: 0n, endTimeUnixNano: ms(1500), attributes: { 'http.request.method': 'POST', 'server.address': 'pay', 'server.port': 80, 'http.response.status_code': 503 } }),
  ];

  it('serves RED histograms and self-metrics on /metrics (Prometheus text format)', async () => {
    const { port, bridge } = await setup();
    for (const s of spans()) bridge.add(s);
    expect(bridge.prometheusUrl).toBe(`http://127.0.0.1:${port}/metrics`);
    const res = await fetch(bridge.prometheusUrl!);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const server = 'service_name="checkout",http_request_method="GET",http_route="/users/{id}",http_response_status_code="200"';
    expect(text).toContain(`# TYPE http_server_request_duration_seconds histogram`);
    expect(text).toContain(`http_server_request_duration_seconds_bucket{le="0.025",${server}} 1`);
    expect(text).toContain(`http_server_request_duration_seconds_bucket{le="0.5",${server}} 2`);
    expect(text).toContain(`http_server_request_duration_seconds_count{${server}} 2`);
    expect(text).toMatch(/http_client_request_duration_seconds_count\{service_name="checkout",http_request_method="POST",http_response_status_code="503",server_address="pay",server_port="80",error_type="503"\} 1/);
    expect(text).not.toContain('/users/1');
    expect(text).toContain('# TYPE spanbridge_processes_attached gauge');
    expect(text).toContain('spanbridge_kernel_drops{reason="ringbuf_full"} 3');
    expect(text).toContain('spanbridge_export_queue_capacity_bytes 67108864');
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
  });

  it('exports spans and the metrics (RED per process resource, self-metrics under the agent resource)', async () => {
    const { bridge, metrics } = await setup();
    for (const s of spans()) bridge.add(s);
    await bridge.forceFlush();
    await bridge.forceFlush(); // the second metrics export carries the first one's counters
    const traceRequests = server!.requests.filter((r) => r.url === '/v1/traces');
    expect(traceRequests).toHaveLength(1);
    expect(metrics.get('spanbridge_spans_exported_total')).toBe(3);
    const metricRequests = server!.requests.filter((r) => r.url === '/v1/metrics');
    expect(metricRequests.length).toBeGreaterThanOrEqual(2);
    const last = metricRequests[metricRequests.length - 1];
    expect(last.headers['content-type']).toBe('application/json');
    const body = JSON.parse(last.body.toString()) as {
      resourceMetrics: Array<{ resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> }; scopeMetrics: Array<{ metrics: Array<Record<string, any>> }> }>;
    };
    expect(body.resourceMetrics).toHaveLength(2);
    const attr = (rm: (typeof body.resourceMetrics)[number], key: string) => rm.resource.attributes.find((a) => a.key === key)?.value.stringValue;
    const [red, self] = body.resourceMetrics;
    expect(attr(red, 'service.name')).toBe('checkout');
    expect(attr(red, 'deployment.environment')).toBe('test');
    expect(attr(self, 'service.name')).toBe('spanbridge');
    const redMetrics = red.scopeMetrics[0].metrics;
    const serverHist = redMetrics.find((m) => m.name === 'http.server.request.duration')!;
    expect(serverHist.unit).toBe('s');
    expect(serverHist.histogram.aggregationTemporality).toBe(2); // CUMULATIVE
    const point = serverHist.histogram.dataPoints[0];
    expect(point.explicitBounds).toEqual([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]);
    expect(Number(point.count)).toBe(2);
    expect(point.sum).toBeCloseTo(0.32);
    const selfNames = self.scopeMetrics[0].metrics.map((m) => m.name);
    expect(selfNames).toEqual(
      expect.arrayContaining(['spanbridge_processes_attached', 'spanbridge_kernel_drops', 'spanbridge_spans_exported_total', 'spanbridge_export_attempts_total', 'spanbridge_export_queue_spans']),
    );
    const exported = self.scopeMetrics[0].metrics.find((m) => m.name === 'spanbridge_spans_exported_total')!;
    expect(exported.sum.isMonotonic).toBe(true);
  });

  it('protobuf metrics requests concatenate one ResourceMetrics per resource', async () => {
    const { bridge } = await setup();
    for (const s of spans()) bridge.add(s);
    bridge.add(makeSpan(makeResource('cart', 8)));
    const body = serializeMetrics('http/protobuf', bridge.collectResourceMetrics())!;
    const top = protoFields(body)!;
    expect(top.filter(([f]) => f === 1)).toHaveLength(3); // checkout, cart, the agent
  });

  it('rejects start() with ERR_CONFIG when the Prometheus port is taken', async () => {
    const { port } = await setup();
    const second = bridgeFromEnv({ metrics: new SelfMetrics(), log: recordingLog(), env: { SPANBRIDGE_PROMETHEUS_PORT: String(port) }, otlpExport: false });
    await expect(second.start()).rejects.toMatchObject({ code: 'ERR_CONFIG', message: expect.stringMatching(/EADDRINUSE/) });
    await second.shutdown();
  });

  it('--export none: no OTLP at all, the Prometheus endpoint still serves RED metrics', async () => {
    const port = await unusedPort();
    bridge = bridgeFromEnv({ metrics: new SelfMetrics(), log: recordingLog(), otlpExport: false, env: { SPANBRIDGE_PROMETHEUS_PORT: String(port) } });
    await bridge.start();
    for (const s of spans()) bridge.add(s);
    const text = await (await fetch(bridge.prometheusUrl!)).text();
    expect(text).toContain('http_server_request_duration_seconds_count');
    expect(bridge.batcher).toBeUndefined();
  });

  it('Prometheus on loopback by default; another address is a warning', async () => {
    const port = await unusedPort();
    const quiet = recordingLog();
    bridge = bridgeFromEnv({ metrics: new SelfMetrics(), log: quiet, otlpExport: false, env: { SPANBRIDGE_PROMETHEUS_PORT: String(port) } });
    await bridge.start();
    expect(bridge.prometheusUrl).toBe(`http://127.0.0.1:${port}/metrics`);
    expect(quiet.warnings).toEqual([]);
    await bridge.shutdown();
    const log = recordingLog();
    bridge = bridgeFromEnv({ metrics: new SelfMetrics(), log, otlpExport: false, env: { SPANBRIDGE_PROMETHEUS_PORT: String(port), SPANBRIDGE_PROMETHEUS_HOST: '0.0.0.0' } });
    await bridge.start();
    expect(log.warnings.join('\n')).toMatch(/prometheus: listening on 0\.0\.0\.0, not only on loopback/);
  });

  it.each([
    ['127.0.0.1', true],
    ['127.3.4.5', true],
    ['::1', true],
    ['[::1]', true],
    ['localhost', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.1.2.3', false],
    ['127.0.0.1.example.com', false],
  ])('isLoopbackHost(%p) is %p', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});
