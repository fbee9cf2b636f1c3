/**
 * The committed collector-config/otelcol-spanbridge.yaml, run as-is by the stock Collector (ports
 * and paths through its ${env:...} variables): its prometheus receiver scrapes the bridge's
 * Prometheus endpoint and those metrics reach the Collector's file output; spans sent over OTLP go
 * through its traces pipeline (memory_limiter + batch).
 *
 * OTLP metrics are turned off in the bridge here (OTEL_METRICS_EXPORTER=none), so every metric in
 * the output came through the scrape.
 */
import { bridgeFromEnv } from '../helpers/delivery';
import path from 'node:path';
import { SPANS_EXPORTED, type CollectorBridge } from '../../receiver/index';
import { SelfMetrics } from '../../src/metrics/counters';
import { freePort, startCollector, type FlatMetricPoint, type RunningCollector } from './helpers/collector';
import { syntheticResource, syntheticSpan } from './helpers/bridge-driver';

jest.setTimeout(90_000);

const CONFIG = path.resolve(__dirname, '../../collector-config/otelcol-spanbridge.yaml');

describe('collector-config/otelcol-spanbridge.yaml with the stock Collector', () => {
  let collector: RunningCollector | undefined;
  let bridge: CollectorBridge | undefined;

  afterAll(async () => {
    await bridge?.shutdown();
    await collector?.stop();
  });

  it('scrapes the agent (RED + self-metrics reach the output) and carries its traces', async () => {
    const promPort = await freePort();
    const metrics = new SelfMetrics();
    metrics.set('spanbridge_processes_attached', 'Processes currently traced', {}, 3);
    metrics.set('spanbridge_kernel_drops', 'Kernel-side drops and skips (cumulative), by reason', { reason: 'ringbuf_full' }, 5);
    const warnings: string[] = [];
    collector = await startCollector({
      configFile: CONFIG,
      env: {
        SPANBRIDGE_PROMETHEUS_TARGET: `127.0.0.1:${promPort}`,
        SPANBRIDGE_SCRAPE_INTERVAL: '1s',
        SPANBRIDGE_BATCH_TIMEOUT: '200ms',
        SPANBRIDGE_COLLECTOR_TELEMETRY_LEVEL: 'none',
      },
    });
    bridge = bridgeFromEnv({
      metrics,
      log: { warn: (m) => warnings.push(m), info: () => {} },
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
        OTEL_METRICS_EXPORTER: 'none',
        SPANBRIDGE_PROMETHEUS_PORT: String(promPort),
      },
      bridge: { queue: { scheduledDelayMs: 100 } },
    });
    await bridge.start();
    const resource = syntheticResource('inventory');
    const sent = Array.from({ length: 40 }, () => syntheticSpan(resource, {}, 40));
    for (const s of sent) bridge.add(s);
    await bridge.forceFlush();

    // Traces: through the committed traces pipeline.
    const ids = new Set(sent.map((s) => s.spanId));
    await collector.waitForSpans((all) => new Set(all.filter((s) => ids.has(s.spanId)).map((s) => s.spanId)).size === sent.length, 20_000);

    // Metrics: only through the scrape (OTLP metrics are off).
    const isRed = (p: FlatMetricPoint): boolean => p.name.startsWith('http_server_request_duration');
    const points = await collector.waitForMetrics(
      (all) =>
        all.some((p) => isRed(p) && p.count === sent.length) &&
        all.some((p) => p.name.startsWith(SPANS_EXPORTED.replace(/_total$/, '')) && p.value === sent.length),
      30_000,
    );
    const red = points.filter((p) => isRed(p) && p.count === sent.length);
    expect(red[0]).toMatchObject({
      type: 'histogram',
      attributes: { service_name: 'inventory', http_request_method: 'GET', http_route: '/items/{id}', http_response_status_code: '200' },
      explicitBounds: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10],
    });
    // The scrape job names the resource.
    expect(red[0].resource['service.name']).toBe('spanbridge');
    const names = new Set(points.map((p) => p.name));
    for (const expected of ['spanbridge_processes_attached', 'spanbridge_kernel_drops', 'spanbridge_export_queue_spans', 'spanbridge_export_attempts']) {
      expect([...names].some((n) => n.startsWith(expected))).toBe(true);
    }
    expect(points.find((p) => p.name === 'spanbridge_kernel_drops')).toMatchObject({ value: 5, attributes: { reason: 'ringbuf_full' } });
    expect(warnings).toEqual([]);
  });
});
