/**
 * OTLP ExportTraceServiceRequest (protobuf) straight from our span model, in one pass.
 *
 * Why not otlp-transformer's ProtobufTraceSerializer: it needs every span converted to an SDK
 * `ReadableSpan` first (objects, closures, HrTime arrays per span), then walks the whole batch
 * twice (a size estimator, then the writer) and copies ids through a fresh Uint8Array per id. That
 * was the agent's largest CPU cost per span. This encoder writes each field once into one reused
 * buffer; a length-delimited field reserves the length byte(s) it most likely needs and moves its
 * body only when the guess was wrong.
 *
 * The output is byte for byte what ProtobufTraceSerializer produces for `toReadableSpan` of the
 * same spans (test/unit/receiver/otlp/trace-encoder.test.ts holds it to that): same grouping (one
 * ResourceSpans per resource object in first-seen order, one ScopeSpans), same field order, same
 * defaults written.
 */
import { version as packageVersion } from '../../package.json';
import type { AttributeValue, Resource, Span } from '../model';
import { W3CTraceState } from './trace-state';

const KIND_SERVER = 2; // proto SpanKind: SPAN_KIND_SERVER
const KIND_CLIENT = 3; // SPAN_KIND_CLIENT
const STATUS = { UNSET: 0, OK: 1, ERROR: 2 } as const;
const SPAN_FLAGS_HAS_IS_REMOTE = 0x100;
const SPAN_FLAGS_IS_REMOTE = 0x200;
const MIN_INT64 = -(2 ** 63);
const MAX_INT64 = 2 ** 63;
/** Attribute keys seen are few (semantic conventions); their bytes are cached up to this many. */
const MAX_CACHED_KEYS = 4096;

class Writer {
  buf: Buffer = Buffer.allocUnsafe(256 * 1024);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  varint(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    if (value >= 0 && value <= 0xffffffff) {
      let v = value >>> 0;
      while (v > 0x7f) {
        buf[this.pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      buf[this.pos++] = v;
      return;
    }
    // 64-bit, two's complement for negatives (as otlp-transformer's writer does).
    let low: number;
    let high: number;
    const abs = Math.abs(value);
    low = abs >>> 0;
    high = (abs / 0x100000000) >>> 0;
    if (value < 0) {
      low = ~low >>> 0;
      high = ~high >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    while (high > 0 || low > 0x7f) {
      buf[this.pos++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    buf[this.pos++] = low & 0x7f;
  }

  /** Starts a length-delimited body with `reserve` bytes kept for its length; returns the mark. */
  begin(reserve: number): number {
    this.ensure(reserve);
    const mark = this.pos;
    this.pos += reserve;
    return mark * 8 + reserve;
  }

  /** Writes the body length at `mark`, moving the body if the reserved room was not its size. */
  end(mark: number): void {
    const reserve = mark & 7;
    const at = (mark - reserve) / 8;
    const bodyStart = at + reserve;
    const len = this.pos - bodyStart;
    const need = varintSize(len);
    if (need !== reserve) {
      this.ensure(need - reserve);
      this.buf.copyWithin(at + need, bodyStart, this.pos);
      this.pos += need - reserve;
    }
    let v = len;
    let p = at;
    while (v > 0x7f) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
  }

  string(s: string): void {
    const n = s.length;
    const lenBytes = varintSize(n);
    this.ensure(lenBytes + n);
    const buf = this.buf;
    const start = this.pos + lenBytes;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 127) {
        this.utf8(s);
        return;
      }
      buf[start + i] = c;
    }
    this.varint(n);
    this.pos += n;
  }

  private utf8(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, n, 'utf8');
  }

  /** Copies `b` as is. Short inputs (keys) by a loop: Buffer.copy's native call costs more. */
  raw(b: Uint8Array): void {
    const n = b.length;
    this.ensure(n);
    if (n > 64) {
      this.buf.set(b, this.pos);
    } else {
      const buf = this.buf;
      const at = this.pos;
      for (let i = 0; i < n; i++) buf[at + i] = b[i];
    }
    this.pos += n;
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A lowercase/uppercase hex id as bytes, with its length prefix. */
  hex(h: string): void {
    const n = h.length >>> 1;
    this.varint(n);
    this.ensure(n);
    const buf = this.buf;
    for (let i = 0; i < n; i++) buf[this.pos++] = (hexValue(h.charCodeAt(2 * i)) << 4) | hexValue(h.charCodeAt(2 * i + 1));
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  fixed64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.pos);
    this.pos += 8;
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
}

function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return c - 55;
}

const keyCache = new Map<string, Buffer>();

/** KeyValue.key (tag + length + bytes), cached per key. */
function writeKey(w: Writer, key: string): void {
  let encoded = keyCache.get(key);
  if (!encoded) {
    const body = Buffer.from(key, 'utf8');
    const head = Buffer.from([0x0a, ...varintBytes(body.length)]);
    encoded = Buffer.concat([head, body]);
    if (keyCache.size < MAX_CACHED_KEYS) keyCache.set(key, encoded);
  }
  w.raw(encoded);
}

function varintBytes(v: number): number[] {
  const out: number[] = [];
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

function writeAttributes(w: Writer, attributes: Readonly<Record<string, unknown>>, tag: number): void {
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    w.byte(tag);
    const kv = w.begin(1);
    writeKey(w, key);
    w.byte(0x12); // KeyValue.value
    const value = w.begin(1);
    writeAnyValue(w, attributes[key] as AttributeValue);
    w.end(value);
    w.end(kv);
  }
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
  const w = new Writer();
  w.byte(0x0a);
  const m = w.begin(1);
  w.byte(0x0a);
  w.string('spanbridge');
  if (packageVersion) {
    w.byte(0x12);
    w.string(packageVersion);
  }
  w.end(m);
  return Buffer.from(w.buf.subarray(0, w.pos));
})();

function writeSpan(w: Writer, span: Span): void {
  w.byte(0x0a); // trace_id
  w.hex(span.traceId);
  w.byte(0x12); // span_id
  w.hex(span.spanId);
  if (span.traceState !== '') {
    const serialized = new W3CTraceState(span.traceState).serialize();
    if (serialized) {
      w.byte(0x1a);
      w.string(serialized);
    }
  }
  const hasParent = span.parentSpanId !== '';
  if (hasParent) {
    w.byte(0x22);
    w.hex(span.parentSpanId);
  }
  w.byte(0x2a); // name
  w.string(span.name);
  w.byte(0x30); // kind
  w.byte(span.kind === 'SERVER' ? KIND_SERVER : KIND_CLIENT);
  w.byte(0x39); // start_time_unix_nano
  w.fixed64(span.startTimeUnixNano);
  w.byte(0x41); // end_time_unix_nano
  w.fixed64(span.endTimeUnixNano);
  writeAttributes(w, span.attributes, 0x4a);
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

const writer = new Writer();

/**
 * The request bytes for `spans`, each under `resourceOf(span)` (one object per process: spans are
 * grouped by that object's identity). The result is a fresh copy the caller owns.
 */
export function encodeTraceRequest(spans: readonly Span[], resourceOf: (span: Span) => Resource = (s) => s.resource): Uint8Array {
  const groups = new Map<Resource, Span[]>();
  for (const span of spans) {
    const resource = resourceOf(span);
    const group = groups.get(resource);
    if (group) group.push(span);
    else groups.set(resource, [span]);
  }
  const w = writer;
  w.pos = 0;
  try {
    for (const [resource, group] of groups) {
      w.byte(0x0a); // resource_spans
      const rs = w.begin(3);
      w.byte(0x0a); // resource
      const res = w.begin(1);
      writeAttributes(w, resource.attributes, 0x0a);
      w.byte(0x10); // dropped_attributes_count
      w.byte(0);
      w.end(res);
      w.byte(0x12); // scope_spans
      const ss = w.begin(3);
      w.raw(SCOPE_BYTES);
      for (const span of group) {
        w.byte(0x12); // spans
        const m = w.begin(2);
        writeSpan(w, span);
        w.end(m);
      }
      w.end(ss);
      w.end(rs);
    }
    return new Uint8Array(w.buf.subarray(0, w.pos));
  } finally {
    // A huge batch must not pin its buffer for the agent's lifetime.
    if (w.buf.length > 8 * 1024 * 1024) w.buf = Buffer.allocUnsafe(256 * 1024);
  }
}
