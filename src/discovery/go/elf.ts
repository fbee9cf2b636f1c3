/**
 * A small ELF64 little-endian (x86-64) reader: header, section headers and names, program
 * headers, `.symtab` and `.dynsym` function lookup.
 *
 * Why our own: the agent only needs a handful of facts about a target binary, the binaries are
 * large (10-100 MB) and we must not pull a native addon in. So the file is kept open and only the
 * bytes that are needed (headers, one section at a time) are read with `fs.readSync` at offsets.
 */
import * as fs from 'node:fs';
import { SpanbridgeError } from '../../errors';

export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_NOBITS = 8;
export const SHT_DYNSYM = 11;
export const SHF_COMPRESSED = 0x800;
export const PT_LOAD = 1;
export const STT_FUNC = 2;
export const STT_TLS = 6;
export const PT_TLS = 7;
const EM_X86_64 = 62;
const R_X86_64_RELATIVE = 8;

export interface ElfSection {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: number;
  readonly addr: number;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly addralign: number;
  readonly entsize: number;
}

export interface ElfSegment {
  readonly type: number;
  readonly flags: number;
  readonly offset: number;
  readonly vaddr: number;
  readonly filesz: number;
  readonly memsz: number;
  readonly align: number;
}

/** A function as found in a symbol table (or the Go pcln table): where it is, in memory and in the file. */
export interface ElfFunction {
  readonly name: string;
  readonly vaddr: number;
  readonly size: number;
  /** Offset in the file of the first instruction (what a uprobe is attached to). */
  readonly fileOffset: number;
}

function inspectError(path: string, what: string, cause?: unknown): SpanbridgeError {
  return new SpanbridgeError('ERR_INSPECT', `inspect ${path}: ${what}`, cause === undefined ? undefined : { cause });
}

/**
 * Addresses and sizes are read as 64-bit and converted to `number`: every offset in a file we can
 * read, and every user-space address of a non-PIE or PIE x86-64 executable, is below 2^53.
 */
function u64(buf: Buffer, off: number): number {
  return Number(buf.readBigUInt64LE(off));
}

/** An open ELF file. Call `close()` when done (or use `withElf`). */
export class ElfFile {
  readonly path: string;
  readonly fileSize: number;
  readonly type: number;
  readonly machine: number;
  readonly entry: number;
  readonly sections: readonly ElfSection[];
  readonly segments: readonly ElfSegment[];
  private fd: number;
  private readonly byName = new Map<string, ElfSection>();
  private readonly symbolData = new Map<number, { syms: Buffer; strs: Buffer }>();
  private relativeRelocs: Map<number, number> | undefined;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.fd = fd;
    this.fileSize = fs.fstatSync(fd).size;
    const ident = this.read(0, Math.min(64, this.fileSize));
    if (ident.length < 16 || ident.readUInt32BE(0) !== 0x7f454c46) throw inspectError(path, 'not an ELF file');
    if (ident[4] !== 2) throw inspectError(path, 'not a 64-bit ELF file (only x86-64 is supported)');
    if (ident[5] !== 1) throw inspectError(path, 'not a little-endian ELF file (only x86-64 is supported)');
    if (ident.length < 64) throw inspectError(path, 'truncated ELF header');
    this.type = ident.readUInt16LE(16);
    this.machine = ident.readUInt16LE(18);
    if (this.machine !== EM_X86_64) throw inspectError(path, `not an x86-64 ELF file (e_machine ${this.machine})`);
    this.entry = u64(ident, 24);
    const phoff = u64(ident, 32);
    const shoff = u64(ident, 40);
    const phentsize = ident.readUInt16LE(54);
    const phnum = ident.readUInt16LE(56);
    const shentsize = ident.readUInt16LE(58);
    let shnum = ident.readUInt16LE(60);
    let shstrndx = ident.readUInt16LE(62);

    this.segments =
      phnum > 0
        ? this.readTable(phoff, phentsize, phnum, 'program headers', (ph, o) => ({
            type: ph.readUInt32LE(o),
            flags: ph.readUInt32LE(o + 4),
            offset: u64(ph, o + 8),
            vaddr: u64(ph, o + 16),
            filesz: u64(ph, o + 32),
            memsz: u64(ph, o + 40),
            align: u64(ph, o + 48),
          }))
        : [];

    const sections: ElfSection[] = [];
    if (shoff !== 0 && shentsize >= 64) {
      // Extended numbering: with >= 0xff00 sections the real counts live in section 0.
      if (shnum === 0 || shstrndx === 0xffff) {
        const s0 = this.readChecked(shoff, 64, 'section header 0');
        if (shnum === 0) shnum = u64(s0, 32);
        if (shstrndx === 0xffff) shstrndx = s0.readUInt32LE(40);
      }
      const raw = this.readTable(shoff, shentsize, shnum, 'section headers', (sh, o, index) => ({
        index,
        nameOff: sh.readUInt32LE(o),
        type: sh.readUInt32LE(o + 4),
        flags: u64(sh, o + 8),
        addr: u64(sh, o + 16),
        offset: u64(sh, o + 24),
        size: u64(sh, o + 32),
        link: sh.readUInt32LE(o + 40),
        info: sh.readUInt32LE(o + 44),
        addralign: u64(sh, o + 48),
        entsize: u64(sh, o + 56),
      }));
      const strSec = raw[shstrndx];
      const names = strSec ? this.readChecked(strSec.offset, strSec.size, 'section names') : Buffer.alloc(0);
      for (const r of raw) {
        const { nameOff, ...rest } = r;
        const end = names.indexOf(0, nameOff);
        const name = nameOff < names.length ? names.toString('latin1', nameOff, end < 0 ? names.length : end) : '';
        const s: ElfSection = { ...rest, name };
        sections.push(s);
        if (name !== '' && !this.byName.has(name)) this.byName.set(name, s);
      }
    }
    this.sections = sections;
  }

  /** Opens and validates `path` (ELF64, little-endian, x86-64); throws ERR_INSPECT otherwise. */
  static open(path: string): ElfFile {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (err) {
      throw inspectError(path, `cannot open: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
    }
    try {
      return new ElfFile(path, fd);
    } catch (err) {
      fs.closeSync(fd);
      if (err instanceof SpanbridgeError) throw err;
      throw inspectError(path, `malformed ELF: ${String(err)}`, err);
    }
  }

  close(): void {
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.fd = -1;
    }
  }

  /** Reads up to `length` bytes at `offset` (short at end of file). */
  read(offset: number, length: number): Buffer {
    if (this.fd < 0) throw inspectError(this.path, 'file already closed');
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return done === length ? buf : buf.subarray(0, done);
  }

  /** Reads exactly `length` bytes at `offset` or throws ERR_INSPECT naming `what`. */
  readChecked(offset: number, length: number, what: string): Buffer {
    if (offset + length > this.fileSize) throw inspectError(this.path, `truncated file (${what} past end of file)`);
    return this.read(offset, length);
  }

  /** A header table (program or section headers): `count` entries of `entSize` bytes at `offset`. */
  private readTable<T>(offset: number, entSize: number, count: number, what: string, entry: (table: Buffer, at: number, index: number) => T): T[] {
    const table = this.readChecked(offset, entSize * count, what);
    const out: T[] = [];
    for (let i = 0; i < count; i++) out.push(entry(table, i * entSize, i));
    return out;
  }

  section(name: string): ElfSection | undefined {
    return this.byName.get(name);
  }

  /** Raw bytes of a section as stored in the file (no decompression; empty for SHT_NOBITS). */
  sectionData(section: ElfSection | string): Buffer {
    const s = typeof section === 'string' ? this.section(section) : section;
    if (!s) throw inspectError(this.path, `no section ${String(section)}`);
    if (s.type === SHT_NOBITS) return Buffer.alloc(0);
    return this.readChecked(s.offset, s.size, `section ${s.name}`);
  }

  /**
   * A section read through a small window cache instead of whole: `.gopclntab` of a 100 MB Go
   * binary is ~40 MB, and the lookups touch it in a few nearly sequential streams.
   */
  sectionReader(section: ElfSection): SectionReader {
    if (section.offset + section.size > this.fileSize) throw inspectError(this.path, `truncated file (section ${section.name} past end of file)`);
    return new SectionReader(this, section.type === SHT_NOBITS ? 0 : section.size, section.offset);
  }

  /** The PT_LOAD segment whose file-backed part contains `vaddr`. */
  loadSegmentFor(vaddr: number): ElfSegment | undefined {
    return this.segments.find((p) => p.type === PT_LOAD && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz);
  }

  /** File offset of a virtual address: `vaddr - p_vaddr + p_offset` of the PT_LOAD segment containing it. */
  vaddrToFileOffset(vaddr: number): number | undefined {
    const p = this.loadSegmentFor(vaddr);
    return p ? vaddr - p.vaddr + p.offset : undefined;
  }

  /** Reads `length` bytes at virtual address `vaddr`; throws if it is not backed by the file. */
  readVaddr(vaddr: number, length: number): Buffer {
    const p = this.loadSegmentFor(vaddr);
    if (!p || vaddr + length > p.vaddr + p.filesz) {
      throw inspectError(this.path, `address 0x${vaddr.toString(16)} (+${length}) is not in a loaded segment`);
    }
    return this.readChecked(vaddr - p.vaddr + p.offset, length, `memory at 0x${vaddr.toString(16)}`);
  }

  /** True when the binary still has a static symbol table (`-ldflags=-s` removes it). */
  get hasSymtab(): boolean {
    return this.sections.some((s) => s.type === SHT_SYMTAB);
  }

  /**
   * Looks functions up by exact symbol name in `.symtab` (FUNC symbols). Returns only the names
   * found; undefined when there is no `.symtab`. Names are compared as bytes in place: decoding
   * every name of a 100 MB binary (10^5 symbols) would cost more than the lookup itself.
   */
  findFunctions(names: readonly string[], table: typeof SHT_SYMTAB | typeof SHT_DYNSYM = SHT_SYMTAB): Map<string, ElfFunction> | undefined {
    const symtab = this.sections.find((s) => s.type === table);
    if (!symtab) return undefined;
    const strtab = this.sections[symtab.link];
    if (!strtab || strtab.type !== SHT_STRTAB) throw inspectError(this.path, `${symtab.name} has no string table`);
    let data = this.symbolData.get(table);
    if (!data) {
      data = { syms: this.sectionData(symtab), strs: this.sectionData(strtab) };
      this.symbolData.set(table, data);
    }
    const { syms, strs } = data;
    const byLength = new Map<number, Array<{ name: string; bytes: Buffer }>>();
    const unique = new Set(names);
    for (const name of unique) {
      const bytes = Buffer.from(name, 'utf8');
      byLength.set(bytes.length, [...(byLength.get(bytes.length) ?? []), { name, bytes }]);
    }
    const out = new Map<string, ElfFunction>();
    const entsize = symtab.entsize || 24;
    for (let o = 0; o + 24 <= syms.length && out.size < unique.size; o += entsize) {
      if ((syms[o + 4] & 0xf) !== STT_FUNC) continue;
      const nameOff = syms.readUInt32LE(o);
      const end = strs.indexOf(0, nameOff);
      const candidates = byLength.get(end - nameOff);
      if (!candidates) continue;
      for (const c of candidates) {
        if (out.has(c.name) || strs.compare(c.bytes, 0, c.bytes.length, nameOff, end) !== 0) continue;
        const vaddr = u64(syms, o + 8);
        const fileOffset = this.vaddrToFileOffset(vaddr);
        if (fileOffset !== undefined) out.set(c.name, { name: c.name, vaddr, size: u64(syms, o + 16), fileOffset });
      }
    }
    return out;
  }

  /** The value (offset in the TLS segment) of a thread-local symbol in `.symtab`, or undefined. */
  tlsSymbolValue(name: string): number | undefined {
    const symtab = this.sections.find((s) => s.type === SHT_SYMTAB);
    const strtab = symtab && this.sections[symtab.link];
    if (!symtab || !strtab || strtab.type !== SHT_STRTAB) return undefined;
    let data = this.symbolData.get(SHT_SYMTAB);
    if (!data) {
      data = { syms: this.sectionData(symtab), strs: this.sectionData(strtab) };
      this.symbolData.set(SHT_SYMTAB, data);
    }
    const { syms, strs } = data;
    const want = Buffer.from(name, 'utf8');
    const entsize = symtab.entsize || 24;
    for (let o = 0; o + 24 <= syms.length; o += entsize) {
      if ((syms[o + 4] & 0xf) !== STT_TLS) continue;
      const nameOff = syms.readUInt32LE(o);
      if (strs.indexOf(0, nameOff) - nameOff === want.length && strs.compare(want, 0, want.length, nameOff, nameOff + want.length) === 0) return u64(syms, o + 8);
    }
    return undefined;
  }

  /**
   * One exported function by exact name in `.dynsym` (kept by stripped binaries that export
   * symbols, e.g. nginx for its dynamic modules), or undefined.
   */
  findDynamicFunction(name: string): ElfFunction | undefined {
    return this.findFunctions([name], SHT_DYNSYM)?.get(name);
  }

  /** One function by exact symbol name, or undefined (missing, or no `.symtab`). */
  findFunction(name: string): ElfFunction | undefined {
    return this.findFunctions([name])?.get(name);
  }

  /**
   * For a PIE binary, pointer-sized fields are 0 in the file and filled at load time by
   * R_X86_64_RELATIVE relocations; their addends are the link-time values. This maps each
   * relocated address to its addend (indexed once per file).
   */
  relativeRelocations(): ReadonlyMap<number, number> {
    if (this.relativeRelocs) return this.relativeRelocs;
    const index = new Map<number, number>();
    for (const s of this.sections) {
      if (s.type !== SHT_RELA) continue;
      const data = this.sectionData(s);
      const ent = s.entsize || 24;
      for (let o = 0; o + 24 <= data.length; o += ent) {
        if (data.readUInt32LE(o + 8) === R_X86_64_RELATIVE) index.set(u64(data, o), Number(data.readBigInt64LE(o + 16)));
      }
    }
    this.relativeRelocs = index;
    return index;
  }

  /** The link-time value of a relocated pointer at `vaddr` (PIE), or undefined. */
  relativeRelocationAt(vaddr: number): number | undefined {
    return this.relativeRelocations().get(vaddr);
  }
}

/** Opens `path`, runs `fn`, always closes. */
/** Bytes of one window of a SectionReader, and how many windows it keeps (least recently used goes). */
const WINDOW_BYTES = 256 * 1024;
const MAX_WINDOWS = 8;

/** Little-endian reads at section offsets, served from cached file windows (bounded: 2 MiB). */
export class SectionReader {
  private readonly windows = new Map<number, Buffer>();

  constructor(
    private readonly elf: ElfFile,
    readonly length: number,
    private readonly fileOffset: number,
  ) {}

  /** `n` bytes at section offset `at` (a copy when they straddle two windows). */
  bytes(at: number, n: number): Buffer {
    if (at < 0 || at + n > this.length) throw new RangeError(`offset ${at}+${n} outside the section (${this.length} bytes)`);
    const w = Math.floor(at / WINDOW_BYTES);
    const within = at - w * WINDOW_BYTES;
    if (within + n <= WINDOW_BYTES) return this.window(w).subarray(within, within + n);
    return this.elf.read(this.fileOffset + at, n);
  }

  u32(at: number): number {
    return this.bytes(at, 4).readUInt32LE(0);
  }

  i32(at: number): number {
    return this.bytes(at, 4).readInt32LE(0);
  }

  u64(at: number): number {
    return Number(this.bytes(at, 8).readBigUInt64LE(0));
  }

  /** True when the section holds exactly `b` at `at`. */
  equals(b: Buffer, at: number): boolean {
    if (at + b.length > this.length) return false;
    return this.bytes(at, b.length).equals(b);
  }

  private window(w: number): Buffer {
    let buf = this.windows.get(w);
    if (buf) {
      this.windows.delete(w);
    } else {
      const start = w * WINDOW_BYTES;
      buf = this.elf.read(this.fileOffset + start, Math.min(WINDOW_BYTES, this.length - start));
      if (this.windows.size >= MAX_WINDOWS) this.windows.delete(this.windows.keys().next().value as number);
    }
    this.windows.set(w, buf);
    return buf;
  }
}

export function withElf<T>(path: string, fn: (elf: ElfFile) => T): T {
  const elf = ElfFile.open(path);
  try {
    return fn(elf);
  } finally {
    elf.close();
  }
}
