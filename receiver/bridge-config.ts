/**
 * The bridge's configuration: the settings the agent's config layer resolved and validated
 * (src/config/delivery.ts: explicit > environment; receiver/ reads no environment), with
 * receiver/'s defaults for every one left unset.
 */
import type { Attributes, BridgeSettings } from './model';
import { BATCHER_DEFAULTS, type SpanBatcherOptions } from './batcher';
import { DEFAULT_METRIC_EXPORT_INTERVAL_MS } from './otlp/metrics-exporter';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './otlp/retry';

export const DEFAULT_PROMETHEUS_PORT = 9400;
export const DEFAULT_PROMETHEUS_HOST = '127.0.0.1';
export const DEFAULT_MAX_RED_SERIES = 2000;

/** The resolved settings the bridge is built from (an unset one takes the default here). */
export type BridgeOptions = BridgeSettings;

export interface BridgeConfig {
  /** `undefined`: the Prometheus endpoint is disabled. */
  readonly prometheus: { readonly host: string; readonly port: number } | undefined;
  readonly queue: Required<SpanBatcherOptions>;
  readonly retry: RetryPolicy;
  readonly metricExportIntervalMs: number;
  readonly otlpMetrics: boolean;
  readonly resourceAttributes: Attributes;
  /** service.name of the agent's own resource (self-metrics); undefined: 'spanbridge'. */
  readonly agentServiceName: string | undefined;
  readonly maxRedSeries: number;
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function bridgeConfigFrom(s: BridgeSettings = {}): BridgeConfig {
  return {
    prometheus: s.prometheusPort === 'off' ? undefined : { host: s.prometheusHost || DEFAULT_PROMETHEUS_HOST, port: s.prometheusPort ?? DEFAULT_PROMETHEUS_PORT },
    queue: { ...BATCHER_DEFAULTS, ...defined(s.queue) },
    retry: { ...DEFAULT_RETRY_POLICY, ...defined(s.retry) },
    metricExportIntervalMs: s.metricExportIntervalMs ?? DEFAULT_METRIC_EXPORT_INTERVAL_MS,
    otlpMetrics: s.otlpMetrics ?? true,
    resourceAttributes: s.resourceAttributes ?? {},
    agentServiceName: s.agentServiceName,
    maxRedSeries: s.maxRedSeries ?? DEFAULT_MAX_RED_SERIES,
  };
}
