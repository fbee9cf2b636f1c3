/**
 * The receiver's self-metrics, named in one place so the batcher, the exporter, the tests and the
 * dashboards agree. Every span handed to the receiver ends in exactly one of: exported, unsampled
 * (not a loss: the trace was not sampled) or dropped with a reason.
 */
import type { SelfMetrics } from '../src/metrics/counters';

export const SPANS_EXPORTED = 'spanbridge_spans_exported_total';
export const SPANS_DROPPED = 'spanbridge_spans_dropped_total';
export const SPANS_UNSAMPLED = 'spanbridge_spans_unsampled_total';
export const EXPORT_FAILURES = 'spanbridge_export_failures_total';

/**
 * Why a span was lost: `queue_full` the bounded pending buffer overflowed; `export_failed` its
 * batch could not be delivered; `shutdown` it arrived after, or was still pending at the deadline
 * of, shutdown.
 */
export type DropReason = 'queue_full' | 'export_failed' | 'shutdown';

export function countExported(metrics: SelfMetrics, n: number): void {
  metrics.add(SPANS_EXPORTED, 'Spans accepted by the OTLP endpoint', {}, n);
}

export function countDropped(metrics: SelfMetrics, reason: DropReason, n = 1): void {
  metrics.add(SPANS_DROPPED, 'Spans lost before delivery, by reason', { reason }, n);
}

export function countUnsampled(metrics: SelfMetrics, n = 1): void {
  metrics.add(SPANS_UNSAMPLED, 'Spans not exported because their trace is not sampled (sampled flag 0)', {}, n);
}

export function countExportFailure(metrics: SelfMetrics): void {
  metrics.add(EXPORT_FAILURES, 'OTLP export requests that failed (their spans are dropped)', {}, 1);
}
