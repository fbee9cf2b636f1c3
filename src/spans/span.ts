/**
 * The one internal span model. Everything upstream produces it; conversion to OTLP (or to the
 * JSON lines of --print-spans) happens at the edge, as pure functions.
 */
export type SpanKind = 'SERVER' | 'CLIENT';
export type StatusCode = 'UNSET' | 'OK' | 'ERROR';
export type AttributeValue = string | number | boolean;
export type Attributes = Record<string, AttributeValue>;

/**
 * A resource (one per traced process). Spans of one process share the same object, so exporters
 * can group by identity.
 */
export interface Resource {
  readonly attributes: Attributes;
}

export interface Span {
  /** 32 lowercase hex characters. */
  readonly traceId: string;
  /** 16 lowercase hex characters. */
  readonly spanId: string;
  /** 16 lowercase hex characters, or '' for a root span. */
  readonly parentSpanId: string;
  /** W3C trace flags (bit 0 = sampled). */
  readonly traceFlags: number;
  /** W3C tracestate as received, '' when none. */
  readonly traceState: string;
  readonly name: string;
  readonly kind: SpanKind;
  readonly startTimeUnixNano: bigint;
  readonly endTimeUnixNano: bigint;
  readonly status: { readonly code: StatusCode; readonly message?: string };
  readonly attributes: Attributes;
  readonly resource: Resource;
}

export const SAMPLED_FLAG = 0x01;

export function isSampled(span: Pick<Span, 'traceFlags'>): boolean {
  return (span.traceFlags & SAMPLED_FLAG) !== 0;
}
