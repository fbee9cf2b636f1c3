/**
 * A span whose ids and times were decided in the kernel: every tracer's record (Go uprobes,
 * syscall exchanges) carries them under these names. Unix time comes from the one clock, and an
 * end stamped before the start (never expected) is taken as the start.
 */
import type { Clock } from '../time/clock';
import type { Span } from './span';

/** The ids and CLOCK_MONOTONIC times (ns) of a span, as the kernel recorded them. */
export interface KernelSpanContext {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly traceFlags: number;
  readonly startNs: bigint;
  readonly endNs: bigint;
}

/** What the tracer decides from the rest of its record. */
export type SpanDetails = Pick<Span, 'traceState' | 'name' | 'kind' | 'status' | 'attributes' | 'resource'>;

export function kernelSpan(k: KernelSpanContext, details: SpanDetails, clock: Clock): Span {
  const start = clock.toUnixNano(k.startNs);
  return {
    traceId: k.traceId,
    spanId: k.spanId,
    parentSpanId: k.parentSpanId,
    traceFlags: k.traceFlags,
    traceState: details.traceState,
    name: details.name,
    kind: details.kind,
    startTimeUnixNano: start,
    endTimeUnixNano: k.endNs >= k.startNs ? clock.toUnixNano(k.endNs) : start,
    status: details.status,
    attributes: details.attributes,
    resource: details.resource,
  };
}
