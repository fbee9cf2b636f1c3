/**
 * The receiver module's public surface: what the rest of the agent imports to deliver spans to
 * the Collector. Everything else under receiver/ (transport, serialization adapters, Retry-After
 * parsing) is internal and may change with the retry/queue/gRPC work.
 *
 * Typical use (the agent's run command):
 *   const spans = createTraceExportPipeline({ metrics, log });   // throws ERR_CONFIG on a bad protocol
 *   ... for every finished span: spans.add(span);               // O(1), never throws
 *   process.once('SIGTERM', () => void spans.shutdown());          // flushes, within a deadline
 */
import type { SelfMetrics } from '../src/metrics/counters';
import { SpanBatcher, type SpanBatcherOptions } from './batcher';
import type { ReceiverLog } from './log';
import { resolveOtlpTraceConfig, type Env, type OtlpTraceExporterOptions } from './otlp/config';
import { OtlpTraceExporter } from './otlp/trace-exporter';

export { SpanBatcher, BATCHER_DEFAULTS, type SpanBatcherOptions, type SpanExporter } from './batcher';
export type { ReceiverLog } from './log';
export {
  resolveOtlpTraceConfig,
  appendTracesPath,
  DEFAULT_TRACES_ENDPOINT,
  DEFAULT_TIMEOUT_MS,
  type OtlpTraceExporterOptions,
  type OtlpTraceExporterConfig,
  type OtlpProtocol,
} from './otlp/config';
export { OtlpTraceExporter } from './otlp/trace-exporter';
export {
  SPANS_EXPORTED,
  SPANS_DROPPED,
  SPANS_UNSAMPLED,
  EXPORT_FAILURES,
  type DropReason,
} from './self-metrics';

export interface TraceExportPipelineOptions {
  readonly metrics: SelfMetrics;
  readonly log: ReceiverLog;
  /** Explicit settings (CLI flags, config file); they win over the environment. */
  readonly otlp?: OtlpTraceExporterOptions;
  readonly batch?: SpanBatcherOptions;
  /** Defaults to `process.env`. */
  readonly env?: Env;
}

/**
 * Batcher + OTLP/HTTP exporter, configured from options > environment > defaults. Configuration
 * warnings go to `log.warn`; an unsupported protocol throws `SpanbridgeError` ERR_CONFIG.
 */
export function createTraceExportPipeline(options: TraceExportPipelineOptions): SpanBatcher {
  const config = resolveOtlpTraceConfig(options.otlp, options.env ?? process.env, (m) => options.log.warn(m));
  const exporter = new OtlpTraceExporter(config, options.metrics, options.log);
  return new SpanBatcher(exporter, options.metrics, options.log, options.batch);
}
