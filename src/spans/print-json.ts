/**
 * `--print-spans json`: one JSON object per line per span, for people and for `jq`.
 *
 * The field names are OTLP/JSON's, but the shape is flattened for reading: ids in hex, kind and
 * status code as names, attributes and resource attributes as plain `{key: value}` objects. The
 * 64-bit nanosecond timestamps are decimal strings, as OTLP/JSON encodes uint64, because a JSON
 * number cannot carry them exactly. A pure function: printing is the caller's business.
 */
import type { Attributes, Span, SpanKind, StatusCode } from './span';

export interface PrintedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: SpanKind;
  /** Unix nanoseconds, decimal. */
  readonly startTimeUnixNano: string;
  readonly endTimeUnixNano: string;
  readonly status: { readonly code: StatusCode; readonly message?: string };
  readonly attributes: Attributes;
  readonly resource: Attributes;
  readonly traceFlags: number;
  /** W3C tracestate, '' when none. */
  readonly traceState: string;
}

export function spanToPrinted(span: Span): PrintedSpan {
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId,
    name: span.name,
    kind: span.kind,
    startTimeUnixNano: span.startTimeUnixNano.toString(),
    endTimeUnixNano: span.endTimeUnixNano.toString(),
    status:
      span.status.message === undefined
        ? { code: span.status.code }
        : { code: span.status.code, message: span.status.message },
    attributes: { ...span.attributes },
    resource: { ...span.resource.attributes },
    traceFlags: span.traceFlags,
    traceState: span.traceState,
  };
}

/** One line of JSON (no trailing newline); JSON string escaping keeps it on one line. */
export function spanToJsonLine(span: Span): string {
  return JSON.stringify(spanToPrinted(span));
}
