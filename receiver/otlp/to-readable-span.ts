/**
 * Our span model -> the SDK `ReadableSpan` shape `@opentelemetry/otlp-transformer` serializes.
 *
 * A pure mapping at the edge (the only place the agent meets the SDK types). Two identity rules
 * matter because the serializer groups by object identity, not by value:
 *   - every span gets the ONE shared `INSTRUMENTATION_SCOPE` object, so all spans of a resource
 *     land in a single `ScopeSpans`;
 *   - the resource is converted through a per-`Resource` cache (`toOtelResource`), so spans of one
 *     process land in a single `ResourceSpans` and two processes in two.
 * The cache is memoization only: the output depends on nothing but the input.
 */
import {
  SpanKind as OtelSpanKind,
  SpanStatusCode,
  type HrTime,
  type SpanContext,
  type SpanStatus,
} from '@opentelemetry/api';
import type { Resource, Span, SpanKind, StatusCode } from '../model';
import type { ReadableSpan } from './readable-span-types';
import { toOtelResource } from './resource-adapter';
import { INSTRUMENTATION_SCOPE } from './scope';
import { W3CTraceState } from './trace-state';

export { INSTRUMENTATION_SCOPE };

const NANOS_PER_SECOND = 1_000_000_000n;

/**
 * Unix nanoseconds -> `[seconds, nanoseconds]`. Both parts stay below 2^53, so the split is exact
 * (a single `Number(ns)` would round a present-day timestamp to ~256 ns).
 */
export function unixNanosToHrTime(ns: bigint): HrTime {
  return [Number(ns / NANOS_PER_SECOND), Number(ns % NANOS_PER_SECOND)];
}

const KINDS: Record<SpanKind, OtelSpanKind> = {
  SERVER: OtelSpanKind.SERVER,
  CLIENT: OtelSpanKind.CLIENT,
};

const STATUS_CODES: Record<StatusCode, SpanStatusCode> = {
  UNSET: SpanStatusCode.UNSET,
  OK: SpanStatusCode.OK,
  ERROR: SpanStatusCode.ERROR,
};

const NO_LINKS: ReadableSpan['links'] = [];
const NO_EVENTS: ReadableSpan['events'] = [];

export function toReadableSpan(span: Span): ReadableSpan {
  return toReadableSpanWithResource(span, span.resource);
}

/**
 * Like `toReadableSpan`, with `resource` in place of the span's own (the agent's
 * OTEL_RESOURCE_ATTRIBUTES merged in); pass one object per process (see the identity rules).
 */
export function toReadableSpanWithResource(span: Span, resource: Resource): ReadableSpan {
  const traceState = span.traceState === '' ? undefined : new W3CTraceState(span.traceState);
  const context: SpanContext = {
    traceId: span.traceId,
    spanId: span.spanId,
    traceFlags: span.traceFlags,
    isRemote: false,
    ...(traceState ? { traceState } : {}),
  };
  const status: SpanStatus =
    span.status.message === undefined
      ? { code: STATUS_CODES[span.status.code] }
      : { code: STATUS_CODES[span.status.code], message: span.status.message };
  const duration = span.endTimeUnixNano > span.startTimeUnixNano ? span.endTimeUnixNano - span.startTimeUnixNano : 0n;

  return {
    name: span.name,
    kind: KINDS[span.kind],
    spanContext: () => context,
    parentSpanContext: parentContext(span, traceState),
    startTime: unixNanosToHrTime(span.startTimeUnixNano),
    endTime: unixNanosToHrTime(span.endTimeUnixNano),
    duration: unixNanosToHrTime(duration),
    ended: true,
    status,
    attributes: span.attributes,
    links: NO_LINKS,
    events: NO_EVENTS,
    resource: toOtelResource(resource),
    instrumentationScope: INSTRUMENTATION_SCOPE,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

/**
 * The parent's context, only for non-root spans. `isRemote` feeds the OTLP span flags
 * (SPAN_FLAGS_CONTEXT_IS_REMOTE). The model has no field for it, so it is derived from the kind:
 * an eBPF SERVER span's parent always arrived in the request (traceparent, or a client span of
 * another process found by black-box correlation): remote. A CLIENT span's parent is the server
 * span of the same process that caused the call: local.
 */
function parentContext(span: Span, traceState: W3CTraceState | undefined): SpanContext | undefined {
  if (span.parentSpanId === '') return undefined;
  return {
    traceId: span.traceId,
    spanId: span.parentSpanId,
    traceFlags: span.traceFlags,
    isRemote: span.kind === 'SERVER',
    ...(traceState ? { traceState } : {}),
  };
}
