/**
 * Setting `const volatile` globals in a BPF object's .rodata by variable name, without koffi:
 * the libbpf binding hands this module a byte view of the .rodata initial image and the
 * variables' layout (read from the object's BTF DATASEC), and this module validates and writes
 * the values. Kept apart so the encoding rules are unit-testable without a kernel.
 */
import { SpanbridgeError } from '../errors';

export type RodataValue = number | bigint | boolean | Buffer;

/** One variable of the .rodata DATASEC: where it lives in the section image and how big it is. */
export interface RodataVar {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
}

/** The 12-byte `struct btf_type` header (linux/btf.h). */
export interface BtfTypeHeader {
  readonly nameOff: number;
  readonly kind: number;
  readonly vlen: number;
  /** `size` for INT/STRUCT/DATASEC..., `type` for VAR/PTR/... */
  readonly sizeOrType: number;
}

export const BTF_KIND_VAR = 14;
export const BTF_KIND_DATASEC = 15;
export const BTF_TYPE_HEADER_SIZE = 12;
export const BTF_VAR_SECINFO_SIZE = 12;

export function parseBtfTypeHeader(bytes: Buffer): BtfTypeHeader {
  const info = bytes.readUInt32LE(4);
  return {
    nameOff: bytes.readUInt32LE(0),
    kind: (info >>> 24) & 0x1f,
    vlen: info & 0xffff,
    sizeOrType: bytes.readUInt32LE(8),
  };
}

/** `struct btf_var_secinfo` entries that follow a DATASEC header: {type, offset, size}. */
export function parseVarSecinfos(bytes: Buffer, vlen: number): { type: number; offset: number; size: number }[] {
  const out: { type: number; offset: number; size: number }[] = [];
  for (let i = 0; i < vlen; i++) {
    const base = BTF_TYPE_HEADER_SIZE + i * BTF_VAR_SECINFO_SIZE;
    out.push({
      type: bytes.readUInt32LE(base),
      offset: bytes.readUInt32LE(base + 4),
      size: bytes.readUInt32LE(base + 8),
    });
  }
  return out;
}

/**
 * Validates and writes every value into `image` (the .rodata initial value, shared memory with
 * libbpf). All values are checked before anything is written, so a bad setting leaves the image
 * untouched. Integers are little-endian at the variable's size; a Buffer is copied and the rest
 * of the variable zeroed.
 */
export function writeRodata(
  objectPath: string,
  image: Buffer,
  vars: readonly RodataVar[],
  values: Readonly<Record<string, RodataValue>>,
): void {
  const byName = new Map(vars.map((v) => [v.name, v]));
  const writes: { v: RodataVar; bytes: Buffer }[] = [];
  for (const [name, value] of Object.entries(values)) {
    const v = byName.get(name);
    if (!v) {
      const known = vars.map((x) => x.name).join(', ') || 'none';
      throw new SpanbridgeError('ERR_BPF_OPEN', `set rodata ${name} in ${objectPath}: no such variable (known: ${known})`);
    }
    if (v.offset + v.size > image.length) {
      throw new SpanbridgeError(
        'ERR_BPF_OPEN',
        `set rodata ${name} in ${objectPath}: variable at ${v.offset}+${v.size} outside .rodata (${image.length} bytes)`,
      );
    }
    writes.push({ v, bytes: encodeRodataValue(objectPath, v, value) });
  }
  for (const { v, bytes } of writes) {
    image.fill(0, v.offset, v.offset + v.size);
    bytes.copy(image, v.offset);
  }
}

/** Encodes one value at the variable's size; throws ERR_BPF_OPEN when it does not fit. */
export function encodeRodataValue(objectPath: string, v: RodataVar, value: RodataValue): Buffer {
  const fail = (why: string): never => {
    throw new SpanbridgeError('ERR_BPF_OPEN', `set rodata ${v.name} in ${objectPath}: ${why}`);
  };
  if (Buffer.isBuffer(value)) {
    if (value.length > v.size) fail(`buffer of ${value.length} bytes does not fit ${v.size}-byte variable`);
    return Buffer.from(value);
  }
  if (![1, 2, 4, 8].includes(v.size)) {
    return fail(`variable is ${v.size} bytes; only 1, 2, 4 or 8-byte integers take numbers (pass a Buffer)`);
  }
  let big: bigint;
  if (typeof value === 'boolean') {
    big = value ? 1n : 0n;
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) fail(`${value} is not a safe integer (use a bigint)`);
    big = BigInt(value);
  } else {
    big = value;
  }
  const bits = BigInt(v.size * 8);
  const min = -(1n << (bits - 1n));
  const max = (1n << bits) - 1n;
  if (big < min || big > max) fail(`${big} does not fit a ${v.size}-byte variable`);
  // Two's complement at 64 bits, little-endian, then keep the variable's low bytes.
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(BigInt.asUintN(64, big));
  return out.subarray(0, v.size);
}
