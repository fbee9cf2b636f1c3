/**
 * Attributes as OTLP KeyValue fields, for the trace encoder (trace-encoder.ts): the fields' bytes
 * per key and per repeating value (`KeyEntry`), and the writing of any attribute value.
 *
 * What repeats is encoded once and copied afterwards: attribute keys, and whole span attributes
 * (tag, key and value) whose values repeat (method, scheme, route, addresses, status code...). A
 * key whose values do not repeat (paths, ids) stops being cached after one window. Values that are
 * written (ASCII strings and 32-bit unsigned integers, most of them) are sized first and written
 * after one `ensure`. The bytes are those of otlp-transformer's writer for the same attribute.
 */
import type { AttributeValue } from '../model';
import { putVarint, varintBytes, varintSize, Writer } from './proto-writer';

export const SPAN_ATTRIBUTE_TAG = 0x4a; // Span.attributes

const MIN_INT64 = -(2 ** 63);
const MAX_INT64 = 2 ** 63;
/** Attribute keys seen are few (semantic conventions); their bytes are cached up to this many. */
const MAX_CACHED_KEYS = 4096;
/** Distinct values cached per key (one window); strings longer than this many chars are never cached. */
const MAX_CACHED_VALUES_PER_KEY = 64;
const MAX_CACHED_VALUE_CHARS = 96;

/**
 * Per attribute key: its KeyValue.key field, and the whole Span.attributes field (tag, length,
 * KeyValue) per value seen, while values of that key repeat (span attributes only: a resource's
 * and a nested map's, written once or rarely, are written each time). A window ends when
 * MAX_CACHED_VALUES_PER_KEY values are cached: with more misses than hits in it the key is marked
 * as not repeating (`values` undefined: its values are written each time, no lookup), else the
 * window starts over. In front of the map sits the value last written under the key (`last`):
 * consecutive spans mostly repeat it, and a strict comparison costs less than hashing a fresh
 * string. The cache is exact: a message is a pure function of (key, value); Map keys compare by
 * SameValueZero and `last` by ===, both of which tell 200 from '200' (different encodings) and
 * take -0 as 0 (the same encoding); NaN, which === never matches, is found in the map.
 */
export interface KeyEntry {
  readonly key: Buffer;
  values: Map<AttributeValue, Buffer> | undefined;
  hits: number;
  misses: number;
  last: unknown;
  lastBytes: Buffer;
}

/** Matches no attribute value: `last` of a key with nothing cached. */
const NO_VALUE = Symbol('no value');
export const EMPTY = Buffer.alloc(0);

const keyCache = new Map<string, KeyEntry>();

export function keyEntry(key: string): KeyEntry {
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

/** One span attribute (a Span.attributes field), from the key's caches when they hold it. */
export function writeSpanAttribute(w: Writer, entry: KeyEntry, value: unknown): void {
  const cached = cachedField(entry, value);
  if (cached !== undefined) w.raw(cached);
  else writeUncachedAttribute(w, entry, value);
}

/** The Span.attributes field of `value` under `entry` when the key's caches hold it (counted as a hit); else undefined. */
export function cachedField(entry: KeyEntry, value: unknown): Buffer | undefined {
  if (value === entry.last) {
    entry.hits++;
    return entry.lastBytes;
  }
  const values = entry.values;
  if (values !== undefined && cacheable(value)) {
    const cached = values.get(value);
    if (cached !== undefined) {
      entry.hits++;
      entry.last = value;
      entry.lastBytes = cached;
      return cached;
    }
  }
  return undefined;
}

/** Writes a span attribute `cachedField` did not find, remembering it while the key's values repeat. */
export function writeUncachedAttribute(w: Writer, entry: KeyEntry, value: unknown): void {
  const values = entry.values;
  const start = w.pos;
  writeKeyValue(w, SPAN_ATTRIBUTE_TAG, entry.key, value);
  if (values !== undefined && cacheable(value)) remember(entry, values, value, w, start);
}

/** A resource's or a nested map's attributes, as repeated fields of `tag` (KeyValue). */
export function writeAttributes(w: Writer, attributes: Readonly<Record<string, unknown>>, tag: number): void {
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    writeKeyValue(w, tag, keyEntry(key).key, attributes[key]);
  }
}

/**
 * A KeyValue { key, value } field of `tag` (`key`: the KeyValue.key field's bytes). ASCII strings
 * and integers of 0..2^32-1 (most attribute values) are sized first and written after one
 * `ensure`, lengths in place; the rest through the writer's length rooms.
 */
function writeKeyValue(w: Writer, tag: number, key: Buffer, value: unknown): void {
  if (typeof value === 'string') {
    if (writeAsciiKeyValue(w, tag, key, value)) return;
  } else if (typeof value === 'number' && value >= 0 && value <= 0xffffffff && Number.isInteger(value)) {
    writeUintKeyValue(w, tag, key, value);
    return;
  }
  w.byte(tag);
  const kv = w.begin(1);
  w.raw(key);
  w.byte(0x12); // KeyValue.value
  const m = w.begin(1);
  writeAnyValue(w, value);
  w.end(m);
  w.end(kv);
}

/** KeyValue { key, AnyValue { string_value } } when `s` is ASCII (one byte per char); false, nothing written, otherwise. */
function writeAsciiKeyValue(w: Writer, tag: number, key: Buffer, s: string): boolean {
  const n = s.length;
  const kl = key.length;
  const vl = 1 + varintSize(n) + n; // AnyValue
  const kvl = kl + 1 + varintSize(vl) + vl; // KeyValue
  w.ensure(1 + varintSize(kvl) + kvl);
  const buf = w.buf;
  let p = putKeyValueHead(buf, w.pos, tag, kvl, key);
  p = putVarint(buf, p, vl);
  buf[p] = 0x0a; // AnyValue.string_value
  p = putVarint(buf, p + 1, n);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 127) return false;
    buf[p + i] = c;
  }
  w.pos = p + n;
  return true;
}

/** KeyValue { key, AnyValue { int_value } } of an integer 0 <= v <= 2^32-1. */
function writeUintKeyValue(w: Writer, tag: number, key: Buffer, v: number): void {
  const kl = key.length;
  const vl = 1 + varintSize(v); // AnyValue
  const kvl = kl + 2 + vl; // KeyValue (vl < 128)
  w.ensure(1 + varintSize(kvl) + kvl);
  const buf = w.buf;
  const p = putKeyValueHead(buf, w.pos, tag, kvl, key);
  buf[p] = vl;
  buf[p + 1] = 0x18; // AnyValue.int_value
  w.pos = putVarint(buf, p + 2, v >>> 0);
}

/**
 * A KeyValue field's head at `p` (unchecked: the caller ensured the room): `tag`, the KeyValue's
 * length `kvl`, the KeyValue.key field's bytes `key`, and KeyValue.value's tag; returns the
 * position of the value's length.
 */
function putKeyValueHead(buf: Buffer, p: number, tag: number, kvl: number, key: Buffer): number {
  buf[p] = tag;
  p = putVarint(buf, p + 1, kvl);
  const kl = key.length;
  for (let i = 0; i < kl; i++) buf[p + i] = key[i];
  p += kl;
  buf[p] = 0x12; // KeyValue.value
  return p + 1;
}

/** Remembers the field written at `start` of `w` (to its end) as `value`'s under `entry`. */
function remember(entry: KeyEntry, values: Map<AttributeValue, Buffer>, value: AttributeValue, w: Writer, start: number): void {
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
  const copy = Buffer.allocUnsafe(w.pos - start);
  w.buf.copy(copy, 0, start, w.pos);
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
