/**
 * The Collector bridge and the trace export pipeline as the agent's wiring builds them: settings
 * (explicit + environment) resolved by the config layer (src/config/delivery.ts), configuration
 * warnings sent to the same log, then receiver/ built from the resolved values.
 */
import { createCollectorBridge, createTraceExportPipeline, type CollectorBridge, type ReceiverLog, type SpanBatcher } from '../../receiver/index';
import type { BridgeSettings, SelfMetrics } from '../../receiver/model';
import { resolveDelivery, resolveTraceExport, type DeliveryInput } from '../../src/config/delivery';
import type { OtlpExporterOptions } from '../../src/config/otlp';

export function bridgeFromEnv(o: DeliveryInput & { readonly metrics: SelfMetrics; readonly log: ReceiverLog }): CollectorBridge {
  return createCollectorBridge({ metrics: o.metrics, log: o.log, ...resolveDelivery(o, (m) => o.log.warn(m)) });
}

export function pipelineFromEnv(o: {
  readonly metrics: SelfMetrics;
  readonly log: ReceiverLog;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly otlp?: OtlpExporterOptions;
  readonly batch?: BridgeSettings['queue'];
}): SpanBatcher {
  const r = resolveTraceExport({ otlp: o.otlp, batch: o.batch, env: o.env }, (m) => o.log.warn(m));
  return createTraceExportPipeline({ metrics: o.metrics, log: o.log, traces: r.traces, batch: r.batch, retry: r.retry });
}
