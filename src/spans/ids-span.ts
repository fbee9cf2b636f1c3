/**
 * A span whose ids are kept as bytes (span-ids.ts): the syscall path's spans. It is the span model
 * (src/spans/span.ts) with `traceId`, `spanId` and `parentSpanId` read from `ids` (hex made on
 * first read), so every consumer reads it as any other span. A copy with another name is made by
 * `withName` (a spread would copy own fields only, and lose the ids' getters).
 */
import type { Attributes, Resource, Span, SpanKind } from './span';
import type { SpanIds } from './span-ids';

export class IdsSpan implements Span {
  constructor(
    readonly ids: SpanIds,
    readonly traceFlags: number,
    readonly traceState: string,
    readonly name: string,
    readonly kind: SpanKind,
    readonly startTimeUnixNano: bigint,
    readonly endTimeUnixNano: bigint,
    readonly status: Span['status'],
    readonly attributes: Attributes,
    readonly resource: Resource,
  ) {}

  get traceId(): string {
    return this.ids.traceId;
  }

  get spanId(): string {
    return this.ids.spanId;
  }

  get parentSpanId(): string {
    return this.ids.parentSpanId;
  }
}

/** `span` under another name (everything else the same object), whatever its class. */
export function withName(span: Span, name: string): Span {
  if (span instanceof IdsSpan) {
    return new IdsSpan(span.ids, span.traceFlags, span.traceState, name, span.kind, span.startTimeUnixNano, span.endTimeUnixNano, span.status, span.attributes, span.resource);
  }
  return { ...span, name };
}
