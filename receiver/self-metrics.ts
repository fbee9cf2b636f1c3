/**
 * The receiver's self-metrics, named in one place so the batcher, the exporters, the tests and the
 * dashboards agree. They are recorded into the agent's `SelfMetrics` (the same object the rest of
 * the agent counts into), so they reach both outputs: OTLP metrics and the Prometheus endpoint.
 *
 * Every span handed to the receiver ends in exactly one of: exported, unsampled (not a loss: the
 * trace was not sampled) or dropped with a reason — or it is still queued (the queue gauges).
 */
import type { SelfMetrics } from './model';
import type { OtlpSignal } from './otlp/config';

export const SPANS_EXPORTED = 'spanbridge_spans_exported_total';
export const SPANS_DROPPED = 'spanbridge_spans_dropped_total';
export const SPANS_UNSAMPLED = 'spanbridge_spans_unsampled_total';
export const EXPORT_ATTEMPTS = 'spanbridge_export_attempts_total';
export const EXPORT_RETRIES = 'spanbridge_export_retries_total';
export const EXPORT_FAILURES = 'spanbridge_export_failures_total';
export const QUEUE_SPANS = 'spanbridge_export_queue_spans';
export const QUEUE_BYTES = 'spanbridge_export_queue_bytes';
export const QUEUE_CAPACITY_BYTES = 'spanbridge_export_queue_capacity_bytes';
export const QUEUE_CAPACITY_SPANS = 'spanbridge_export_queue_capacity_spans';
export const RED_SERIES_OVERFLOW = 'spanbridge_red_series_overflow_total';
export const RED_ERRORS = 'spanbridge_red_errors_total';

/**
 * Why a span was lost:
 *   `queue_full`      the queue held its maximum number of spans;
 *   `queue_memory`    the queue held its maximum estimated bytes (the memory cap);
 *   `export_failed`   the endpoint rejected its batch permanently (e.g. HTTP 400, gRPC INVALID_ARGUMENT);
 *   `retry_exhausted` its batch was still failing retryably when the maximum elapsed time ran out;
 *   `shutdown`        it arrived after, or was still queued or being retried at the deadline of, shutdown.
 */
export type DropReason = 'queue_full' | 'queue_memory' | 'export_failed' | 'retry_exhausted' | 'shutdown';

export function countExported(metrics: SelfMetrics, n: number): void {
  metrics.add(SPANS_EXPORTED, 'Spans accepted by the OTLP endpoint', {}, n);
}

export function countDropped(metrics: SelfMetrics, reason: DropReason, n = 1): void {
  metrics.add(SPANS_DROPPED, 'Spans lost before delivery, by reason', { reason }, n);
}

export function countRedError(metrics: SelfMetrics): void {
  metrics.add(RED_ERRORS, 'Spans the RED metrics could not record');
}

export function countUnsampled(metrics: SelfMetrics, n = 1): void {
  metrics.add(SPANS_UNSAMPLED, 'Spans not exported because their trace is not sampled (sampled flag 0)', {}, n);
}

export function countExportAttempt(metrics: SelfMetrics, signal: OtlpSignal): void {
  metrics.add(EXPORT_ATTEMPTS, 'OTLP export requests sent (every attempt, retries included)', { signal }, 1);
}

export function countExportRetry(metrics: SelfMetrics, signal: OtlpSignal): void {
  metrics.add(EXPORT_RETRIES, 'OTLP export attempts that failed retryably and were scheduled again', { signal }, 1);
}

export function countExportFailure(metrics: SelfMetrics, signal: OtlpSignal): void {
  metrics.add(EXPORT_FAILURES, 'OTLP exports given up (permanent failure, retries exhausted or shutdown)', { signal }, 1);
}

export interface QueueState {
  readonly spans: number;
  readonly bytes: number;
  readonly capacitySpans: number;
  readonly capacityBytes: number;
}

export function setQueueGauges(metrics: SelfMetrics, q: QueueState): void {
  metrics.set(QUEUE_SPANS, 'Spans waiting for export or being exported', {}, q.spans);
  metrics.set(QUEUE_BYTES, 'Estimated memory held by spans waiting for export or being exported', {}, q.bytes);
  metrics.set(QUEUE_CAPACITY_SPANS, 'Most spans the export queue holds', {}, q.capacitySpans);
  metrics.set(QUEUE_CAPACITY_BYTES, 'Memory cap of the export queue (estimated bytes)', {}, q.capacityBytes);
}
