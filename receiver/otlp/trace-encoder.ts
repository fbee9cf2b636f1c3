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
 * scope, attribute keys, and whole attributes (key and value) whose values repeat (method, scheme,
 * route, addresses, status code...). A key whose values do not repeat (paths, ids) stops being
 * cached after one window (see `AttributeCache`).
 *
 * The output is byte for byte what ProtobufTraceSerializer produces for `toReadableSpan` of the
 * same spans (test/unit/receiver/otlp/trace-encoder.test.ts holds it to that): same grouping (one
 * ResourceSpans per resource object in first-seen order, one ScopeSpans), same field order, same
 * defaults written.
 */
import { version as packageVersion } from '../../package.json';
import type { AttributeValue, Resource, Span } from '../model';
import { releaseWriter, takeWriter, varintBytes, varintSize, Writer } from './proto-writer';

const KIND_SERVER = 2; // proto SpanKind: SPAN_KIND_SERVER
const KIND_CLIENT = 3; // SPAN_KIND_CLIENT
const STATUS = { UNSET: 0, OK: 1, ERROR: 2 } as const;
const SPAN_FLAGS_HAS_IS_REMOTE = 0x100;
const SPAN_FLAGS_IS_REMOTE = 0x200;
const MIN_INT64 = -(2 ** 63);
const MAX_INT64 = 2 ** 63;
/** Attribute keys seen are few (semantic conventions); their bytes are cached up to this many. */
const MAX_CACHED_KEYS = 4096;
/** Distinct values cached per key (one window); strings longer than this many chars are never cached. */
const MAX_CACHED_VALUES_PER_KEY = 64;
const MAX_CACHED_VALUE_CHARS = 96;

/**
 * Per attribute key: its KeyValue.key field, and the whole KeyValue message (length-prefixed,
 * without the tag) per value seen, while values of that key repeat. A window ends when
 * MAX_CACHED_VALUES_PER_KEY values are cached: with more misses than hits in it the key is marked
 * as not repeating (`values` undefined: its values are written each time, no lookup), else the
 * window starts over. In front of the map sits the value last written under the key (`last`):
 * consecutive spans mostly repeat it, and a strict comparison costs less than hashing a fresh
 * string. The cache is exact: a message is a pure function of (key, value); Map keys compare by
 * SameValueZero and `last` by ===, both of which tell 200 from '200' (different encodings) and
 * take -0 as 0 (the same encoding); NaN, which === never matches, is found in the map.
 */
interface KeyEntry {
  readonly key: Buffer;
  values: Map<AttributeValue, Buffer> | undefined;
  hits: number;
  misses: number;
  last: unknown;
  lastBytes: Buffer;
}

/** Matches no attribute value: `last` of a key with nothing cached. */
const NO_VALUE = Symbol('no value');
const EMPTY = Buffer.alloc(0);

const keyCache = new Map<string, KeyEntry>();

function keyEntry(key: string): KeyEntry {
  let entry = keyCache.get(key);
  if (!entry) {
    const body = Buffer.from(key, 'utf8');
    entry = { key: Buffer.concat([Buffer.from([0x0a, ...varintBytes(body.length)]), body]), values: new Map(), hits: 0, misses: 0, last: NO_VALUE, lastBytes: EMPTY };
    if (keyCache.size < MAX_CACHED_KEYS) keyCache.set(key, entry);
  }
  return entry;
}

function cacheable(value: unknown): value is AttributeValue {
  const t = typeof value;
  return t === 'number' || t === 'boolean' || (t === 'string' && (value as string).length <= MAX_CACHED_VALUE_CHARS);
}

/** One attribute as a repeated field of `tag` (KeyValue), from the key's caches when they hold it. */
function writeAttribute(w: Writer, entry: KeyEntry, value: unknown, tag: number): void {
  w.byte(tag);
  if (value === entry.last) {
    entry.hits++;
    w.raw(entry.lastBytes);
    return;
  }
  const values = entry.values;
  if (values !== undefined && cacheable(value)) {
    const cached = values.get(value);
    if (cached !== undefined) {
      entry.hits++;
      entry.last = value;
      entry.lastBytes = cached;
      w.raw(cached);
      return;
    }
    const start = w.pos;
    writeKeyValue(w, entry.key, value);
    remember(entry, values, value, w.buf.subarray(start, w.pos));
    return;
  }
  writeKeyValue(w, entry.key, value);
}

/** A resource's or a nested map's attributes. */
function writeAttributes(w: Writer, attributes: Readonly<Record<string, unknown>>, tag: number): void {
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    writeAttribute(w, keyEntry(key), attributes[key], tag);
  }
}

/*
 * The last span's attributes, one memory per span kind: keys, entries and values by position, and
 * their encoded fields, where they were written (attribute i at prevStart + prevOff[i] ..
 * prevStart + prevOff[i + 1] of `prevWriter`'s bytes, valid while that writer is at
 * `prevGeneration`: writers only append until they go back to the pool, and a grown buffer keeps
 * its bytes at their offsets). Spans of one kind from one tracer list the same keys in the same
 * order (for-in yields internalized strings: one pointer comparison finds a key), and most values
 * repeat from one span to the next, so a span's attributes are mostly runs equal to the last
 * span's, copied as a block. A service that makes calls alternates server and client spans, whose
 * keys differ after the first few: one memory per kind keeps each kind's runs (one memory for
 * both: a Go server calling one downstream encoded its spans ~1.9x slower, every attribute through
 * the key caches). A field is a pure function of its key and value (=== tells 200 from '200'; NaN,
 * never ===, is encoded anew).
 */
class AttributeRuns {
  readonly keys: string[] = [];
  readonly entries: KeyEntry[] = [];
  readonly values: unknown[] = [];
  prevWriter: Writer | null = null;
  prevGeneration = -1;
  prevStart = 0;
  prevOff: number[] = [0];
  prevCount = 0;
  curOff: number[] = [];
}

const serverRuns = new AttributeRuns();
const clientRuns = new AttributeRuns();

const SPAN_ATTRIBUTE_TAG = 0x4a; // Span.attributes

/** A span's own attributes: runs equal to the last span's (of `m`) copied from its bytes, the others through the key caches. */
function writeSpanAttributes(w: Writer, attributes: Readonly<Record<string, unknown>>, m: AttributeRuns): void {
  // Unset until the end: a span that fails half-way leaves no stale bytes behind for the next one.
  const count = m.prevWriter !== null && m.prevWriter.generation === m.prevGeneration ? m.prevCount : 0;
  m.prevCount = 0;
  const seqKeys = m.keys;
  const seqEntries = m.entries;
  const seqValues = m.values;
  const start = w.pos;
  const off = m.curOff;
  let i = 0;
  /** First index of the pending run (attributes equal to the last span's, not yet copied), -1: none. */
  let run = -1;
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    const value = attributes[key];
    if (i < count && seqKeys[i] === key && seqValues[i] === value) {
      seqEntries[i].hits++;
      if (run < 0) run = i;
      i++;
      continue;
    }
    if (run >= 0) {
      copyRun(w, m, start, off, run, i);
      run = -1;
    }
    let entry: KeyEntry;
    if (seqKeys[i] === key) {
      entry = seqEntries[i];
    } else {
      entry = keyEntry(key);
      seqKeys[i] = key;
      seqEntries[i] = entry;
    }
    seqValues[i] = value;
    off[i] = w.pos - start;
    writeAttribute(w, entry, value, SPAN_ATTRIBUTE_TAG);
    i++;
  }
  if (run >= 0) copyRun(w, m, start, off, run, i);
  off[i] = w.pos - start;
  // Remembered where they are (no copy): the next span's runs are copied from here.
  m.prevWriter = w;
  m.prevGeneration = w.generation;
  m.prevStart = start;
  m.curOff = m.prevOff;
  m.prevOff = off;
  // Positions past this span's count must not match a later span's (their keys and values stay).
  m.prevCount = i;
}

/** Copies the last span's attributes from..to-1 (one block) and records where each one starts. */
function copyRun(w: Writer, m: AttributeRuns, start: number, off: number[], from: number, to: number): void {
  const prevOff = m.prevOff;
  const base = w.pos - start - prevOff[from];
  for (let j = from; j < to; j++) off[j] = prevOff[j] + base;
  const src = m.prevWriter!;
  if (src === w) w.rawOwn(m.prevStart + prevOff[from], m.prevStart + prevOff[to]);
  else w.rawFrom(src.buf, m.prevStart + prevOff[from], m.prevStart + prevOff[to]);
}

/** KeyValue { key, value } as a length-delimited body (its tag already written). */
function writeKeyValue(w: Writer, key: Buffer, value: unknown): void {
  const kv = w.begin(1);
  w.raw(key);
  w.byte(0x12); // KeyValue.value
  const m = w.begin(1);
  writeAnyValue(w, value);
  w.end(m);
  w.end(kv);
}

function remember(entry: KeyEntry, values: Map<AttributeValue, Buffer>, value: AttributeValue, bytes: Buffer): void {
  entry.misses++;
  if (values.size >= MAX_CACHED_VALUES_PER_KEY) {
    if (entry.misses > entry.hits) {
      entry.values = undefined;
      entry.last = NO_VALUE;
      entry.lastBytes = EMPTY;
      return;
    }
    values.clear();
    entry.hits = 0;
    entry.misses = 1;
  }
  const copy = Buffer.from(bytes);
  values.set(value, copy);
  entry.last = value;
  entry.lastBytes = copy;
}

function writeAnyValue(w: Writer, value: unknown): void {
  switch (typeof value) {
    case 'string':
      w.byte(0x0a);
      w.string(value);
      return;
    case 'boolean':
      w.byte(0x10);
      w.byte(value ? 1 : 0);
      return;
    case 'number':
      if (Number.isInteger(value) && value >= MIN_INT64 && value < MAX_INT64) {
        w.byte(0x18);
        w.varint(value);
      } else {
        w.byte(0x21);
        w.double(value);
      }
      return;
    default:
      break;
  }
  if (value instanceof Uint8Array) {
    w.byte(0x3a);
    w.bytes(value);
  } else if (Array.isArray(value)) {
    w.byte(0x2a);
    const arr = w.begin(1);
    for (const item of value) {
      w.byte(0x0a);
      const m = w.begin(1);
      writeAnyValue(w, item);
      w.end(m);
    }
    w.end(arr);
  } else if (typeof value === 'object' && value !== null) {
    w.byte(0x32);
    const list = w.begin(1);
    writeAttributes(w, value as Record<string, unknown>, 0x0a);
    w.end(list);
  }
  // Anything else: an empty AnyValue, as otlp-transformer writes.
}

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

function writeSpan(w: Writer, span: Span): void {
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
  writeSpanAttributes(w, span.attributes, span.kind === 'SERVER' ? serverRuns : clientRuns);
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
  // flags (field 16, fixed32): tag 0x85 0x01
  let flags = (span.traceFlags & 0xff) | SPAN_FLAGS_HAS_IS_REMOTE;
  if (hasParent && span.kind === 'SERVER') flags |= SPAN_FLAGS_IS_REMOTE;
  w.byte(0x85);
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
    try {
      w.byte(0x12); // ScopeSpans.spans
      const m = w.begin(2);
      writeSpan(w, span);
      w.end(m);
    } catch (err) {
      w.pos = mark;
      throw err;
    }
    g.spans++;
    this.byteLength += w.pos - mark;
    return ++this.length;
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

function putVarint(out: Buffer, p: number, v: number): number {
  while (v > 0x7f) {
    out[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[p++] = v;
  return p;
}

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
