/**
 * The receiver module's public surface: what the agent's wiring file (src/wiring.ts), the only
 * importer of receiver/ besides its leaf contract (./model.ts), uses to deliver telemetry to the
 * Collector. Everything else under receiver/ is internal. receiver/ imports nothing of the agent
 * and reads no environment: the spans, self-metrics and resolved configuration it accepts are
 * declared in ./model.ts (resolved by src/config/otlp.ts and src/config/delivery.ts), its
 * errors in ./errors.ts.
 *
 * Typical use (the agent's wiring):
 *   const delivery = resolveDelivery({ otlp, bridge, env: process.env }, warn);   // src/config/delivery.ts
 *   const bridge = createCollectorBridge({ metrics, log, ...delivery });
 *   await bridge.start();                       // Prometheus endpoint + metrics timer; ERR_CONFIG if the port is taken
 *   ... for every finished span: bridge.add(span);   // O(1), never throws
 *   process.once('SIGTERM', () => void bridge.shutdown());   // flushes, within a deadline
 */
import type { BridgeSettings, OtlpExporterConfig, SelfMetrics } from './model';
import { SpanBatcher, type SpanBatcherOptions } from './batcher';
import { CollectorBridge } from './bridge';
import { bridgeConfigFrom } from './bridge-config';
import type { ReceiverLog } from './log';
import { OtlpTraceExporter } from './otlp/trace-exporter';
import type { RetryPolicy } from './otlp/retry';

export { SpanBatcher, BATCHER_DEFAULTS, type SpanBatcherOptions, type SpanExporter } from './batcher';
export { CollectorBridge, isLoopbackHost } from './bridge';
export {
  bridgeConfigFrom,
  DEFAULT_PROMETHEUS_PORT,
  DEFAULT_PROMETHEUS_HOST,
  type BridgeOptions,
  type BridgeConfig,
} from './bridge-config';
export type { ReceiverLog } from './log';
export type { BridgeSettings, OtlpExporterConfig, OtlpProtocol, OtlpSignal } from './model';
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
  /** Resolved bridge settings; unset ones take receiver/'s defaults. */
  readonly bridge?: BridgeSettings;
  /** `undefined`: spans are not exported over OTLP (RED metrics still are). */
  readonly traces?: OtlpExporterConfig;
  /** `undefined`: no OTLP metrics (the Prometheus endpoint is unaffected). */
  readonly metricsOtlp?: OtlpExporterConfig;
}

/** The Collector bridge from a resolved configuration. Nothing here throws for a setting. */
export function createCollectorBridge(options: CollectorBridgeOptions): CollectorBridge {
  const bridge = bridgeConfigFrom(options.bridge);
  return new CollectorBridge({
    metrics: options.metrics,
    log: options.log,
    bridge,
    traces: options.traces,
    metricsOtlp: bridge.otlpMetrics ? options.metricsOtlp : undefined,
  });
}

export interface TraceExportPipelineOptions {
  readonly metrics: SelfMetrics;
  readonly log: ReceiverLog;
  /** The resolved traces signal. */
  readonly traces: OtlpExporterConfig;
  readonly batch?: SpanBatcherOptions;
  readonly retry?: Partial<RetryPolicy>;
}

/** Spans only: batcher + OTLP exporter (no RED metrics, no Prometheus). `createCollectorBridge` is the full bridge. */
export function createTraceExportPipeline(options: TraceExportPipelineOptions): SpanBatcher {
  const bridge = bridgeConfigFrom({ queue: options.batch, retry: options.retry });
  const exporter = new OtlpTraceExporter(options.traces, options.metrics, options.log, { retry: bridge.retry });
  return new SpanBatcher(exporter, options.metrics, options.log, bridge.queue);
}
