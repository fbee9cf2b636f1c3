/**
 * The bridge's own settings (everything but the per-signal OTLP endpoint settings, which
 * otlp/config.ts resolves), merged as explicit options > environment > defaults. A bad value is
 * warned about and the next source applies.
 *
 *   Prometheus endpoint   SPANBRIDGE_PROMETHEUS_PORT (default 9400; 0 or "off" disables),
 *                         SPANBRIDGE_PROMETHEUS_HOST (default 127.0.0.1)
 *   span queue            OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
 *                         OTEL_BSP_SCHEDULE_DELAY, SPANBRIDGE_QUEUE_MAX_BYTES (memory cap;
 *                         bytes, or with a KiB/MiB/GiB suffix)
 *   retry                 SPANBRIDGE_RETRY_MAX_ELAPSED_MS (default 300000)
 *   metrics export        OTEL_METRIC_EXPORT_INTERVAL (default 60000 ms),
 *                         OTEL_METRICS_EXPORTER ("otlp" default; "none" or a list without "otlp" turns
 *                         OTLP metrics off; the Prometheus endpoint has its own switch)
 *   resource              OTEL_RESOURCE_ATTRIBUTES (see resource-merge.ts for precedence)
 */
import type { Attributes } from './model';
import { BATCHER_DEFAULTS, type SpanBatcherOptions } from './batcher';
import { DEFAULT_METRIC_EXPORT_INTERVAL_MS } from './otlp/metrics-exporter';
import { envValue, type Env, type Warn } from './otlp/config';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './otlp/retry';
import { parseResourceAttributesEnv } from './resource-merge';

export const DEFAULT_PROMETHEUS_PORT = 9400;
export const DEFAULT_PROMETHEUS_HOST = '127.0.0.1';

export interface BridgeOptions {
  /** A port, or 0 / 'off' to disable the endpoint. */
  readonly prometheusPort?: number | 'off';
  readonly prometheusHost?: string;
  readonly queue?: SpanBatcherOptions;
  readonly retry?: Partial<RetryPolicy>;
  readonly metricExportIntervalMs?: number;
  /** false: no OTLP metrics (the Prometheus endpoint is unaffected). */
  readonly otlpMetrics?: boolean;
  /** Added to the parsed OTEL_RESOURCE_ATTRIBUTES (these win). */
  readonly resourceAttributes?: Attributes;
  /** Attribute sets per RED instrument before the overflow series (default 2000). */
  readonly maxRedSeries?: number;
}

export interface BridgeConfig {
  /** `undefined`: the Prometheus endpoint is disabled. */
  readonly prometheus: { readonly host: string; readonly port: number } | undefined;
  readonly queue: Required<SpanBatcherOptions>;
  readonly retry: RetryPolicy;
  readonly metricExportIntervalMs: number;
  readonly otlpMetrics: boolean;
  readonly resourceAttributes: Attributes;
  readonly maxRedSeries: number;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export function resolveBridgeConfig(options: BridgeOptions = {}, env: Env, warn: Warn = () => {}): BridgeConfig {
  return {
    prometheus: resolvePrometheus(options, env, warn),
    queue: {
      maxQueueSize: positiveInt('maxQueueSize', options.queue?.maxQueueSize, 'OTEL_BSP_MAX_QUEUE_SIZE', env, warn, BATCHER_DEFAULTS.maxQueueSize),
      maxBatchSize: positiveInt('maxBatchSize', options.queue?.maxBatchSize, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', env, warn, BATCHER_DEFAULTS.maxBatchSize),
      scheduledDelayMs: positiveInt('scheduledDelayMs', options.queue?.scheduledDelayMs, 'OTEL_BSP_SCHEDULE_DELAY', env, warn, BATCHER_DEFAULTS.scheduledDelayMs, MAX_TIMER_MS),
      maxQueueBytes: resolveBytes(options.queue?.maxQueueBytes, env, warn),
      shutdownTimeoutMs: positiveInt('shutdownTimeoutMs', options.queue?.shutdownTimeoutMs, undefined, env, warn, BATCHER_DEFAULTS.shutdownTimeoutMs, MAX_TIMER_MS),
    },
    retry: {
      ...DEFAULT_RETRY_POLICY,
      ...options.retry,
      maxElapsedMs: positiveInt('retry.maxElapsedMs', options.retry?.maxElapsedMs, 'SPANBRIDGE_RETRY_MAX_ELAPSED_MS', env, warn, DEFAULT_RETRY_POLICY.maxElapsedMs, MAX_TIMER_MS),
    },
    metricExportIntervalMs: positiveInt('metricExportIntervalMs', options.metricExportIntervalMs, 'OTEL_METRIC_EXPORT_INTERVAL', env, warn, DEFAULT_METRIC_EXPORT_INTERVAL_MS, MAX_TIMER_MS),
    otlpMetrics: options.otlpMetrics ?? resolveMetricsExporter(env, warn),
    resourceAttributes: { ...parseResourceAttributesEnv(envValue(env, 'OTEL_RESOURCE_ATTRIBUTES'), warn), ...options.resourceAttributes },
    maxRedSeries: positiveInt('maxRedSeries', options.maxRedSeries, undefined, env, warn, 2000),
  };
}

function resolvePrometheus(options: BridgeOptions, env: Env, warn: Warn): BridgeConfig['prometheus'] {
  const host = options.prometheusHost?.trim() || envValue(env, 'SPANBRIDGE_PROMETHEUS_HOST') || DEFAULT_PROMETHEUS_HOST;
  const candidates: Array<[string, string | number | undefined]> = [
    ['prometheus port option', options.prometheusPort],
    ['SPANBRIDGE_PROMETHEUS_PORT', envValue(env, 'SPANBRIDGE_PROMETHEUS_PORT')],
  ];
  for (const [source, raw] of candidates) {
    if (raw === undefined) continue;
    const port = parsePrometheusPort(raw);
    if (port === 'off') return undefined;
    if (port !== undefined) return { host, port };
    warn(`config: ignoring ${source} ${JSON.stringify(raw)}: expected a port 1..65535, 0 or off`);
  }
  return { host, port: DEFAULT_PROMETHEUS_PORT };
}

/** A port 1..65535, 'off' for 0 / "off", `undefined` for anything else. */
export function parsePrometheusPort(raw: string | number): number | 'off' | undefined {
  const s = String(raw).trim().toLowerCase();
  if (s === 'off' || s === '0') return 'off';
  if (!/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3 };

/** "67108864", "64MiB", "512 KiB", "1g" -> bytes; `undefined` when unusable. */
export function parseByteSize(raw: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw);
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2].toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.floor(Number(m[1]) * unit);
  return bytes > 0 && Number.isSafeInteger(bytes) ? bytes : undefined;
}

function resolveBytes(option: number | undefined, env: Env, warn: Warn): number {
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
  return BATCHER_DEFAULTS.maxQueueBytes;
}

function positiveInt(
  name: string,
  option: number | undefined,
  envName: string | undefined,
  env: Env,
  warn: Warn,
  fallback: number,
  max = 2 ** 31 - 1,
): number {
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
  return fallback;
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
