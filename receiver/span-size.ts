/**
 * An estimate of the memory one queued span holds, for the queue's memory cap. Not exact (V8 does
 * not say), but proportional to what varies between spans: strings (2 bytes per UTF-16 unit, an
 * upper bound for V8's one-byte strings) and attributes, plus a fixed cost for the object, its
 * bigints and its attribute map. The resource is shared by all spans of a process and not counted.
 * The OTLP encoder sums the same per attribute in its own walk over them (otlp/trace-encoder.ts
 * `TraceBatch.lastEstimate`), so a batch that encodes spans as they are queued need not walk a
 * span's attributes twice.
 */
import type { Span } from './model';

/** Object headers, two bigints, status, the ids and the attribute map's own overhead. */
export const SPAN_FIXED_BYTES = 320;
/** Per attribute: the property slot plus a boxed value. */
const ATTRIBUTE_BYTES = 48;

export function estimateSpanBytes(span: Span): number {
  let bytes = estimateSpanOwnBytes(span);
  // The object iterated and the one read are one binding: V8 then reads each value by the
  // for-in's own field index instead of a generic keyed lookup per attribute.
  const attributes = span.attributes;
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    bytes += estimateAttributeBytes(key, attributes[key]);
  }
  return bytes;
}

/** The estimate without the attributes. */
export function estimateSpanOwnBytes(span: Span): number {
  return SPAN_FIXED_BYTES + 2 * (span.name.length + span.traceState.length + (span.status.message?.length ?? 0));
}

/** One own attribute's part of the estimate. */
export function estimateAttributeBytes(key: string, value: unknown): number {
  return ATTRIBUTE_BYTES + 2 * key.length + (typeof value === 'string' ? 2 * value.length : 8);
}
