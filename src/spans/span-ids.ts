/**
 * A span's ids kept as the bytes the kernel wrote, from the ring record to the OTLP encoder: eight
 * 32-bit words (trace id w0-w3, span id w4-w5, parent span id w6-w7, little-endian: byte i of the
 * ids is byte i % 4 of word i / 4), the span model's `ids` (receiver/model.ts SpanIdWords). The hex
 * strings of the span model are made only when something reads them (stdout, the trace view, the
 * tracestate links), once each: the syscall path made three per request (a native call and a
 * string each) and the encoder parsed them back into bytes (~0.5 us per span together, in process).
 * Words are small integers (no allocation, unlike a Buffer per span) and copying them keeps no
 * ring record alive.
 */
import type { SpanIdWords } from './span';

/** Scratch for hex conversions (one thread; never kept across calls). */
const scratch = Buffer.alloc(32);

/** Hex digit values by char code, as the OTLP encoder (receiver/otlp/proto-writer.ts) reads them. */
function hexValue(c: number): number {
  return c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c - 55;
}

function word(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
}

function putWord(b: Uint8Array, o: number, w: number): void {
  b[o] = w & 0xff;
  b[o + 1] = (w >>> 8) & 0xff;
  b[o + 2] = (w >>> 16) & 0xff;
  b[o + 3] = w >>> 24;
}

/** `n` bytes of `hex` into scratch at `at` (what the encoder would write for that string). */
function hexInto(hex: string, at: number, n: number): void {
  for (let i = 0; i < n; i++) scratch[at + i] = ((hexValue(hex.charCodeAt(2 * i)) << 4) | hexValue(hex.charCodeAt(2 * i + 1))) & 0xff;
}

export class SpanIds implements SpanIdWords {
  declare readonly w0: number;
  declare readonly w1: number;
  declare readonly w2: number;
  declare readonly w3: number;
  declare readonly w4: number;
  declare readonly w5: number;
  declare readonly w6: number;
  declare readonly w7: number;
  /** False: a root span (`parentSpanId` is ''; w6 and w7 are 0). */
  declare readonly hasParent: boolean;
  declare private trace: string | undefined;
  declare private span: string | undefined;
  declare private parent: string | undefined;

  constructor(w0: number, w1: number, w2: number, w3: number, w4: number, w5: number, w6: number, w7: number, hasParent: boolean) {
    this.w0 = w0;
    this.w1 = w1;
    this.w2 = w2;
    this.w3 = w3;
    this.w4 = w4;
    this.w5 = w5;
    this.w6 = hasParent ? w6 : 0;
    this.w7 = hasParent ? w7 : 0;
    this.hasParent = hasParent;
    this.trace = undefined;
    this.span = undefined;
    this.parent = undefined;
  }

  /** The ids at `off` of `b`: trace id (16 bytes), span id (8) and parent span id (8), one after the other. */
  static fromBytes(b: Uint8Array, off: number, hasParent: boolean): SpanIds {
    return new SpanIds(word(b, off), word(b, off + 4), word(b, off + 8), word(b, off + 12), word(b, off + 16), word(b, off + 20), word(b, off + 24), word(b, off + 28), hasParent);
  }

  /** From the span model's hex strings (32, 16 and 16 lowercase hex characters; '' parent: a root). */
  static fromHex(traceId: string, spanId: string, parentSpanId: string): SpanIds {
    hexInto(traceId, 0, 16);
    hexInto(spanId, 16, 8);
    const hasParent = parentSpanId !== '';
    if (hasParent) hexInto(parentSpanId, 24, 8);
    return SpanIds.fromBytes(scratch, 0, hasParent);
  }

  /** 32 lowercase hex characters. */
  get traceId(): string {
    return (this.trace ??= this.hex(0, 16));
  }

  /** 16 lowercase hex characters. */
  get spanId(): string {
    return (this.span ??= this.hex(16, 24));
  }

  /** 16 lowercase hex characters, '' for a root span. */
  get parentSpanId(): string {
    return (this.parent ??= this.hasParent ? this.hex(24, 32) : '');
  }

  /** The 32 bytes, written at `at` of `out`. */
  writeBytes(out: Uint8Array, at: number): void {
    putWord(out, at, this.w0);
    putWord(out, at + 4, this.w1);
    putWord(out, at + 8, this.w2);
    putWord(out, at + 12, this.w3);
    putWord(out, at + 16, this.w4);
    putWord(out, at + 20, this.w5);
    putWord(out, at + 24, this.w6);
    putWord(out, at + 28, this.w7);
  }

  private hex(start: number, end: number): string {
    this.writeBytes(scratch, 0);
    return scratch.toString('hex', start, end);
  }
}
