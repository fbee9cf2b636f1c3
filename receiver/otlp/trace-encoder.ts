/**
 * OTLP ExportTraceServiceRequest (protobuf) straight from our span model, each span encoded once,
 * when it is added to its batch (`TraceBatch.push`): the export queue holds bytes, not span objects,
 * so a span dies young (cheap scavenges, nothing promoted while the queue waits) and there is no
 * second walk over the batch. `finish()` then frames the per-resource span bytes into the request.
 *
 * Why not otlp-transformer's ProtobufTraceSerializer: it needs every span converted to an SDK
 * `ReadableSpan` first (objects, closures, HrTime arrays per span), then walks the whole batch
 * twice (a size estimator, then the writer) and copies ids through a fresh Uint8Array per id.
 *
 * What repeats is encoded once and copied afterwards: the resource (per resource object), the
 * scope, span names, attribute keys, and whole attributes (key and value) whose values repeat
 * (key-value.ts), and runs of attributes equal to the last span's (span-attributes.ts). A span of the
 * syscall path (ids as words, no tracestate) has its fields around the attributes written after
 * one `ensure` per side.
 *
 * The output is byte for byte what ProtobufTraceSerializer produces for `toReadableSpan` of the
 * same spans (test/unit/receiver/otlp/trace-encoder.test.ts holds it to that): same grouping (one
 * ResourceSpans per resource object in first-seen order, one ScopeSpans), same field order, same
 * defaults written.
 */
import { version as packageVersion } from '../../package.json';
import type { Resource, Span } from '../model';
import { estimateSpanOwnBytes } from '../span-size';
import { writeAttributes } from './key-value';
import { clientRuns, serverRuns, writeSpanAttributes, type AttributeRuns } from './span-attributes';
import { lengthMark, putFixed64, putVarint, putWord, releaseWriter, takeWriter, varintSize, Writer } from './proto-writer';

const KIND_SERVER = 2; // proto SpanKind: SPAN_KIND_SERVER
const KIND_CLIENT = 3; // SPAN_KIND_CLIENT
const STATUS = { UNSET: 0, OK: 1, ERROR: 2 } as const;
const SPAN_FLAGS_HAS_IS_REMOTE = 0x100;
const SPAN_FLAGS_IS_REMOTE = 0x200;

/** InstrumentationScope { name, version }, with its ScopeSpans.scope tag: the same for every request. */
const SCOPE_BYTES = (() => {
  const w = new Writer(256);
  w.byte(0x0a);
  const m = w.begin(1);
  w.byte(0x0a);
  w.string('spanbridge');
  if (packageVersion) {
    w.byte(0x12);
    w.string(packageVersion);
  }
  w.end(m);
  return w.copy();
})();

/**
 * ResourceSpans.resource (tag, length, Resource { attributes, dropped_attributes_count }), encoded
 * once per resource object: resources are read-only by the model's contract.
 */
const resourceCache = new WeakMap<Resource, Buffer>();

function resourceBytes(resource: Resource): Buffer {
  let bytes = resourceCache.get(resource);
  if (!bytes) {
    const w = new Writer(1024);
    w.byte(0x0a);
    const res = w.begin(1);
    writeAttributes(w, resource.attributes, 0x0a);
    w.byte(0x10); // dropped_attributes_count
    w.byte(0);
    w.end(res);
    bytes = w.copy();
    resourceCache.set(resource, bytes);
  }
  return bytes;
}

/** Span names of either kind cached (field bytes), and the longest cached: names are method and route, few. */
const MAX_CACHED_NAMES = 1024;
const MAX_CACHED_NAME_CHARS = 256;
const nameCache = new Map<string, Buffer>();

/** The Span.name field of `name` (tag, length, UTF-8), cached; undefined when the cache is full or the name long. */
function nameField(m: AttributeRuns, name: string): Buffer | undefined {
  if (name === m.name) return m.nameBytes;
  let bytes = nameCache.get(name);
  if (bytes === undefined) {
    if (nameCache.size >= MAX_CACHED_NAMES || name.length > MAX_CACHED_NAME_CHARS) return undefined;
    const w = new Writer(16 + 3 * name.length);
    w.byte(0x2a);
    w.string(name);
    bytes = w.copy();
    nameCache.set(name, bytes);
  }
  m.name = name;
  m.nameBytes = bytes;
  return bytes;
}

/**
 * Room for a span's fields before its attributes on the fast path: ScopeSpans.spans tag and its
 * length room (3), trace_id (18), span_id (10), parent_span_id (10), kind (2), the times (18).
 */
const SPAN_HEAD_BYTES = 61;
/** The fields after the attributes with no status message: three dropped counts (6), status (4), flags (6). */
const SPAN_TAIL_BYTES = 16;

/**
 * One ScopeSpans.spans field. A span with its ids as words, no tracestate and a cached name (the
 * syscall path's spans) is written after one `ensure` per side of its attributes, unchecked;
 * any other through the writer's checked calls. The same bytes either way.
 */
function writeSpanField(w: Writer, span: Span): number {
  const ids = span.ids;
  const server = span.kind === 'SERVER';
  const m = server ? serverRuns : clientRuns;
  const name = ids !== undefined && span.traceState === '' ? nameField(m, span.name) : undefined;
  let mark: number;
  if (ids !== undefined && name !== undefined) {
    const nl = name.length;
    w.ensure(SPAN_HEAD_BYTES + nl);
    const buf = w.buf;
    let p = w.pos;
    buf[p] = 0x12; // ScopeSpans.spans
    mark = lengthMark(p + 1, 2);
    p += 3;
    buf[p] = 0x0a; // trace_id
    buf[p + 1] = 16;
    putWord(buf, p + 2, ids.w0);
    putWord(buf, p + 6, ids.w1);
    putWord(buf, p + 10, ids.w2);
    putWord(buf, p + 14, ids.w3);
    buf[p + 18] = 0x12; // span_id
    buf[p + 19] = 8;
    putWord(buf, p + 20, ids.w4);
    putWord(buf, p + 24, ids.w5);
    p += 28;
    if (ids.hasParent) {
      buf[p] = 0x22; // parent_span_id
      buf[p + 1] = 8;
      putWord(buf, p + 2, ids.w6);
      putWord(buf, p + 6, ids.w7);
      p += 10;
    }
    for (let i = 0; i < nl; i++) buf[p + i] = name[i];
    p += nl;
    buf[p] = 0x30; // kind
    buf[p + 1] = server ? KIND_SERVER : KIND_CLIENT;
    buf[p + 2] = 0x39; // start_time_unix_nano
    p = putFixed64(buf, p + 3, span.startTimeUnixNano);
    buf[p] = 0x41; // end_time_unix_nano
    w.pos = putFixed64(buf, p + 1, span.endTimeUnixNano);
  } else {
    w.byte(0x12); // ScopeSpans.spans
    mark = w.begin(2);
    writeSpanHead(w, span);
  }
  const estimate = writeSpanAttributes(w, span.attributes, m);
  const hasParent = ids !== undefined ? ids.hasParent : span.parentSpanId !== '';
  let flags = (span.traceFlags & 0xff) | SPAN_FLAGS_HAS_IS_REMOTE;
  if (hasParent && server) flags |= SPAN_FLAGS_IS_REMOTE;
  const status = span.status;
  if (!status.message) {
    w.ensure(SPAN_TAIL_BYTES);
    const buf = w.buf;
    const p = w.pos;
    buf[p] = 0x50; // dropped_attributes_count
    buf[p + 1] = 0;
    buf[p + 2] = 0x60; // dropped_events_count
    buf[p + 3] = 0;
    buf[p + 4] = 0x70; // dropped_links_count
    buf[p + 5] = 0;
    buf[p + 6] = 0x7a; // status (field 15): { code }
    buf[p + 7] = 2;
    buf[p + 8] = 0x18;
    buf[p + 9] = STATUS[status.code];
    buf[p + 10] = 0x85; // flags (field 16, fixed32): tag 0x85 0x01
    buf[p + 11] = 0x01;
    putWord(buf, p + 12, flags);
    w.pos = p + SPAN_TAIL_BYTES;
  } else {
    writeSpanTail(w, span, flags);
  }
  w.end(mark);
  return estimate;
}

/** The fields before the attributes, checked (ids as hex, a tracestate, an uncached name). */
function writeSpanHead(w: Writer, span: Span): void {
  // The ids as bytes when the span has them (the same bytes the hex says: no hex parsed).
  const ids = span.ids;
  w.byte(0x0a); // trace_id
  if (ids !== undefined) w.words(ids.w0, ids.w1, ids.w2, ids.w3);
  else w.hex(span.traceId);
  w.byte(0x12); // span_id
  if (ids !== undefined) w.words2(ids.w4, ids.w5);
  else w.hex(span.spanId);
  // trace_state: the tracestate as observed (W3CTraceState.serialize() is the raw string).
  if (span.traceState !== '') {
    w.byte(0x1a);
    w.string(span.traceState);
  }
  const hasParent = ids !== undefined ? ids.hasParent : span.parentSpanId !== '';
  if (hasParent) {
    w.byte(0x22);
    if (ids !== undefined) w.words2(ids.w6, ids.w7);
    else w.hex(span.parentSpanId);
  }
  w.byte(0x2a); // name
  w.string(span.name);
  w.byte(0x30); // kind
  w.byte(span.kind === 'SERVER' ? KIND_SERVER : KIND_CLIENT);
  w.byte(0x39); // start_time_unix_nano
  w.fixed64(span.startTimeUnixNano);
  w.byte(0x41); // end_time_unix_nano
  w.fixed64(span.endTimeUnixNano);
}

/** The fields after the attributes, checked (a status with a message). */
function writeSpanTail(w: Writer, span: Span, flags: number): void {
  w.byte(0x50); // dropped_attributes_count
  w.byte(0);
  w.byte(0x60); // dropped_events_count
  w.byte(0);
  w.byte(0x70); // dropped_links_count
  w.byte(0);
  w.byte(0x7a); // status (field 15)
  const status = w.begin(1);
  if (span.status.message) {
    w.byte(0x12);
    w.string(span.status.message);
  }
  w.byte(0x18);
  w.byte(STATUS[span.status.code]);
  w.end(status);
  w.byte(0x85); // flags (field 16, fixed32): tag 0x85 0x01
  w.byte(0x01);
  w.fixed32(flags);
}

interface Group {
  readonly resource: Resource;
  readonly w: Writer;
  /** Where the spans start in `w`: the room before is kept for the request's framing (finishInPlace). */
  readonly start: number;
  spans: number;
}

/** Bytes before a group's spans in a request of that group alone: resource_spans (tag, length, resource, scope_spans tag, length, scope). */
function framingRoom(resource: Resource): number {
  return 1 + 5 + resourceBytes(resource).length + 1 + 5 + SCOPE_BYTES.length;
}

/** A request body that lives in a pooled writer until `release()` (called once the body is sent, or given up). */
export interface FinishedRequest {
  readonly body: Uint8Array;
  release(): void;
}

const ownResource = (span: Span): Resource => span.resource;

/**
 * The spans of one export request, encoded as they are pushed: per resource (`resourceOf(span)`,
 * which must depend on `span.resource` alone: one object per process), the `ScopeSpans.spans`
 * fields one after the other in a pooled writer. `finish()` returns the request and gives the
 * writers back; a batch that will not be sent is `discard()`ed.
 */
export class TraceBatch {
  /** Spans pushed. */
  length = 0;
  /** Bytes of the spans' fields encoded so far (the request adds a resource and scope per group). */
  byteLength = 0;
  /** The last span pushed's queue estimate, `estimateSpanBytes(span)` (span-size.ts), summed in the encoder's walk. */
  lastEstimate = 0;
  /** Where the last span pushed starts in its group's writer (-1: nothing to undo), and its group. */
  private lastMark = -1;
  private lastPushGroup: Group | undefined;
  private readonly groups: Group[] = [];
  private readonly byResource = new Map<Resource, Group>();
  private lastSpanResource: Resource | undefined;
  private lastGroup: Group | undefined;
  private done = false;

  constructor(private readonly resourceOf: (span: Span) => Resource = ownResource) {}

  /** Encodes `span` into the batch; returns the new length. Throws (adding nothing) for a span it cannot encode. */
  push(span: Span): number {
    if (this.done) throw new Error('trace batch: push after finish');
    let g = this.lastGroup;
    if (g === undefined || span.resource !== this.lastSpanResource) {
      g = this.groupOf(this.resourceOf(span));
      this.lastSpanResource = span.resource;
      this.lastGroup = g;
    }
    const w = g.w;
    const mark = w.pos;
    let estimate: number;
    try {
      estimate = writeSpanField(w, span);
    } catch (err) {
      w.pos = mark;
      throw err;
    }
    this.lastEstimate = estimateSpanOwnBytes(span) + estimate;
    this.lastMark = mark;
    this.lastPushGroup = g;
    g.spans++;
    this.byteLength += w.pos - mark;
    return ++this.length;
  }

  /**
   * Takes the last span pushed back out (the batcher's memory cap, checked against `lastEstimate`
   * after the push), and the group it opened, if it did. Once per push; the memory of the last
   * span's attributes that points into its bytes is forgotten (the next span of that kind encodes
   * its attributes through the key caches).
   */
  undoLast(): void {
    const g = this.lastPushGroup;
    if (this.done || g === undefined || this.lastMark < 0) throw new Error('trace batch: nothing to undo');
    const w = g.w;
    for (const m of [serverRuns, clientRuns]) if (m.prevWriter === w && m.prevStart >= this.lastMark) m.prevWriter = null;
    this.byteLength -= w.pos - this.lastMark;
    w.pos = this.lastMark;
    this.length--;
    this.lastMark = -1;
    this.lastPushGroup = undefined;
    if (--g.spans > 0) return;
    // A group this span opened goes (the request's groups are in the first-seen order of the spans in it).
    this.groups.splice(this.groups.indexOf(g), 1);
    this.byResource.delete(g.resource);
    if (this.lastGroup === g) {
      this.lastGroup = undefined;
      this.lastSpanResource = undefined;
    }
    releaseWriter(w);
  }

  /**
   * The request bytes without a copy when all spans share one resource (one traced process, the
   * usual case): the framing is written into the room kept before the spans, and the body is a view
   * of the writer's buffer, which stays out of the pool until `release()`. Copying a request of
   * 2048 spans (~1 MB) into a fresh buffer cost ~0.2 us per span, most of it page faults on the
   * new memory. Several resources: `finish()`'s copy. The batch is spent either way.
   */
  finishInPlace(): FinishedRequest {
    let only: Group | undefined;
    let nonEmpty = 0;
    for (const g of this.groups) {
      if (g.spans === 0) continue;
      nonEmpty++;
      only = g;
    }
    if (nonEmpty !== 1 || only === undefined) return { body: this.finish(), release: noop };
    this.done = true;
    const g = only;
    const res = resourceBytes(g.resource);
    const ssLen = SCOPE_BYTES.length + g.w.pos - g.start;
    const rsLen = res.length + 1 + varintSize(ssLen) + ssLen;
    const head = 1 + varintSize(rsLen) + res.length + 1 + varintSize(ssLen) + SCOPE_BYTES.length;
    const out = g.w.buf;
    const from = g.start - head;
    let p = from;
    out[p++] = 0x0a; // resource_spans
    p = putVarint(out, p, rsLen);
    p += res.copy(out, p);
    out[p++] = 0x12; // scope_spans
    p = putVarint(out, p, ssLen);
    p += SCOPE_BYTES.copy(out, p);
    const body = out.subarray(from, g.w.pos);
    // The other (empty) groups' writers go back now; this one once the body is sent.
    for (const other of this.groups) if (other !== g) releaseWriter(other.w);
    this.groups.length = 0;
    this.byResource.clear();
    this.lastGroup = undefined;
    this.lastSpanResource = undefined;
    let released = false;
    return {
      body,
      release: () => {
        if (released) return;
        released = true;
        releaseWriter(g.w);
      },
    };
  }

  /** The ExportTraceServiceRequest bytes (a fresh buffer the caller owns); the batch is spent. */
  finish(): Uint8Array {
    this.done = true;
    let total = 0;
    const sizes: number[] = [];
    for (const g of this.groups) {
      if (g.spans === 0) continue;
      const ssLen = SCOPE_BYTES.length + g.w.pos - g.start;
      const rsLen = resourceBytes(g.resource).length + 1 + varintSize(ssLen) + ssLen;
      sizes.push(ssLen, rsLen);
      total += 1 + varintSize(rsLen) + rsLen;
    }
    const out = Buffer.allocUnsafeSlow(total);
    let p = 0;
    let i = 0;
    for (const g of this.groups) {
      if (g.spans === 0) continue;
      const ssLen = sizes[i++];
      const rsLen = sizes[i++];
      out[p++] = 0x0a; // resource_spans
      p = putVarint(out, p, rsLen);
      p += resourceBytes(g.resource).copy(out, p);
      out[p++] = 0x12; // scope_spans
      p = putVarint(out, p, ssLen);
      p += SCOPE_BYTES.copy(out, p);
      p += g.w.buf.copy(out, p, g.start, g.w.pos);
    }
    this.release();
    return out;
  }

  /** Gives the buffers back without building the request (a batch dropped at shutdown). */
  discard(): void {
    this.done = true;
    this.release();
  }

  private release(): void {
    for (const g of this.groups) releaseWriter(g.w);
    this.groups.length = 0;
    this.byResource.clear();
    this.lastGroup = undefined;
    this.lastSpanResource = undefined;
  }

  private groupOf(resource: Resource): Group {
    let g = this.byResource.get(resource);
    if (!g) {
      const w = takeWriter();
      const start = framingRoom(resource);
      w.ensure(start);
      w.pos = start;
      g = { resource, w, start, spans: 0 };
      this.byResource.set(resource, g);
      this.groups.push(g);
    }
    return g;
  }
}

function noop(): void {}


/**
 * The request bytes for `spans`, each under `resourceOf(span)` (one object per process: spans are
 * grouped by that object's identity; it must depend on `span.resource` alone). The result is a
 * fresh copy the caller owns.
 */
export function encodeTraceRequest(spans: readonly Span[], resourceOf: (span: Span) => Resource = ownResource): Uint8Array {
  const batch = new TraceBatch(resourceOf);
  try {
    for (const span of spans) batch.push(span);
  } catch (err) {
    batch.discard();
    throw err;
  }
  return batch.finish();
}
