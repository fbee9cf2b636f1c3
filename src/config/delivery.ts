/**
 * The Collector bridge's settings, resolved by the config layer before receiver/ gets them:
 * explicit options (flags, YAML) > environment, each validated, a bad value warned about and the
 * next source applied; an unset one stays unset and takes receiver/'s default.
 *
 *   Prometheus endpoint   SPANBRIDGE_PROMETHEUS_PORT (0 or "off" disables), SPANBRIDGE_PROMETHEUS_HOST
 *   span queue            OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
 *                         OTEL_BSP_SCHEDULE_DELAY, SPANBRIDGE_QUEUE_MAX_BYTES (memory cap;
 *                         bytes, or with a KiB/MiB/GiB suffix)
 *   retry                 SPANBRIDGE_RETRY_MAX_ELAPSED_MS
 *   metrics export        OTEL_METRIC_EXPORT_INTERVAL (ms),
 *                         OTEL_METRICS_EXPORTER ("otlp" default; "none" or a list without "otlp" turns
 *                         OTLP metrics off; the Prometheus endpoint has its own switch)
 *   resource              OTEL_RESOURCE_ATTRIBUTES (merged under the explicit attributes),
 *                         OTEL_SERVICE_NAME (the agent's own resource)
 *   OTLP endpoints        OTEL_EXPORTER_OTLP_* (src/config/otlp.ts)
 */
import type { Attributes, BridgeSettings, OtlpExporterConfig } from '../../receiver/model';
import { envValue, type Env, type Warn } from './env';
import { resolveOtlpConfig, type OtlpExporterOptions } from './otlp';
import { parseByteSize, parsePrometheusPort } from './units';

const MAX_TIMER_MS = 2 ** 31 - 1;

/** What the agent hands receiver/: every value resolved, no environment left to read. */
export interface ResolvedDelivery {
  readonly bridge: BridgeSettings;
  /** `undefined`: spans are not exported over OTLP (RED metrics still are). */
  readonly traces: OtlpExporterConfig | undefined;
  /** `undefined`: no OTLP metrics. */
  readonly metricsOtlp: OtlpExporterConfig | undefined;
}

export interface DeliveryInput {
  /** Explicit OTLP settings for both signals (CLI flags, YAML); they win over the environment. */
  readonly otlp?: OtlpExporterOptions;
  /** Per-signal explicit settings; they win over `otlp`, key by key. */
  readonly traces?: OtlpExporterOptions;
  readonly metricsOtlp?: OtlpExporterOptions;
  /** false: nothing is pushed over OTLP (spans and metrics); the Prometheus endpoint stays. */
  readonly otlpExport?: boolean;
  /** Explicit bridge settings (CLI flags, YAML), validated here. */
  readonly bridge?: BridgeSettings;
  /** The environment (process.env in the agent). */
  readonly env: Env;
}

/** The bridge and both OTLP signals, resolved. Never throws: bad values are warned about and skipped. */
export function resolveDelivery(input: DeliveryInput, warn: Warn = () => {}): ResolvedDelivery {
  const { env } = input;
  const bridge = resolveBridgeSettings(input.bridge, env, warn);
  const otlpOn = input.otlpExport !== false;
  return {
    bridge,
    traces: otlpOn ? resolveOtlpConfig('traces', { ...input.otlp, ...input.traces }, env, warn) : undefined,
    metricsOtlp: otlpOn && bridge.otlpMetrics !== false ? resolveOtlpConfig('metrics', { ...input.otlp, ...input.metricsOtlp }, env, warn) : undefined,
  };
}

/** Spans only (batcher + OTLP exporter): the traces signal and the queue and retry settings. */
export function resolveTraceExport(
  input: { readonly otlp?: OtlpExporterOptions; readonly batch?: BridgeSettings['queue']; readonly env: Env },
  warn: Warn = () => {},
): { traces: OtlpExporterConfig; batch: BridgeSettings['queue']; retry: BridgeSettings['retry'] } {
  const traces = resolveOtlpConfig('traces', input.otlp, input.env, warn);
  const bridge = resolveBridgeSettings({ queue: input.batch }, input.env, warn);
  return { traces, batch: bridge.queue, retry: bridge.retry };
}

/** The bridge's own settings: explicit > environment; unset ones stay unset (receiver/'s defaults). */
export function resolveBridgeSettings(options: BridgeSettings = {}, env: Env, warn: Warn = () => {}): BridgeSettings {
  const q = options.queue;
  const prometheus = resolvePrometheusPort(options, env, warn);
  const prometheusHost = options.prometheusHost?.trim() || envValue(env, 'SPANBRIDGE_PROMETHEUS_HOST');
  const queue = definedOnly({
    maxQueueSize: positiveInt('maxQueueSize', q?.maxQueueSize, 'OTEL_BSP_MAX_QUEUE_SIZE', env, warn),
    maxBatchSize: positiveInt('maxBatchSize', q?.maxBatchSize, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', env, warn),
    scheduledDelayMs: positiveInt('scheduledDelayMs', q?.scheduledDelayMs, 'OTEL_BSP_SCHEDULE_DELAY', env, warn, MAX_TIMER_MS),
    maxQueueBytes: resolveBytes(q?.maxQueueBytes, env, warn),
    shutdownTimeoutMs: positiveInt('shutdownTimeoutMs', q?.shutdownTimeoutMs, undefined, env, warn, MAX_TIMER_MS),
  });
  const retry = definedOnly({
    ...options.retry,
    maxElapsedMs: positiveInt('retry.maxElapsedMs', options.retry?.maxElapsedMs, 'SPANBRIDGE_RETRY_MAX_ELAPSED_MS', env, warn, MAX_TIMER_MS),
  });
  const agentServiceName = options.agentServiceName ?? envValue(env, 'OTEL_SERVICE_NAME');
  return definedOnly({
    prometheusPort: prometheus,
    prometheusHost,
    queue,
    retry,
    metricExportIntervalMs: positiveInt('metricExportIntervalMs', options.metricExportIntervalMs, 'OTEL_METRIC_EXPORT_INTERVAL', env, warn, MAX_TIMER_MS),
    otlpMetrics: options.otlpMetrics ?? resolveMetricsExporter(env, warn),
    resourceAttributes: { ...parseResourceAttributesEnv(envValue(env, 'OTEL_RESOURCE_ATTRIBUTES'), warn), ...options.resourceAttributes },
    agentServiceName,
    maxRedSeries: positiveInt('maxRedSeries', options.maxRedSeries, undefined, env, warn),
  });
}

/** `k1=v1,k2=v2`, keys and values trimmed and percent-decoded; bad entries warned about and skipped. */
export function parseResourceAttributesEnv(raw: string | undefined, warn: Warn, source = 'OTEL_RESOURCE_ATTRIBUTES'): Attributes {
  const out: Attributes = {};
  if (!raw) return out;
  for (const entry of raw.split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      warn(`resource: ignoring entry ${JSON.stringify(entry.trim())} in ${source}: expected key=value`);
      continue;
    }
    try {
      const key = decodeURIComponent(entry.slice(0, eq).trim());
      if (key === '') throw new URIError('empty key');
      out[key] = decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      warn(`resource: ignoring entry ${JSON.stringify(entry.trim())} in ${source}: invalid percent-encoding`);
    }
  }
  return out;
}

function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function resolvePrometheusPort(options: BridgeSettings, env: Env, warn: Warn): number | 'off' | undefined {
  const candidates: Array<[string, string | number | undefined]> = [
    ['prometheus port option', options.prometheusPort],
    ['SPANBRIDGE_PROMETHEUS_PORT', envValue(env, 'SPANBRIDGE_PROMETHEUS_PORT')],
  ];
  for (const [source, raw] of candidates) {
    if (raw === undefined) continue;
    const port = parsePrometheusPort(raw);
    if (port !== undefined) return port;
    warn(`config: ignoring ${source} ${JSON.stringify(raw)}: expected a port 1..65535, 0 or off`);
  }
  return undefined;
}

function resolveBytes(option: number | undefined, env: Env, warn: Warn): number | undefined {
  if (option !== undefined) {
    if (Number.isSafeInteger(option) && option > 0) return option;
    warn(`config: ignoring queue maxQueueBytes=${option}: expected a positive integer`);
  }
  const raw = envValue(env, 'SPANBRIDGE_QUEUE_MAX_BYTES');
  if (raw !== undefined) {
    const bytes = parseByteSize(raw);
    if (bytes !== undefined) return bytes;
    warn(`config: ignoring SPANBRIDGE_QUEUE_MAX_BYTES=${JSON.stringify(raw)}: expected bytes, optionally with KiB, MiB or GiB`);
  }
  return undefined;
}

function positiveInt(name: string, option: number | undefined, envName: string | undefined, env: Env, warn: Warn, max = 2 ** 31 - 1): number | undefined {
  const ok = (n: number): boolean => Number.isInteger(n) && n > 0 && n <= max;
  if (option !== undefined) {
    if (ok(option)) return option;
    warn(`config: ignoring ${name}=${option}: expected a positive integer up to ${max}`);
  }
  const raw = envName ? envValue(env, envName) : undefined;
  if (envName && raw !== undefined) {
    if (ok(Number(raw))) return Number(raw);
    warn(`config: ignoring ${envName}=${JSON.stringify(raw)}: expected a positive integer up to ${max}`);
  }
  return undefined;
}

function resolveMetricsExporter(env: Env, warn: Warn): boolean {
  const raw = envValue(env, 'OTEL_METRICS_EXPORTER');
  if (raw === undefined) return true;
  const names = raw.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const n of names) {
    if (n !== 'otlp' && n !== 'none' && n !== 'prometheus') warn(`config: OTEL_METRICS_EXPORTER: ignoring unknown exporter ${JSON.stringify(n)}`);
  }
  return names.includes('otlp');
}
