/**
 * DWARF sections of an ELF file, decompressed: `.debug_<name>` with SHF_COMPRESSED (an Elf64_Chdr,
 * zlib), as Go writes them, or the older GNU `.zdebug_<name>` ("ZLIB" + 8-byte big-endian size).
 * Read by the struct-offset walk in dwarf.ts.
 */
import * as zlib from 'node:zlib';
import { SpanbridgeError } from '../../errors';
import { ElfFile, SHF_COMPRESSED, SHT_NOBITS } from './elf';

const ELFCOMPRESS_ZLIB = 1;
const ELFCOMPRESS_ZSTD = 2;

/** An inspection error about the DWARF of `elf` (also dwarf.ts's). */
export function dwarfError(elf: ElfFile, what: string, cause?: unknown): SpanbridgeError {
  return new SpanbridgeError('ERR_INSPECT', `inspect ${elf.path}: DWARF: ${what}`, cause === undefined ? undefined : { cause });
}

/**
 * Contents of `.debug_<name>` (e.g. name "info"), decompressed; undefined if absent.
 * ZSTD-compressed sections (gcc/ld `--compress-debug-sections=zstd`) need Node >= 22.15.
 */
export function debugSection(elf: ElfFile, name: string): Buffer | undefined {
  const plain = elf.section(`.debug_${name}`);
  if (plain && plain.type !== SHT_NOBITS) {
    const data = elf.sectionData(plain);
    if ((plain.flags & SHF_COMPRESSED) === 0) return data;
    if (data.length < 24) throw dwarfError(elf, `.debug_${name}: truncated compression header`);
    const type = data.readUInt32LE(0);
    const size = Number(data.readBigUInt64LE(8));
    if (type === ELFCOMPRESS_ZSTD) {
      throw new SpanbridgeError('ERR_NOT_SUPPORTED', `inspect ${elf.path}: zstd-compressed .debug_${name} not supported (requires Node >= 22.15)`);
    }
    if (type !== ELFCOMPRESS_ZLIB) throw dwarfError(elf, `.debug_${name}: unknown compression type ${type}`);
    return inflate(elf, name, data.subarray(24), size);
  }
  const z = elf.section(`.zdebug_${name}`);
  if (z && z.type !== SHT_NOBITS) {
    const data = elf.sectionData(z);
    if (data.length >= 12 && data.toString('latin1', 0, 4) === 'ZLIB') {
      return inflate(elf, name, data.subarray(12), Number(data.readBigUInt64BE(4)));
    }
    return data;
  }
  return undefined;
}

function inflate(elf: ElfFile, name: string, data: Buffer, size: number): Buffer {
  try {
    const out = zlib.inflateSync(data);
    if (out.length !== size) throw new Error(`size ${out.length}, header says ${size}`);
    return out;
  } catch (err) {
    throw dwarfError(elf, `cannot decompress .debug_${name}: ${String(err)}`, err);
  }
}

/** True when the binary has DWARF type information (absent after `-ldflags=-w`). */
export function hasDwarf(elf: ElfFile): boolean {
  return !!(elf.section('.debug_info') ?? elf.section('.zdebug_info'));
}
