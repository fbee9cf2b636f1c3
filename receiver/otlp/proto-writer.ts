/**
 * A protobuf wire-format writer over one growable buffer, for the trace encoder (trace-encoder.ts).
 * Lengths are minimal varints, as every protobuf writer emits them (otlp-transformer's included),
 * so two writers that write the same fields write the same bytes. A length-delimited field
 * reserves the length byte(s) it most likely needs (`begin`) and moves its body only when the
 * guess was wrong (`end`).
 *
 * Writers are pooled (`takeWriter` / `releaseWriter`): an export batch holds one per resource
 * until its request is built, and the next batch reuses the grown buffer instead of growing a new
 * one from scratch.
 */
import { endianness } from 'node:os';

const LITTLE_ENDIAN = endianness() === 'LE';

/** Scratch for fixed64: a bigint stored into a BigUint64Array is reduced mod 2^64 without allocating. */
const scratch64 = new BigUint64Array(1);
const scratch8 = new Uint8Array(scratch64.buffer);

/**
 * Hex digit values by char code, as otlp-transformer's hexToBinary computes them (0-9, a-f, and
 * `code - 55` for anything else, A-F included), so even a malformed id encodes the same.
 */
const HEX_VALUE = (() => {
  const t = new Int16Array(256);
  for (let c = 0; c < 256; c++) t[c] = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c - 55;
  return t;
})();

function hexValue(c: number): number {
  return c < 256 ? HEX_VALUE[c] : c - 55;
}

/** A 32-bit word as 4 little-endian bytes at `p` (unchecked: the caller ensured the room). */
export function putWord(buf: Buffer, p: number, w: number): void {
  buf[p] = w & 0xff;
  buf[p + 1] = (w >>> 8) & 0xff;
  buf[p + 2] = (w >>> 16) & 0xff;
  buf[p + 3] = w >>> 24;
}

/** The minimal varint of a non-negative 32-bit length at `p` (unchecked); returns the position after it. */
export function putVarint(buf: Buffer, p: number, v: number): number {
  while (v > 0x7f) {
    buf[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[p++] = v;
  return p;
}

/** A bigint as fixed64 (8 little-endian bytes, mod 2^64) at `p` (unchecked); returns p + 8. Throws, writing nothing, for a non-bigint. */
export function putFixed64(buf: Buffer, p: number, v: bigint): number {
  if (!LITTLE_ENDIAN) {
    buf.writeBigUInt64LE(BigInt.asUintN(64, v), p);
    return p + 8;
  }
  scratch64[0] = v;
  for (let i = 0; i < 8; i++) buf[p + i] = scratch8[i];
  return p + 8;
}

/**
 * The mark `begin` returns for a length room of `reserve` (1-7) bytes at `at`, for a caller that
 * reserved the room itself (unchecked writes after one `ensure`) and closes it with `end`.
 */
export function lengthMark(at: number, reserve: number): number {
  return at * 8 + reserve;
}

export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

/** The minimal varint of a non-negative 32-bit length, as bytes. */
export function varintBytes(v: number): number[] {
  const out: number[] = [];
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

export class Writer {
  buf: Buffer;
  pos = 0;
  /** Changes whenever the writer is taken from or given back to the pool: bytes remembered at an
   * older generation may have been overwritten. */
  generation = 0;

  constructor(size = 256 * 1024) {
    this.buf = Buffer.allocUnsafe(size);
  }

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
      this.pos = putVarint(buf, this.pos, value >>> 0);
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
    return lengthMark(mark, reserve);
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
    putVarint(this.buf, at, len);
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

  /** Copies `b` as is. Short inputs (keys, cached attributes) by a loop: Buffer.set's native call costs more. */
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

  /** Copies `src[from..to)` as is (a block of fields encoded before). */
  rawFrom(src: Buffer, from: number, to: number): void {
    const n = to - from;
    this.ensure(n);
    if (n > 64) {
      src.copy(this.buf, this.pos, from, to);
    } else {
      const buf = this.buf;
      const at = this.pos - from;
      for (let i = from; i < to; i++) buf[at + i] = src[i];
    }
    this.pos += n;
  }

  /** Copies bytes [from, to) written earlier into this writer to its end. */
  rawOwn(from: number, to: number): void {
    const n = to - from;
    this.ensure(n);
    const buf = this.buf;
    if (n > 64) {
      buf.copyWithin(this.pos, from, to);
    } else {
      const at = this.pos - from;
      for (let i = from; i < to; i++) buf[at + i] = buf[i];
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
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = (hexValue(h.charCodeAt(2 * i)) << 4) | hexValue(h.charCodeAt(2 * i + 1));
    this.pos = p;
  }

  /** 16 bytes given as four little-endian 32-bit words (model.ts SpanIdWords), with their length prefix. */
  words(a: number, b: number, c: number, d: number): void {
    this.ensure(17);
    const buf = this.buf;
    const p = this.pos;
    buf[p] = 16;
    putWord(buf, p + 1, a);
    putWord(buf, p + 5, b);
    putWord(buf, p + 9, c);
    putWord(buf, p + 13, d);
    this.pos = p + 17;
  }

  /** 8 bytes given as two little-endian 32-bit words, with their length prefix. */
  words2(a: number, b: number): void {
    this.ensure(9);
    const buf = this.buf;
    const p = this.pos;
    buf[p] = 8;
    putWord(buf, p + 1, a);
    putWord(buf, p + 5, b);
    this.pos = p + 9;
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  fixed64(v: bigint): void {
    this.ensure(8);
    this.pos = putFixed64(this.buf, this.pos, v);
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** The bytes written so far, copied. */
  copy(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

/** Buffers of free writers are kept up to this size; a larger one (a huge batch) is let go. */
const MAX_POOLED_BUFFER = 4 * 1024 * 1024;
const MAX_POOLED_WRITERS = 16;
/**
 * Free writers' buffers kept at most, together: a batch of 2048 spans grows its writer to ~1 MB,
 * and after a Collector outage (a full queue, up to 32 such batches) the pool would otherwise keep
 * 16 of them. A steady agent needs two or three per resource (the batch filling, the one in flight).
 */
const MAX_POOLED_BYTES = 8 * 1024 * 1024;
const NEW_WRITER_BYTES = 16 * 1024;
const pool: Writer[] = [];
let pooledBytes = 0;

/** An empty writer, from the pool when one is free. */
export function takeWriter(): Writer {
  const w = pool.pop();
  if (w) {
    pooledBytes -= w.buf.length;
    w.pos = 0;
    w.generation++;
    return w;
  }
  return new Writer(NEW_WRITER_BYTES);
}

/** Gives a writer back; its bytes must not be read afterwards. */
export function releaseWriter(w: Writer): void {
  w.generation++;
  if (pool.length < MAX_POOLED_WRITERS && w.buf.length <= MAX_POOLED_BUFFER && pooledBytes + w.buf.length <= MAX_POOLED_BYTES) {
    w.pos = 0;
    pooledBytes += w.buf.length;
    pool.push(w);
  }
}

/** Free writers and the bytes of their buffers (tests, memory accounting). */
export function writerPoolState(): { writers: number; bytes: number } {
  return { writers: pool.length, bytes: pooledBytes };
}
