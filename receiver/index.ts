/**
 * The receiver module's public surface: what the agent's wiring file (src/cli/main.ts), the only
 * importer of receiver/, uses to deliver telemetry to the Collector. Everything else under
 * receiver/ is internal. receiver/ imports nothing of the agent: the spans and self-metrics it
 * accepts are declared in ./model.ts, its errors in ./errors.ts, and the environment it resolves
 * settings from is handed in.
 *
 * Typical use (the agent's run command):
 *   const bridge = createCollectorBridge({ metrics, log, env: process.env, otlp: { baseEndpoint }, bridge: { prometheusPort } });
 *   await bridge.start();                       // Prometheus endpoint + metrics timer; ERR_CONFIG if the port is taken
 *   ... for every finished span: bridge.add(span);   // O(1), never throws
 *   process.once('SIGTERM', () => void bridge.shutdown());   // flushes, within a deadline
 */
import type { SelfMetrics } from './model';
import { SpanBatcher, type SpanBatcherOptions } from './batcher';
import { CollectorBridge } from './bridge';
import { resolveBridgeConfig, type BridgeOptions } from './bridge-config';
import type { ReceiverLog } from './log';
import { resolveOtlpConfig, type Env, type OtlpExporterOptions } from './otlp/config';
import { OtlpTraceExporter } from './otlp/trace-exporter';

export { SpanBatcher, BATCHER_DEFAULTS, type SpanBatcherOptions, type SpanExporter } from './batcher';
export { CollectorBridge, isLoopbackHost } from './bridge';
export {
  resolveBridgeConfig,
  DEFAULT_PROMETHEUS_PORT,
  DEFAULT_PROMETHEUS_HOST,
  type BridgeOptions,
  type BridgeConfig,
} from './bridge-config';
export type { ReceiverLog } from './log';
export {
  resolveOtlpConfig,
  resolveOtlpTraceConfig,
  appendTracesPath,
  appendSignalPath,
  assertProtocol,
  OTLP_PROTOCOLS,
  DEFAULT_TRACES_ENDPOINT,
  DEFAULT_TIMEOUT_MS,
  type OtlpExporterOptions,
  type OtlpExporterConfig,
  type OtlpTraceExporterOptions,
  type OtlpTraceExporterConfig,
  type OtlpProtocol,
  type OtlpSignal,
} from './otlp/config';
export { OtlpTraceExporter } from './otlp/trace-exporter';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './otlp/retry';
export {
  SPANS_EXPORTED,
  SPANS_DROPPED,
  SPANS_UNSAMPLED,
  EXPORT_ATTEMPTS,
  EXPORT_RETRIES,
  EXPORT_FAILURES,
  QUEUE_SPANS,
  QUEUE_BYTES,
  QUEUE_CAPACITY_BYTES,
  QUEUE_CAPACITY_SPANS,
  type DropReason,
} from './self-metrics';

export interface CollectorBridgeOptions {
  /** The agent's self-metrics; the bridge counts into it and exports all of it. */
  readonly metrics: SelfMetrics;
  readonly log: ReceiverLog;
  /** Explicit OTLP settings for both signals (CLI flags); they win over the environment. */
  readonly otlp?: OtlpExporterOptions;
  /** Per-signal explicit settings; they win over `otlp`, key by key. */
  readonly traces?: OtlpExporterOptions;
  readonly metricsOtlp?: OtlpExporterOptions;
  /** false: nothing is pushed over OTLP (spans and metrics); the Prometheus endpoint stays. */
  readonly otlpExport?: boolean;
  readonly bridge?: BridgeOptions;
  /**
   * The environment the OTLP and bridge settings are resolved from (OTEL_EXPORTER_OTLP_*, OTEL_BSP_*,
   * SPANBRIDGE_PROMETHEUS_*, ...): given by the caller; receiver/ never reads `process.env` itself.
   */
  readonly env: Env;
}

/**
 * The Collector bridge, configured from options > environment > defaults. Configuration warnings
 * go to `log.warn`; nothing here throws for a bad environment value.
 */
export function createCollectorBridge(options: CollectorBridgeOptions): CollectorBridge {
  const env = options.env;
  const warn = (m: string): void => options.log.warn(m);
  const bridge = resolveBridgeConfig(options.bridge, env, warn);
  const otlpOn = options.otlpExport !== false;
  return new CollectorBridge({
    metrics: options.metrics,
    log: options.log,
    bridge,
    env,
    traces: otlpOn ? resolveOtlpConfig('traces', { ...options.otlp, ...options.traces }, env, warn) : undefined,
    metricsOtlp: otlpOn && bridge.otlpMetrics ? resolveOtlpConfig('metrics', { ...options.otlp, ...options.metricsOtlp }, env, warn) : undefined,
  });
}

export interface TraceExportPipelineOptions {
  readonly metrics: SelfMetrics;
  readonly log: ReceiverLog;
  /** Explicit settings (CLI flags, config file); they win over the environment. */
  readonly otlp?: OtlpExporterOptions;
  readonly batch?: SpanBatcherOptions;
  /**
   * The environment the OTLP and bridge settings are resolved from (OTEL_EXPORTER_OTLP_*, OTEL_BSP_*,
   * SPANBRIDGE_PROMETHEUS_*, ...): given by the caller; receiver/ never reads `process.env` itself.
   */
  readonly env: Env;
}

/** Spans only: batcher + OTLP exporter (no RED metrics, no Prometheus). `createCollectorBridge` is the full bridge. */
export function createTraceExportPipeline(options: TraceExportPipelineOptions): SpanBatcher {
  const env = options.env;
  const warn = (m: string): void => options.log.warn(m);
  const config = resolveOtlpConfig('traces', options.otlp, env, warn);
  const bridge = resolveBridgeConfig({ queue: options.batch }, env, warn);
  const exporter = new OtlpTraceExporter(config, options.metrics, options.log, { retry: bridge.retry });
  return new SpanBatcher(exporter, options.metrics, options.log, bridge.queue);
}
