/**
 * Reading and writing fixed-layout C structs through their generated layouts. Field names are
 * checked at the call site against the layout, so a renamed C field fails loudly in tests.
 */
import type { StructLayout } from './btf-layout';

function field(layout: StructLayout, name: string) {
  const f = layout.fields[name];
  if (!f) throw new Error(`struct has no field ${name}`);
  return f;
}

export function readUint(buf: Buffer, layout: StructLayout, name: string): number {
  const f = field(layout, name);
  switch (f.size) {
    case 1:
      return buf.readUInt8(f.offset);
    case 2:
      return buf.readUInt16LE(f.offset);
    case 4:
      return buf.readUInt32LE(f.offset);
    default:
      throw new Error(`field ${name} is ${f.size} bytes; use readBig`);
  }
}

export function readBig(buf: Buffer, layout: StructLayout, name: string): bigint {
  const f = field(layout, name);
  if (f.size !== 8) throw new Error(`field ${name} is not 8 bytes`);
  return f.kind === 's64' ? buf.readBigInt64LE(f.offset) : buf.readBigUInt64LE(f.offset);
}

export function readBytes(buf: Buffer, layout: StructLayout, name: string): Buffer {
  const f = field(layout, name);
  return buf.subarray(f.offset, f.offset + f.size);
}

export function readHex(buf: Buffer, layout: StructLayout, name: string): string {
  return readBytes(buf, layout, name).toString('hex');
}

/**
 * A captured string: `trueLength` is its length in the target, the buffer holds at most its
 * capacity. Bytes past the captured length are never read (ring memory is not zeroed).
 */
export function readCapturedString(
  buf: Buffer,
  layout: StructLayout,
  name: string,
  trueLength: number,
): { value: string; truncated: boolean } {
  const f = field(layout, name);
  const n = Math.min(trueLength, f.size);
  return { value: buf.toString('latin1', f.offset, f.offset + n), truncated: trueLength > f.size };
}

/**
 * A reader of captured strings whose true length is in `<name>_len`-style fields; it remembers
 * which fields were cut to their buffer (for the `truncated` list of a record).
 */
export function capturedStringReader(
  buf: Buffer,
  layout: StructLayout,
): { str(name: string, lenField: string): string; readonly truncated: string[] } {
  const truncated: string[] = [];
  return {
    truncated,
    str(name, lenField) {
      const s = readCapturedString(buf, layout, name, readUint(buf, layout, lenField));
      if (s.truncated) truncated.push(name);
      return s.value;
    },
  };
}

/** A NUL-terminated fixed char array (e.g. comm[16]). */
export function readCString(buf: Buffer, layout: StructLayout, name: string): string {
  const bytes = readBytes(buf, layout, name);
  const end = bytes.indexOf(0);
  return bytes.toString('latin1', 0, end < 0 ? bytes.length : end);
}

export function writeUints(layout: StructLayout, values: Record<string, number>): Buffer {
  const buf = Buffer.alloc(layout.size);
  for (const [name, v] of Object.entries(values)) {
    const f = field(layout, name);
    switch (f.size) {
      case 1:
        buf.writeUInt8(v, f.offset);
        break;
      case 2:
        buf.writeUInt16LE(v, f.offset);
        break;
      case 4:
        buf.writeUInt32LE(v >>> 0, f.offset);
        break;
      case 8:
        buf.writeBigUInt64LE(BigInt(v), f.offset);
        break;
      default:
        throw new Error(`field ${name}: cannot write ${f.size} bytes`);
    }
  }
  return buf;
}

/*
 * Field readers resolved once, at module load of a decoder: the name is checked against the layout
 * there (a renamed C field still fails loudly), and the hot path reads at a fixed offset with no
 * lookup by name. For decoders that run once per ring-buffer record.
 */

export function uintAt(layout: StructLayout, name: string): (buf: Buffer) => number {
  const { offset, size } = field(layout, name);
  switch (size) {
    case 1:
      return (buf) => buf[offset];
    case 2:
      return (buf) => buf.readUInt16LE(offset);
    case 4:
      return (buf) => buf.readUInt32LE(offset);
    default:
      throw new Error(`field ${name} is ${size} bytes; use bigAt`);
  }
}

/**
 * An unsigned 64-bit value from its two 32-bit halves. Values below 2^53 (timestamps, counters) go
 * through one exact double: one BigInt made instead of three; larger ones (random ids) the long way.
 */
export function u64Of(lo: number, hi: number): bigint {
  return hi < 0x200000 ? BigInt(hi * 0x1_0000_0000 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

export function bigAt(layout: StructLayout, name: string): (buf: Buffer) => bigint {
  const f = field(layout, name);
  if (f.size !== 8) throw new Error(`field ${name} is not 8 bytes`);
  const { offset } = f;
  if (f.kind === 's64') return (buf) => buf.readBigInt64LE(offset);
  return (buf) => u64Of(buf.readUInt32LE(offset), buf.readUInt32LE(offset + 4));
}

/** An unsigned 64-bit field as a number, capped at Number.MAX_SAFE_INTEGER (lengths, sizes). */
export function safeNumberAt(layout: StructLayout, name: string): (buf: Buffer) => number {
  const f = field(layout, name);
  if (f.size !== 8 || f.kind === 's64') throw new Error(`field ${name} is not an unsigned 8-byte field`);
  const { offset } = f;
  return (buf) => {
    const hi = buf.readUInt32LE(offset + 4);
    return hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : hi * 0x1_0000_0000 + buf.readUInt32LE(offset);
  };
}

export function hexAt(layout: StructLayout, name: string): (buf: Buffer) => string {
  const { offset, size } = field(layout, name);
  return (buf) => buf.toString('hex', offset, offset + size);
}

/** A captured string whose true length is in `lenField` (see readCapturedString). */
export function capturedStringAt(layout: StructLayout, name: string, lenField: string): (buf: Buffer) => { value: string; truncated: boolean } {
  const { offset, size } = field(layout, name);
  const len = uintAt(layout, lenField);
  return (buf) => {
    const trueLength = len(buf);
    return { value: buf.toString('latin1', offset, offset + Math.min(trueLength, size)), truncated: trueLength > size };
  };
}
