/**
 * Just enough DWARF to read struct member offsets (DW_TAG_structure_type -> DW_TAG_member ->
 * DW_AT_data_member_location) from a Go binary, so the agent reads request fields at the right
 * offsets for exactly the toolchain that built the target.
 *
 * - Sections: .debug_info, .debug_abbrev and, for indirect strings, .debug_str, .debug_line_str,
 *   .debug_str_offsets. Go compresses them: SHF_COMPRESSED with an Elf64_Chdr (zlib), or the
 *   older `.zdebug_*` ("ZLIB" + 8-byte big-endian size), read by dwarf-sections.ts.
 * - DWARF 2-5 unit headers (Go <= 1.24 emits 4; Go 1.25+ emits 5), 32- and 64-bit DWARF.
 * - Every attribute form can be skipped by size, so unknown attributes never derail the walk.
 * - The walk decodes only structure types and their members and stops as soon as every wanted
 *   struct has been seen. In a Go binary it walks the units of package runtime only: Go's
 *   linker puts every type into one of them, so the rest (functions, variables) is skipped by
 *   its unit headers; other DWARF is walked unit after unit.
 *
 * Go names struct types by their full package path: "net/http.Request", "runtime.g".
 */
import { debugSection, dwarfError as fail } from './dwarf-sections';
import { ElfFile } from './elf';

export { debugSection, hasDwarf } from './dwarf-sections';

const DW_TAG_member = 0x0d;
const DW_TAG_structure_type = 0x13;
const DW_AT_name = 0x03;
const DW_AT_producer = 0x25;
const DW_AT_byte_size = 0x0b;
const DW_AT_data_member_location = 0x38;
const DW_AT_declaration = 0x3c;
const DW_AT_str_offsets_base = 0x72;

// Attribute forms (DWARF 5, section 7.5.6) and the GNU extensions still seen in the wild.
const F = {
  addr: 0x01, block2: 0x03, block4: 0x04, data2: 0x05, data4: 0x06, data8: 0x07, string: 0x08,
  block: 0x09, block1: 0x0a, data1: 0x0b, flag: 0x0c, sdata: 0x0d, strp: 0x0e, udata: 0x0f,
  ref_addr: 0x10, ref1: 0x11, ref2: 0x12, ref4: 0x13, ref8: 0x14, ref_udata: 0x15, indirect: 0x16,
  sec_offset: 0x17, exprloc: 0x18, flag_present: 0x19, strx: 0x1a, addrx: 0x1b, ref_sup4: 0x1c,
  strp_sup: 0x1d, data16: 0x1e, line_strp: 0x1f, ref_sig8: 0x20, implicit_const: 0x21,
  loclistx: 0x22, rnglistx: 0x23, ref_sup8: 0x24, strx1: 0x25, strx2: 0x26, strx3: 0x27,
  strx4: 0x28, addrx1: 0x29, addrx2: 0x2a, addrx3: 0x2b, addrx4: 0x2c,
  GNU_addr_index: 0x1f01, GNU_str_index: 0x1f02, GNU_ref_alt: 0x1f20, GNU_strp_alt: 0x1f21,
} as const;

interface AttrSpec {
  readonly name: number;
  readonly form: number;
  readonly implicit: number;
}

interface Abbrev {
  readonly tag: number;
  readonly children: boolean;
  readonly attrs: readonly AttrSpec[];
}

/** A cursor over a buffer with the LEB128 readers DWARF needs. */
class Reader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
  ) {}

  uleb(): number {
    const b = this.buf;
    let byte = b[this.pos++];
    if (byte < 0x80) return byte;
    let v = byte & 0x7f;
    let mul = 128;
    do {
      byte = b[this.pos++];
      v += (byte & 0x7f) * mul;
      mul *= 128;
    } while (byte >= 0x80 && this.pos < b.length);
    return v;
  }

  sleb(): number {
    const b = this.buf;
    let v = 0;
    let mul = 1;
    let byte: number;
    do {
      byte = b[this.pos++];
      v += (byte & 0x7f) * mul;
      mul *= 128;
    } while (byte >= 0x80 && this.pos < b.length);
    if (byte & 0x40) v -= mul;
    return v;
  }
}

/** Parses the abbreviation table at `offset` of .debug_abbrev, indexed by code. */
function parseAbbrevs(abbrev: Buffer, offset: number): Map<number, Abbrev> {
  const r = new Reader(abbrev, offset);
  const table = new Map<number, Abbrev>();
  while (r.pos < abbrev.length) {
    const code = r.uleb();
    if (code === 0) break;
    const tag = r.uleb();
    const children = abbrev[r.pos++] !== 0;
    const attrs: AttrSpec[] = [];
    for (;;) {
      const name = r.uleb();
      const form = r.uleb();
      if (name === 0 && form === 0) break;
      attrs.push({ name, form, implicit: form === F.implicit_const ? r.sleb() : 0 });
    }
    table.set(code, { tag, children, attrs });
  }
  return table;
}

/** Per-unit facts needed to size and decode attribute values. */
interface Unit {
  readonly version: number;
  readonly offsetSize: number;
  readonly addrSize: number;
  strOffsetsBase: number;
}

/** Lazily loaded string sections. */
interface Strings {
  str?: Buffer;
  lineStr?: Buffer;
  strOffsets?: Buffer;
}

/**
 * Reads an attribute value: a number for constants/offsets/indices, a string for string forms,
 * a Buffer for blocks, undefined for forms the caller never needs decoded. Advances `r`.
 */
function readValue(elf: ElfFile, r: Reader, form: number, implicit: number, u: Unit, strs: Strings): number | string | Buffer | undefined {
  const b = r.buf;
  switch (form) {
    case F.string: {
      const end = b.indexOf(0, r.pos);
      const s = b.toString('utf8', r.pos, end);
      r.pos = end + 1;
      return s;
    }
    case F.strp:
    case F.line_strp: {
      const off = u.offsetSize === 8 ? Number(b.readBigUInt64LE(r.pos)) : b.readUInt32LE(r.pos);
      r.pos += u.offsetSize;
      const sec = form === F.strp ? (strs.str ??= debugSection(elf, 'str')) : (strs.lineStr ??= debugSection(elf, 'line_str'));
      if (!sec) return undefined;
      return sec.toString('utf8', off, sec.indexOf(0, off));
    }
    case F.strx:
    case F.GNU_str_index:
    case F.strx1:
    case F.strx2:
    case F.strx3:
    case F.strx4: {
      const fixed = form === F.strx1 ? 1 : form === F.strx2 ? 2 : form === F.strx3 ? 3 : form === F.strx4 ? 4 : 0;
      let idx: number;
      if (fixed > 0) {
        idx = b.readUIntLE(r.pos, fixed);
        r.pos += fixed;
      } else idx = r.uleb();
      const so = (strs.strOffsets ??= debugSection(elf, 'str_offsets'));
      const str = (strs.str ??= debugSection(elf, 'str'));
      if (!so || !str) return undefined;
      const at = u.strOffsetsBase + idx * u.offsetSize;
      const off = u.offsetSize === 8 ? Number(so.readBigUInt64LE(at)) : so.readUInt32LE(at);
      return str.toString('utf8', off, str.indexOf(0, off));
    }
    case F.data1:
    case F.ref1:
    case F.flag:
    case F.addrx1:
      return b[r.pos++];
    case F.data2:
    case F.ref2:
      r.pos += 2;
      return b.readUInt16LE(r.pos - 2);
    case F.data4:
    case F.ref4:
    case F.ref_sup4:
      r.pos += 4;
      return b.readUInt32LE(r.pos - 4);
    case F.data8:
    case F.ref8:
    case F.ref_sig8:
    case F.ref_sup8:
      r.pos += 8;
      return Number(b.readBigUInt64LE(r.pos - 8));
    case F.udata:
    case F.ref_udata:
    case F.addrx:
    case F.loclistx:
    case F.rnglistx:
    case F.GNU_addr_index:
      return r.uleb();
    case F.sdata:
      return r.sleb();
    case F.implicit_const:
      return implicit;
    case F.flag_present:
      return 1;
    case F.sec_offset:
    case F.strp_sup:
    case F.GNU_ref_alt:
    case F.GNU_strp_alt:
      r.pos += u.offsetSize;
      return u.offsetSize === 8 ? Number(b.readBigUInt64LE(r.pos - 8)) : b.readUInt32LE(r.pos - 4);
    case F.ref_addr: {
      const n = u.version <= 2 ? u.addrSize : u.offsetSize;
      r.pos += n;
      return n === 8 ? Number(b.readBigUInt64LE(r.pos - 8)) : b.readUIntLE(r.pos - n, n);
    }
    case F.addr:
      r.pos += u.addrSize;
      return u.addrSize === 8 ? Number(b.readBigUInt64LE(r.pos - 8)) : b.readUIntLE(r.pos - u.addrSize, u.addrSize);
    case F.addrx2:
      r.pos += 2;
      return b.readUInt16LE(r.pos - 2);
    case F.addrx3:
      r.pos += 3;
      return b.readUIntLE(r.pos - 3, 3);
    case F.addrx4:
      r.pos += 4;
      return b.readUInt32LE(r.pos - 4);
    case F.data16:
      r.pos += 16;
      return undefined;
    case F.block1:
    case F.block2:
    case F.block4:
    case F.block:
    case F.exprloc: {
      let len: number;
      if (form === F.block1 || form === F.block2 || form === F.block4) {
        const n = form === F.block1 ? 1 : form === F.block2 ? 2 : 4;
        len = b.readUIntLE(r.pos, n);
        r.pos += n;
      } else len = r.uleb();
      r.pos += len;
      return b.subarray(r.pos - len, r.pos);
    }
    case F.indirect: {
      const real = r.uleb();
      return readValue(elf, r, real, implicit, u, strs);
    }
    default:
      throw fail(elf, `unknown attribute form 0x${form.toString(16)} at .debug_info+0x${r.pos.toString(16)}`);
  }
}

/** Skips an attribute value without decoding it (the hot path: most attributes of most DIEs). */
function skipValue(elf: ElfFile, r: Reader, form: number, u: Unit, strs: Strings): void {
  switch (form) {
    case F.string:
      r.pos = r.buf.indexOf(0, r.pos) + 1;
      return;
    case F.udata:
    case F.sdata:
    case F.ref_udata:
    case F.strx:
    case F.addrx:
    case F.loclistx:
    case F.rnglistx:
    case F.GNU_addr_index:
    case F.GNU_str_index:
      while (r.buf[r.pos++] >= 0x80);
      return;
    case F.flag_present:
    case F.implicit_const:
      return;
    case F.data1:
    case F.ref1:
    case F.flag:
    case F.strx1:
    case F.addrx1:
      r.pos += 1;
      return;
    case F.data4:
    case F.ref4:
    case F.ref_sup4:
    case F.strx4:
    case F.addrx4:
      r.pos += 4;
      return;
    case F.sec_offset:
    case F.strp:
    case F.line_strp:
    case F.strp_sup:
    case F.GNU_ref_alt:
    case F.GNU_strp_alt:
      r.pos += u.offsetSize;
      return;
    case F.addr:
      r.pos += u.addrSize;
      return;
    case F.data8:
    case F.ref8:
    case F.ref_sig8:
    case F.ref_sup8:
      r.pos += 8;
      return;
    case F.exprloc:
    case F.block: {
      const len = r.uleb();
      r.pos += len;
      return;
    }
    case F.block1:
      r.pos += 1 + r.buf[r.pos];
      return;
    default:
      readValue(elf, r, form, 0, u, strs);
  }
}

/** Decodes a DW_AT_data_member_location value: a constant, or (DWARF 2 style) DW_OP_plus_uconst/DW_OP_constu N. */
function memberLocation(v: number | string | Buffer | undefined): number | undefined {
  if (typeof v === 'number') return v;
  if (Buffer.isBuffer(v) && v.length >= 2 && (v[0] === 0x23 || v[0] === 0x10)) {
    const r = new Reader(v, 1);
    return r.uleb();
  }
  return undefined;
}

/** Struct name -> field name -> byte offset, for the wanted structs and fields that exist. */
export type StructFieldOffsets = Map<string, Map<string, number>>;

/** What one scan saw besides the offsets (reported by tests and the generator). */
export interface DwarfScanStats {
  /** DWARF versions of the units walked, e.g. [5]. */
  readonly versions: number[];
  readonly unitsScanned: number;
  readonly debugInfoBytes: number;
  /** Size of wanted struct types (DW_AT_byte_size), by name. */
  readonly structSizes: Map<string, number>;
}

/**
 * Member offsets of the wanted structs, e.g. `{ 'net/http.Request': ['Method', 'URL'] }`.
 * Structs or fields absent from the binary are absent from the result; a binary without DWARF
 * yields an empty map (check `hasDwarf` to tell the two apart). Pass `stats` to receive what the
 * scan saw (DWARF versions, bytes, struct sizes) in `stats.out`.
 */
export function structFieldOffsets(
  file: ElfFile | string,
  wanted: Readonly<Record<string, readonly string[]>>,
  stats?: { out?: DwarfScanStats },
  options: { readonly everyUnit?: boolean } = {},
): StructFieldOffsets {
  const elf = typeof file === 'string' ? ElfFile.open(file) : file;
  try {
    return scan(elf, wanted, stats, options.everyUnit ?? false);
  } finally {
    if (typeof file === 'string') elf.close();
  }
}

/** A unit's header, decoded: where its DIEs start and how to size their attribute values. */
interface UnitHeader {
  readonly start: number;
  readonly end: number;
  /** Offset of the unit's first DIE (the unit DIE). */
  readonly dies: number;
  readonly abbrevOff: number;
  readonly u: Unit;
}

function readUnitHeader(elf: ElfFile, info: Buffer, unitStart: number): UnitHeader {
  let length = info.readUInt32LE(unitStart);
  let offsetSize = 4;
  let hdr = unitStart + 4;
  if (length === 0xffffffff) {
    length = Number(info.readBigUInt64LE(hdr));
    offsetSize = 8;
    hdr += 8;
  } else if (length >= 0xfffffff0) {
    throw fail(elf, `reserved unit length 0x${length.toString(16)} at .debug_info+0x${unitStart.toString(16)}`);
  }
  const end = hdr + length;
  if (end > info.length) throw fail(elf, `unit at 0x${unitStart.toString(16)} runs past the section end`);
  const version = info.readUInt16LE(hdr);
  let p = hdr + 2;
  let abbrevOff: number;
  let addrSize: number;
  const readOff = (at: number): number => (offsetSize === 8 ? Number(info.readBigUInt64LE(at)) : info.readUInt32LE(at));
  if (version >= 2 && version <= 4) {
    abbrevOff = readOff(p);
    p += offsetSize;
    addrSize = info[p++];
  } else if (version === 5) {
    const unitType = info[p++];
    addrSize = info[p++];
    abbrevOff = readOff(p);
    p += offsetSize;
    if (unitType === 4 || unitType === 5) p += 8; // skeleton / split_compile: dwo_id
    else if (unitType === 2 || unitType === 6) p += 8 + offsetSize; // type / split_type: signature, type_offset
  } else {
    throw fail(elf, `unsupported DWARF version ${version} at .debug_info+0x${unitStart.toString(16)}`);
  }
  return { start: unitStart, end, dies: p, abbrevOff, u: { version, offsetSize, addrSize, strOffsetsBase: 8 } };
}

/** Every unit's header in section order, read as the iteration reaches it. */
function* unitsOf(elf: ElfFile, info: Buffer): Generator<UnitHeader> {
  for (let at = 0; at + 11 <= info.length; ) {
    const h = readUnitHeader(elf, info, at);
    yield h;
    at = h.end;
  }
}

/**
 * The units that hold a Go binary's type DIEs: Go's linker writes every type of the program into
 * one compilation unit of package runtime (cmd/link/internal/ld/dwarf.go: `movetomodule(ctxt,
 * &dwtypes)` into `ctxt.runtimeCU`, Go 1.10 to 1.26), which is the first or the second of the
 * two "runtime" units depending on the binary. Their indexes in `units`, or none when the DWARF
 * is not Go's (no unit named "runtime" produced by "Go cmd/compile").
 */
function goRuntimeUnits(elf: ElfFile, info: Buffer, units: readonly UnitHeader[], abbrevsAt: (off: number) => Map<number, Abbrev>, strs: Strings): number[] {
  const found: number[] = [];
  units.forEach((h, i) => {
    const r = new Reader(info, h.dies);
    const ab = abbrevsAt(h.abbrevOff).get(r.uleb());
    if (!ab) return;
    let name: unknown;
    let producer: unknown;
    for (const a of ab.attrs) {
      const v = readValue(elf, r, a.form, a.implicit, h.u, strs);
      if (a.name === DW_AT_name) name = v;
      else if (a.name === DW_AT_producer) producer = v;
    }
    if (name === 'runtime' && typeof producer === 'string' && producer.startsWith('Go cmd/compile')) found.push(i);
  });
  return found;
}

function scan(elf: ElfFile, wanted: Readonly<Record<string, readonly string[]>>, stats?: { out?: DwarfScanStats }, everyUnit = false): StructFieldOffsets {
  const result: StructFieldOffsets = new Map();
  const versions = new Set<number>();
  const structSizes = new Map<string, number>();
  let unitsScanned = 0;
  const info = debugSection(elf, 'info');
  const abbrevSec = info ? debugSection(elf, 'abbrev') : undefined;
  const report = (): StructFieldOffsets => {
    if (stats) stats.out = { versions: [...versions], unitsScanned, debugInfoBytes: info?.length ?? 0, structSizes };
    return result;
  };
  if (!info) return report();
  if (!abbrevSec) throw fail(elf, '.debug_info without .debug_abbrev');
  const wantedNames = new Map<string, Set<string>>(Object.entries(wanted).map(([k, v]) => [k, new Set(v)]));
  const remaining = new Set(wantedNames.keys());
  const abbrevCache = new Map<number, Map<number, Abbrev>>();
  const abbrevsAt = (off: number): Map<number, Abbrev> => {
    let abbrevs = abbrevCache.get(off);
    if (!abbrevs) {
      abbrevs = parseAbbrevs(abbrevSec, off);
      abbrevCache.set(off, abbrevs);
    }
    return abbrevs;
  };
  const strs: Strings = {};

  // A Go binary's types are all in a unit of package runtime (goRuntimeUnits): the others hold
  // functions and variables, ~60-80% of .debug_info, walked for nothing (a cold walk of all of it
  // took ~0.3 s of CPU at the agent's start on a 10 MB binary with 2.2 MB of .debug_info, its
  // two runtime units 0.84 MB). If they hold none of the wanted structs (not laid out as Go's
  // linker does), or the unit headers do not read, every unit is walked, in order.
  const walkUnits = (units: Iterable<UnitHeader>): void => {
    for (const h of units) {
      if (remaining.size === 0) return;
      walkUnit(h);
    }
  };
  const walkUnit = (h: UnitHeader): void => {
    const { u, end: unitEnd } = h;
    versions.add(u.version);
    unitsScanned++;
    const abbrevs = abbrevsAt(h.abbrevOff);
    const r = new Reader(info, h.dies);
    let depth = 0;
    let first = true;
    // The wanted struct being read, if any, and the depth of its members.
    let current: { name: string; fields: Set<string>; out: Map<string, number>; memberDepth: number } | undefined;

    while (r.pos < unitEnd) {
      const code = r.uleb();
      if (code === 0) {
        depth--;
        if (current && depth < current.memberDepth) {
          result.set(current.name, current.out);
          remaining.delete(current.name);
          current = undefined;
          if (remaining.size === 0) break;
        }
        continue;
      }
      const ab = abbrevs.get(code);
      if (!ab) throw fail(elf, `unknown abbreviation ${code} at .debug_info+0x${(r.pos - 1).toString(16)}`);
      const dieDepth = depth;
      if (first) {
        // The unit DIE: only str_offsets_base matters (for strx forms).
        first = false;
        for (const a of ab.attrs) {
          const v = readValue(elf, r, a.form, a.implicit, u, strs);
          if (a.name === DW_AT_str_offsets_base && typeof v === 'number') u.strOffsetsBase = v;
        }
      } else if (ab.tag === DW_TAG_structure_type && !current) {
        let name: string | undefined;
        let size: number | undefined;
        let declaration = false;
        for (const a of ab.attrs) {
          if (a.name === DW_AT_name) {
            const v = readValue(elf, r, a.form, a.implicit, u, strs);
            if (typeof v === 'string') name = v;
          } else if (a.name === DW_AT_byte_size) {
            const v = readValue(elf, r, a.form, a.implicit, u, strs);
            if (typeof v === 'number') size = v;
          } else if (a.name === DW_AT_declaration) {
            declaration = readValue(elf, r, a.form, a.implicit, u, strs) !== 0;
          } else skipValue(elf, r, a.form, u, strs);
        }
        if (name !== undefined && !declaration && remaining.has(name)) {
          if (size !== undefined) structSizes.set(name, size);
          const fields = wantedNames.get(name) as Set<string>;
          if (ab.children) current = { name, fields, out: new Map(), memberDepth: dieDepth + 1 };
          else {
            result.set(name, new Map());
            remaining.delete(name);
            if (remaining.size === 0) break;
          }
        }
      } else if (ab.tag === DW_TAG_member && current && dieDepth === current.memberDepth) {
        let name: string | undefined;
        let loc: number | undefined;
        for (const a of ab.attrs) {
          if (a.name === DW_AT_name) {
            const v = readValue(elf, r, a.form, a.implicit, u, strs);
            if (typeof v === 'string') name = v;
          } else if (a.name === DW_AT_data_member_location) {
            loc = memberLocation(readValue(elf, r, a.form, a.implicit, u, strs));
          } else skipValue(elf, r, a.form, u, strs);
        }
        if (name !== undefined && loc !== undefined && current.fields.has(name)) current.out.set(name, loc);
      } else {
        for (const a of ab.attrs) skipValue(elf, r, a.form, u, strs);
      }
      if (ab.children) depth++;
    }
    if (current) {
      result.set(current.name, current.out);
      remaining.delete(current.name);
    }
  };
  let runtimeUnits: UnitHeader[] = [];
  if (!everyUnit) {
    try {
      const units = [...unitsOf(elf, info)];
      runtimeUnits = goRuntimeUnits(elf, info, units, abbrevsAt, strs).map((i) => units[i]);
    } catch {
      // met again, in order, by the walk of every unit
    }
  }
  walkUnits(runtimeUnits);
  if (runtimeUnits.length === 0 || result.size === 0) {
    const walked = new Set(runtimeUnits.map((h) => h.start));
    walkUnits((function* () {
      for (const h of unitsOf(elf, info)) if (!walked.has(h.start)) yield h;
    })());
  }
  return report();
}

/** DWARF versions of the compilation units in a binary (first few units), e.g. [5] for Go 1.26. */
export function dwarfVersions(elf: ElfFile, maxUnits = 8): number[] {
  const info = debugSection(elf, 'info');
  if (!info) return [];
  const out = new Set<number>();
  let at = 0;
  for (let i = 0; i < maxUnits && at + 6 <= info.length; i++) {
    let len = info.readUInt32LE(at);
    let hdr = at + 4;
    if (len === 0xffffffff) {
      len = Number(info.readBigUInt64LE(hdr));
      hdr += 8;
    }
    out.add(info.readUInt16LE(hdr));
    at = hdr + len;
  }
  return [...out];
}
