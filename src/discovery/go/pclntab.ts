/**
 * Function table from `.gopclntab`, for stripped Go binaries.
 *
 * `go build -ldflags="-s -w"` (the norm in containers) removes `.symtab` and DWARF, but the Go
 * runtime itself needs the pc-line table (stack traces, GC), so it is always there. It maps
 * function names to entry addresses; a function ends where the next one in the table starts.
 *
 * Layouts handled (x86-64 only, so little-endian and 8-byte pointers):
 * - magic 0xfffffffa (Go 1.16, 1.17): functab entries are {entry uintptr, funcoff uintptr}.
 * - magic 0xfffffff0 (Go 1.18, 1.19) and 0xfffffff1 (Go 1.20+): functab entries are
 *   {entryoff uint32, funcoff uint32}, entry offsets relative to `runtime.text`.
 *
 * Finding `runtime.text` (the base of entry offsets) in a stripped binary: the pcHeader field that
 * held it is 0 in PIE files (filled by a relocation) and no longer written at all since Go 1.26.
 * The authoritative copy is `runtime.firstmoduledata.text`; moduledata is found as the data word
 * that points at the pcHeader, followed by the funcnametab slice. `.text`'s address (what
 * `go tool objdump` uses) is the last resort; it is wrong for externally linked binaries.
 */
import { SpanbridgeError } from '../../errors';
import { ElfFile, ElfFunction, SHT_NOBITS } from './elf';

const MAGIC_116 = 0xfffffffa;
const MAGIC_118 = 0xfffffff0;
const MAGIC_120 = 0xfffffff1;

/** Offset of `text` in runtime.moduledata (pcHeader ptr + 6 slices + findfunctab + minpc + maxpc); same in Go 1.16 .. 1.26. */
const MODULEDATA_TEXT_OFFSET = 8 + 6 * 24 + 8 + 8 + 8;

export interface PclnFunctionTable {
  /** pcln layout: '1.16' (Go 1.16-1.17), '1.18' (Go 1.18-1.19) or '1.20' (Go 1.20+). */
  readonly layout: '1.16' | '1.18' | '1.20';
  readonly textStart: number;
  readonly nfunc: number;
  /** Functions by name (entry vaddr, size up to the next function, file offset). */
  lookup(names: readonly string[]): Map<string, ElfFunction>;
}

function fail(elf: ElfFile, what: string): SpanbridgeError {
  return new SpanbridgeError('ERR_INSPECT', `inspect ${elf.path}: .gopclntab: ${what}`);
}

/** Reads a pointer stored at `vaddr`, applying an R_X86_64_RELATIVE relocation when the file holds 0 (PIE). */
function readPointer(elf: ElfFile, vaddr: number): number {
  const v = Number(elf.readVaddr(vaddr, 8).readBigUInt64LE(0));
  return v !== 0 ? v : elf.relativeRelocationAt(vaddr) ?? 0;
}

/** `runtime.firstmoduledata.text`, located through the moduledata's pointer to the pcHeader. */
function textFromModuledata(elf: ElfFile, pclnVaddr: number, funcnameVaddr: number): number | undefined {
  const want = BigInt(pclnVaddr);
  const wantNames = BigInt(funcnameVaddr);
  // Non-PIE: the pointers are in the file. `.go.module` exists since Go 1.26; before, moduledata is in .noptrdata/.data.
  for (const name of ['.go.module', '.noptrdata', '.data', '.data.rel.ro']) {
    const s = elf.section(name);
    if (!s || s.type === SHT_NOBITS || s.addr === 0) continue;
    const data = elf.sectionData(s);
    for (let o = 0; o + MODULEDATA_TEXT_OFFSET + 8 <= data.length; o += 8) {
      if (data.readBigUInt64LE(o) !== want || data.readBigUInt64LE(o + 8) !== wantNames) continue;
      const text = Number(data.readBigUInt64LE(o + MODULEDATA_TEXT_OFFSET));
      if (text !== 0) return text;
    }
  }
  // PIE: the pointers are 0 in the file; the RELATIVE relocations carry them.
  for (const [md, addend] of elf.relativeRelocations()) {
    if (addend !== pclnVaddr) continue;
    try {
      if (readPointer(elf, md + 8) !== funcnameVaddr) continue;
      const text = readPointer(elf, md + MODULEDATA_TEXT_OFFSET);
      if (text !== 0) return text;
    } catch {
      // not backed by the file: not the moduledata
    }
  }
  return undefined;
}

/** Parses the `.gopclntab` header; throws ERR_INSPECT when the section is missing or of an unknown layout. */
export function readPclnTable(elf: ElfFile): PclnFunctionTable {
  const sec = elf.section('.gopclntab') ?? elf.section('.data.rel.ro.gopclntab');
  if (!sec) throw fail(elf, 'section not found');
  // Read through a window cache, not whole: ~40 MB in a 100 MB binary, of which a lookup touches
  // the function table, the _func name fields and the names, each nearly in order.
  const tab = elf.sectionReader(sec);
  if (tab.length < 72) throw fail(elf, 'truncated header');
  const head = tab.bytes(0, 8);
  const magic = head.readUInt32LE(0);
  const ptrSize = head[7];
  if (head[4] !== 0 || head[5] !== 0 || ptrSize !== 8) throw fail(elf, 'bad header');
  const word = (i: number): number => tab.u64(8 + 8 * i);

  let layout: PclnFunctionTable['layout'];
  let nfunc: number;
  let funcnameOffset: number;
  let pclnOffset: number;
  let headerText = 0;
  if (magic === MAGIC_118 || magic === MAGIC_120) {
    layout = magic === MAGIC_118 ? '1.18' : '1.20';
    nfunc = word(0);
    headerText = word(2);
    funcnameOffset = word(3);
    pclnOffset = word(7);
  } else if (magic === MAGIC_116) {
    layout = '1.16';
    nfunc = word(0);
    funcnameOffset = word(2);
    pclnOffset = word(6);
  } else {
    throw fail(elf, `unsupported magic 0x${magic.toString(16)} (Go 1.16+ layouts are supported)`);
  }
  const entSize = layout === '1.16' ? 16 : 8;
  if (pclnOffset + (nfunc + 1) * entSize > tab.length || funcnameOffset >= tab.length) throw fail(elf, 'offsets out of range');

  let textStart = 0;
  if (layout !== '1.16') {
    if (headerText === 0 && sec.addr !== 0) headerText = elf.relativeRelocationAt(sec.addr + 24) ?? 0;
    textStart =
      headerText ||
      (sec.addr !== 0 ? textFromModuledata(elf, sec.addr, sec.addr + funcnameOffset) : undefined) ||
      (elf.section('.text')?.addr ?? 0);
  }

  const funcnamesLength = tab.length - funcnameOffset;
  const functab = pclnOffset;
  const entryAt = (i: number): number =>
    layout === '1.16' ? tab.u64(functab + 16 * i) : textStart + tab.u32(functab + 8 * i);
  const funcOffAt = (i: number): number => (layout === '1.16' ? tab.u64(functab + 16 * i + 8) : tab.u32(functab + 8 * i + 4));
  // In _func, nameOff (int32) follows entryOff (uint32) or, in 1.16, entry (uintptr).
  const nameOffField = layout === '1.16' ? 8 : 4;

  return {
    layout,
    textStart,
    nfunc,
    lookup(names: readonly string[]): Map<string, ElfFunction> {
      const wanted = new Map<string, Buffer>();
      for (const n of names) wanted.set(n, Buffer.from(n + '\0', 'utf8'));
      let maxLen = 0;
      for (const b of wanted.values()) maxLen = Math.max(maxLen, b.length);
      const out = new Map<string, ElfFunction>();
      for (let i = 0; i < nfunc && out.size < wanted.size; i++) {
        const fo = functab + funcOffAt(i);
        if (fo + nameOffField + 4 > tab.length) continue;
        const nameOff = tab.i32(fo + nameOffField);
        if (nameOff < 0 || nameOff >= funcnamesLength) continue;
        // Compare bytes in place: decoding every one of ~10^4-10^5 names would dominate the cost.
        const at = funcnameOffset + nameOff;
        const name = tab.bytes(at, Math.min(maxLen, tab.length - at));
        for (const [n, b] of wanted) {
          if (b.length > name.length || name[0] !== b[0] || out.has(n)) continue;
          if (name.compare(b, 0, b.length, 0, b.length) !== 0) continue;
          const vaddr = entryAt(i);
          const end = entryAt(i + 1);
          const fileOffset = elf.vaddrToFileOffset(vaddr);
          if (fileOffset === undefined || end <= vaddr) continue;
          out.set(n, { name: n, vaddr, size: end - vaddr, fileOffset });
        }
      }
      return out;
    },
  };
}
