import { BATCHER_DEFAULTS } from '../../../receiver/batcher';
import { bridgeConfigFrom } from '../../../receiver/bridge-config';
import { DEFAULT_RETRY_POLICY } from '../../../receiver/otlp/retry';
import { agentResource, ResourceMerger } from '../../../receiver/resource-merge';
import { parseResourceAttributesEnv, resolveBridgeSettings, resolveDelivery } from '../../../src/config/delivery';
import { parsePrometheusPort } from '../../../src/config/units';

/** What the bridge runs with: the config layer's resolution, then receiver/'s defaults. */
function resolve(env: Record<string, string>, options = {}) {
  const warnings: string[] = [];
  return { config: bridgeConfigFrom(resolveBridgeSettings(options, env, (m) => warnings.push(m))), warnings };
}

describe('resolveBridgeSettings (src/config/delivery.ts) + bridgeConfigFrom (receiver/)', () => {
  it('defaults: Prometheus on 127.0.0.1:9400, 64 MiB queue, 300 s retry budget, 60 s metric interval', () => {
    const { config, warnings } = resolve({});
    expect(config.prometheus).toEqual({ host: '127.0.0.1', port: 9400 });
    expect(config.queue).toEqual(BATCHER_DEFAULTS);
    expect(config.queue.maxQueueBytes).toBe(64 * 1024 * 1024);
    expect(config.retry).toEqual(DEFAULT_RETRY_POLICY);
    expect(config.metricExportIntervalMs).toBe(60_000);
    expect(config.otlpMetrics).toBe(true);
    expect(config.resourceAttributes).toEqual({});
    expect(warnings).toEqual([]);
  });

  it('Prometheus port: option > SPANBRIDGE_PROMETHEUS_PORT > 9400; 0 and off disable; bad values warned', () => {
    expect(resolve({ SPANBRIDGE_PROMETHEUS_PORT: '9500' }).config.prometheus?.port).toBe(9500);
    expect(resolve({ SPANBRIDGE_PROMETHEUS_PORT: '9500' }, { prometheusPort: 9600 }).config.prometheus?.port).toBe(9600);
    expect(resolve({ SPANBRIDGE_PROMETHEUS_PORT: 'off' }).config.prometheus).toBeUndefined();
    expect(resolve({ SPANBRIDGE_PROMETHEUS_PORT: '0' }).config.prometheus).toBeUndefined();
    expect(resolve({}, { prometheusPort: 'off' }).config.prometheus).toBeUndefined();
    expect(resolve({ SPANBRIDGE_PROMETHEUS_HOST: '0.0.0.0' }).config.prometheus).toEqual({ host: '0.0.0.0', port: 9400 });
    const bad = resolve({ SPANBRIDGE_PROMETHEUS_PORT: '70000' });
    expect(bad.config.prometheus?.port).toBe(9400);
    expect(bad.warnings).toEqual([expect.stringMatching(/SPANBRIDGE_PROMETHEUS_PORT "70000"/)]);
    expect(parsePrometheusPort('OFF')).toBe('off');
    expect(parsePrometheusPort('x')).toBeUndefined();
  });

  it('queue and intervals from OTEL_BSP_*, SPANBRIDGE_QUEUE_MAX_BYTES, OTEL_METRIC_EXPORT_INTERVAL', () => {
    const { config, warnings } = resolve({
      OTEL_BSP_MAX_QUEUE_SIZE: '1000',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '100',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      SPANBRIDGE_QUEUE_MAX_BYTES: '8MiB',
      OTEL_METRIC_EXPORT_INTERVAL: '5000',
      SPANBRIDGE_RETRY_MAX_ELAPSED_MS: '60000',
    });
    expect(config.queue).toMatchObject({ maxQueueSize: 1000, maxBatchSize: 100, scheduledDelayMs: 200, maxQueueBytes: 8 * 1024 * 1024 });
    expect(config.metricExportIntervalMs).toBe(5000);
    expect(config.retry.maxElapsedMs).toBe(60_000);
    expect(warnings).toEqual([]);
  });

  it('bad values are warned about and the defaults apply', () => {
    const { config, warnings } = resolve({ OTEL_BSP_MAX_QUEUE_SIZE: '-3', SPANBRIDGE_QUEUE_MAX_BYTES: 'lots', OTEL_METRIC_EXPORT_INTERVAL: '1.5' });
    expect(config.queue.maxQueueSize).toBe(BATCHER_DEFAULTS.maxQueueSize);
    expect(config.queue.maxQueueBytes).toBe(BATCHER_DEFAULTS.maxQueueBytes);
    expect(config.metricExportIntervalMs).toBe(60_000);
    expect(warnings).toHaveLength(3);
  });

  it('options win over the environment', () => {
    const { config } = resolve({ SPANBRIDGE_QUEUE_MAX_BYTES: '8MiB' }, { queue: { maxQueueBytes: 1000 }, metricExportIntervalMs: 250 });
    expect(config.queue.maxQueueBytes).toBe(1000);
    expect(config.metricExportIntervalMs).toBe(250);
  });

  it('OTEL_METRICS_EXPORTER: otlp by default; none or a list without otlp turns OTLP metrics off', () => {
    expect(resolve({ OTEL_METRICS_EXPORTER: 'none' }).config.otlpMetrics).toBe(false);
    expect(resolve({ OTEL_METRICS_EXPORTER: 'prometheus' }).config.otlpMetrics).toBe(false);
    expect(resolve({ OTEL_METRICS_EXPORTER: 'otlp,prometheus' }).config.otlpMetrics).toBe(true);
  });
});

describe('OTEL_RESOURCE_ATTRIBUTES', () => {
  it('parses k=v pairs, percent-decoded; warns about bad entries', () => {
    const warnings: string[] = [];
    expect(parseResourceAttributesEnv('deployment.environment=prod, team = a%20b,broken,=x', (m) => warnings.push(m))).toEqual({
      'deployment.environment': 'prod',
      team: 'a b',
    });
    expect(warnings).toHaveLength(2);
  });

  it('fills in process resources (the process wins), one merged object per input object', () => {
    const merger = new ResourceMerger({ 'deployment.environment': 'prod', 'service.name': 'from-agent-env' });
    const r = { attributes: { 'service.name': 'checkout', 'process.pid': 7 } };
    const merged = merger.merge(r);
    expect(merged.attributes).toEqual({ 'deployment.environment': 'prod', 'service.name': 'checkout', 'process.pid': 7 });
    expect(merger.merge(r)).toBe(merged);
    const none = new ResourceMerger({});
    expect(none.merge(r)).toBe(r);
  });

  it("applies in full to the agent's own resource; OTEL_SERVICE_NAME names the agent", () => {
    expect(agentResource({ 'deployment.environment': 'prod' }, resolveBridgeSettings({}, {}).agentServiceName).attributes).toMatchObject({
      'service.name': 'spanbridge',
      'deployment.environment': 'prod',
      'telemetry.sdk.name': 'spanbridge',
    });
    const named = resolveBridgeSettings({}, { OTEL_SERVICE_NAME: 'agent-eu' }).agentServiceName;
    expect(agentResource({ 'service.name': 'x' }, named).attributes['service.name']).toBe('agent-eu');
  });
});

describe('resolveDelivery: everything receiver/ needs, resolved', () => {
  it('both OTLP signals from the environment; OTEL_METRICS_EXPORTER=none or --export none turn them off', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SERVICE_NAME: 'agent-eu' };
    const all = resolveDelivery({ env });
    expect(all.traces?.endpoint).toBe('http://collector:4318/v1/traces');
    expect(all.metricsOtlp?.endpoint).toBe('http://collector:4318/v1/metrics');
    expect(all.bridge.agentServiceName).toBe('agent-eu');
    const noMetrics = resolveDelivery({ env: { ...env, OTEL_METRICS_EXPORTER: 'none' } });
    expect(noMetrics.traces).toBeDefined();
    expect(noMetrics.metricsOtlp).toBeUndefined();
    const none = resolveDelivery({ env, otlpExport: false });
    expect(none.traces).toBeUndefined();
    expect(none.metricsOtlp).toBeUndefined();
  });

  it('per-signal options win over the shared ones, key by key; warnings go to the callback', () => {
    const warnings: string[] = [];
    const r = resolveDelivery(
      { env: { OTEL_EXPORTER_OTLP_TIMEOUT: 'soon' }, otlp: { baseEndpoint: 'http://a:4318', timeoutMs: 500 }, traces: { endpoint: 'http://b:4318/t' } },
      (m) => warnings.push(m),
    );
    expect(r.traces).toMatchObject({ endpoint: 'http://b:4318/t', timeoutMs: 500 });
    expect(r.metricsOtlp).toMatchObject({ endpoint: 'http://a:4318/v1/metrics', timeoutMs: 500 });
    expect(warnings).toEqual([]);
  });
});
