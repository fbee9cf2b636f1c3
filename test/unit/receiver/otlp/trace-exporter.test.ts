import { resolveOtlpTraceConfig } from '../../../../src/config/otlp';
import { OtlpTraceExporter } from '../../../../receiver/otlp/trace-exporter';
import type { RetryPolicy } from '../../../../receiver/otlp/retry';
import { ResourceMerger } from '../../../../receiver/resource-merge';
import { EXPORT_ATTEMPTS, EXPORT_FAILURES, EXPORT_RETRIES, SPANS_DROPPED, SPANS_EXPORTED } from '../../../../receiver/self-metrics';
import { SelfMetrics } from '../../../../src/metrics/counters';
import { decodeTraceRequest, flattenSpans } from '../helpers/otlp-proto';
import { ok, recordingLog, startOtlpServer, unusedPort, type TestServer } from '../helpers/otlp-server';
import { makeResource, makeSpan } from '../../../fixtures/spans';

describe('OtlpTraceExporter (against a real local HTTP server)', () => {
  let server: TestServer | undefined;
  let exporter: OtlpTraceExporter | undefined;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };

  beforeAll(() => process.on('unhandledRejection', onUnhandled));
  afterAll(() => process.off('unhandledRejection', onUnhandled));
  afterEach(async () => {
    await exporter?.shutdown();
    await server?.close();
    exporter = undefined;
    server = undefined;
    expect(unhandled).toEqual([]);
  });

  /** Short delays so retry tests take milliseconds. */
  const FAST_RETRY: RetryPolicy = { initialBackoffMs: 10, maxBackoffMs: 20, multiplier: 2, jitter: 0, maxElapsedMs: 300 };

  function setup(
    url: string,
    env: Record<string, string> = {},
    retry: RetryPolicy = FAST_RETRY,
    retryHooks: { sleep?: (ms: number) => Promise<void> } = {},
  ) {
    const metrics = new SelfMetrics();
    const log = recordingLog();
    const config = resolveOtlpTraceConfig({ endpoint: url }, env, log.warn);
    exporter = new OtlpTraceExporter(config, metrics, log, { retry, retryHooks });
    return { metrics, log, exporter };
  }

  it('posts protobuf that decodes to the spans sent, with env headers, and counts them', async () => {
    server = await startOtlpServer(ok);
    const { metrics, log, exporter } = setup(server.url, {
      OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=s%3Dcret',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=t1',
    });
    const a = makeResource('frontend', 10);
    const b = makeResource('backend', 20);
    const root = makeSpan(a, { startTimeUnixNano: 1732500000123456789n });
    const child = makeSpan(a, { kind: 'CLIENT', traceId: root.traceId, parentSpanId: root.spanId, name: 'GET' });
    const remote = makeSpan(b, { traceId: root.traceId, parentSpanId: child.spanId, traceState: 'k=v' });
    await exporter.export([root, child, remote]);

    expect(server.requests).toHaveLength(1);
    const [req] = server.requests;
    expect(req.headers['content-type']).toBe('application/x-protobuf');
    expect(req.headers['x-api-key']).toBe('s=cret');
    expect(req.headers['x-tenant']).toBe('t1');
    const decoded = flattenSpans(decodeTraceRequest(req.body));
    expect(decoded.map((s) => [s.traceId, s.spanId, s.parentSpanId, s.name, s.kind, s.traceState])).toEqual([
      [root.traceId, root.spanId, '', root.name, 2, ''],
      [root.traceId, child.spanId, root.spanId, 'GET', 3, ''],
      [root.traceId, remote.spanId, child.spanId, remote.name, 2, 'k=v'],
    ]);
    expect(decoded[0].startTimeUnixNano).toBe(1732500000123456789n);
    expect(decoded.map((s) => s.resource['service.name'])).toEqual(['frontend', 'frontend', 'backend']);
    expect(metrics.get(SPANS_EXPORTED)).toBe(3);
    expect(metrics.total(SPANS_DROPPED)).toBe(0);
    expect(log.warnings).toEqual([]);
  });

  it('retries an attempt that timed out, then gives up at the maximum elapsed time (retry_exhausted)', async () => {
    server = await startOtlpServer(() => 'hang');
    const { metrics, log, exporter } = setup(server.url, { OTEL_EXPORTER_OTLP_TIMEOUT: '100' }, { ...FAST_RETRY, maxElapsedMs: 400 });
    await exporter.export([makeSpan(makeResource('svc', 1)), makeSpan(makeResource('svc', 1))]);
    expect(metrics.get(EXPORT_ATTEMPTS, { signal: 'traces' })).toBeGreaterThanOrEqual(2);
    expect(metrics.get(EXPORT_RETRIES, { signal: 'traces' })).toBe(metrics.get(EXPORT_ATTEMPTS, { signal: 'traces' }) - 1);
    expect(metrics.get(EXPORT_FAILURES, { signal: 'traces' })).toBe(1);
    expect(metrics.get(SPANS_DROPPED, { reason: 'retry_exhausted' })).toBe(2);
    expect(metrics.get(SPANS_EXPORTED)).toBe(0);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toMatch(/did not answer within \d+ ms \(gave up after \d+ attempts within 400 ms\); dropped 2 spans/);
  });

  it('does not retry a 400 (export_failed); retries a 503 and honours its Retry-After', async () => {
    const statuses = [400, 503, 200];
    const seenAt: number[] = [];
    server = await startOtlpServer((_req, res) => {
      seenAt.push(Date.now());
      const status = statuses.shift() ?? 200;
      res.writeHead(status, status === 503 ? { 'retry-after': '1' } : {});
      res.end(status === 200 ? '' : 'nope');
    });
    const sleeps: number[] = [];
    const { metrics } = setup(server.url, {}, { ...FAST_RETRY, maxElapsedMs: 60_000 }, {
      sleep: async (ms: number) => {
        sleeps.push(ms);
      },
    });
    await exporter!.export([makeSpan(makeResource('svc', 1))]);
    expect(metrics.get(SPANS_DROPPED, { reason: 'export_failed' })).toBe(1);
    expect(metrics.get(EXPORT_ATTEMPTS, { signal: 'traces' })).toBe(1);
    await exporter!.export([makeSpan(makeResource('svc', 1)), makeSpan(makeResource('svc', 1))]);
    expect(sleeps).toEqual([1000]); // Retry-After: 1, not the 10 ms backoff
    expect(metrics.get(EXPORT_ATTEMPTS, { signal: 'traces' })).toBe(3);
    expect(metrics.get(EXPORT_RETRIES, { signal: 'traces' })).toBe(1);
    expect(metrics.get(EXPORT_FAILURES, { signal: 'traces' })).toBe(1);
    expect(metrics.get(SPANS_EXPORTED)).toBe(2);
    expect(server.requests).toHaveLength(3);
  });

  it('survives a Collector that is down: retried, counted drop, no throw, no unhandled rejection, one warning', async () => {
    const port = await unusedPort();
    const { metrics, log, exporter } = setup(`http://127.0.0.1:${port}/v1/traces`);
    const resource = makeResource('svc', 1);
    for (let i = 0; i < 5; i++) await expect(exporter.export([makeSpan(resource), makeSpan(resource)])).resolves.toBeUndefined();
    await new Promise((r) => setImmediate(r));
    expect(metrics.get(EXPORT_FAILURES, { signal: 'traces' })).toBe(5);
    expect(metrics.get(EXPORT_RETRIES, { signal: 'traces' })).toBeGreaterThanOrEqual(5);
    expect(metrics.get(SPANS_DROPPED, { reason: 'retry_exhausted' })).toBe(10);
    expect(log.warnings).toHaveLength(1); // rate-limited: not one line per failed batch
    expect(log.warnings[0]).toMatch(/ECONNREFUSED/);
  });

  it('logs a recovery once exports succeed again', async () => {
    let fail = true;
    server = await startOtlpServer((_req, res) => {
      res.writeHead(fail ? 401 : 200);
      res.end();
    });
    const { metrics, log, exporter } = setup(server.url);
    const resource = makeResource('svc', 1);
    await exporter.export([makeSpan(resource)]);
    await exporter.export([makeSpan(resource)]);
    fail = false;
    await exporter.export([makeSpan(resource)]);
    expect(log.warnings).toHaveLength(1);
    expect(log.infos).toEqual([expect.stringMatching(/export recovered after 2 failed exports; last error: .*HTTP 401/)]);
    expect(metrics.get(SPANS_EXPORTED)).toBe(1);
  });

  it('abort() ends a batch being retried; its spans are dropped with reason shutdown', async () => {
    const port = await unusedPort();
    const { metrics, exporter } = setup(`http://127.0.0.1:${port}/v1/traces`, {}, { ...FAST_RETRY, maxElapsedMs: 600_000 });
    const resource = makeResource('svc', 1);
    const done = exporter.export([makeSpan(resource), makeSpan(resource), makeSpan(resource)]);
    await new Promise((r) => setTimeout(r, 100));
    exporter.abort();
    await done;
    expect(metrics.get(SPANS_DROPPED, { reason: 'shutdown' })).toBe(3);
    expect(metrics.get(EXPORT_FAILURES, { signal: 'traces' })).toBe(1);
  });

  it('merges the agent resource attributes into every span resource (the process wins)', async () => {
    server = await startOtlpServer(ok);
    const metrics = new SelfMetrics();
    const log = recordingLog();
    const config = resolveOtlpTraceConfig({ endpoint: server.url }, {}, log.warn);
    exporter = new OtlpTraceExporter(config, metrics, log, {
      resources: new ResourceMerger({ 'deployment.environment': 'prod', 'service.name': 'agent-side' }),
    });
    const a = makeResource('frontend', 10);
    await exporter.export([makeSpan(a), makeSpan(a)]);
    const request = decodeTraceRequest(server.requests[0].body);
    expect(request).toHaveLength(1); // still one resource
    expect(request[0].resource).toEqual({ ...a.attributes, 'deployment.environment': 'prod' });
  });

  it('counts spans handed over after shutdown as dropped (reason shutdown)', async () => {
    server = await startOtlpServer(ok);
    const { metrics, exporter } = setup(server.url);
    await exporter.shutdown();
    await exporter.export([makeSpan(makeResource('svc', 1))]);
    expect(metrics.get(SPANS_DROPPED, { reason: 'shutdown' })).toBe(1);
    expect(server.requests).toHaveLength(0);
  });
});
