/**
 * Go build info (`.go.buildinfo`): the toolchain version and the module list the binary was built
 * from (what `go version -m` prints). The Go version picks struct offsets for stripped binaries;
 * module versions will pick library-specific probes later.
 *
 * Blob layout (cmd/link, debug/buildinfo): 14-byte magic "\xff Go buildinf:", ptrSize (1 byte),
 * flags (1 byte), then
 * - flags & 2 (Go 1.18+): at offset 32, two varint-length-prefixed strings: version, modinfo;
 * - else (Go <= 1.17): two pointers at offset 16 to Go string headers {ptr, len} in the data.
 * modinfo is framed by 16-byte sentinels which are stripped.
 */
import { SpanbridgeError } from '../../errors';
import { ElfFile, PT_LOAD, SHT_NOBITS } from './elf';

export { compareGoVersions, goMinor, goVersionAtLeast, parseGoVersion } from './goversion';
export type { GoVersion } from './goversion';

const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const HEADER_SIZE = 32;
const PF_X = 1;
const PF_W = 2;

export interface GoModule {
  readonly path: string;
  readonly version: string;
  readonly sum?: string;
  /** Set when a `replace` directive applies (`=>` line). */
  readonly replace?: GoModule;
}

export interface GoModuleInfo {
  /** The main package's import path ("path" line), e.g. "example.com/app/cmd/server". */
  readonly path?: string;
  /** The main module ("mod" line); version is "(devel)" for local builds. */
  readonly main?: GoModule;
  readonly deps: readonly GoModule[];
  /** Build settings ("build" lines) in order: -ldflags, CGO_ENABLED, GOARCH, vcs.revision, ... */
  readonly settings: ReadonlyArray<{ readonly key: string; readonly value: string }>;
}

export interface GoBuildInfo {
  /** Toolchain version, e.g. "go1.26.8". */
  readonly goVersion: string;
  readonly modules: GoModuleInfo;
}

function fail(elf: ElfFile, what: string): SpanbridgeError {
  return new SpanbridgeError('ERR_INSPECT', `inspect ${elf.path}: ${what}`);
}

/** Where the blob is searched: the `.go.buildinfo` section, else the start of the first writable, non-executable PT_LOAD (as debug/buildinfo does). */
function dataStart(elf: ElfFile): { vaddr: number; size: number } | undefined {
  const s = elf.section('.go.buildinfo');
  if (s && s.type !== SHT_NOBITS) return { vaddr: s.addr, size: s.size };
  const p = elf.segments.find((seg) => seg.type === PT_LOAD && (seg.flags & (PF_X | PF_W)) === PF_W);
  return p ? { vaddr: p.vaddr, size: p.filesz } : undefined;
}

/** Reads an unsigned LEB128 varint (Go's binary.Uvarint); returns [value, bytes used]. */
function uvarint(buf: Buffer, off: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 10 && off + i < buf.length; i++) {
    const b = buf[off + i];
    v += (b & 0x7f) * mul;
    if (b < 0x80) return [v, i + 1];
    mul *= 128;
  }
  return [-1, 0];
}

/** Reads a pointer (applies a RELATIVE relocation when the file holds 0, as in PIE). */
function readPointer(elf: ElfFile, vaddr: number, bigEndian: boolean): number {
  const b = elf.readVaddr(vaddr, 8);
  const v = Number(bigEndian ? b.readBigUInt64BE(0) : b.readBigUInt64LE(0));
  return v !== 0 ? v : elf.relativeRelocationAt(vaddr) ?? 0;
}

/** Reads a Go string header {ptr, len} at `vaddr` and the bytes it points at. */
function readGoString(elf: ElfFile, vaddr: number, bigEndian: boolean): string {
  if (vaddr === 0) return '';
  const ptr = readPointer(elf, vaddr, bigEndian);
  const len = readPointer(elf, vaddr + 8, bigEndian);
  if (ptr === 0 || len === 0 || len > 1 << 24) return '';
  return elf.readVaddr(ptr, len).toString('utf8');
}

/**
 * Reads the raw build info strings. Returns undefined when the binary has none (not a Go binary).
 */
export function readRawBuildInfo(elf: ElfFile): { version: string; modinfo: string } | undefined {
  const where = dataStart(elf);
  if (!where || where.size === 0) return undefined;
  const fileOff = elf.vaddrToFileOffset(where.vaddr);
  if (fileOff === undefined) return undefined;
  // The linker puts the blob at the start; debug/buildinfo scans the area 16-byte aligned.
  const searchLen = Math.min(where.size, 1 << 20);
  const area = elf.read(fileOff, searchLen);
  let at = -1;
  for (let i = area.indexOf(MAGIC); i >= 0; i = area.indexOf(MAGIC, i + 1)) {
    if (i % 16 === 0) {
      at = i;
      break;
    }
  }
  if (at < 0 || at + HEADER_SIZE > area.length) return undefined;
  const ptrSize = area[at + 14];
  const flags = area[at + 15];
  let version: string;
  let modinfo: string;
  if ((flags & 2) !== 0) {
    // Inline strings; re-read from the file in case they extend beyond the searched area.
    const blob = elf.read(fileOff + at + HEADER_SIZE, Math.max(0, where.size - at - HEADER_SIZE));
    const [vlen, n1] = uvarint(blob, 0);
    if (vlen < 0 || n1 + vlen > blob.length) throw fail(elf, 'corrupt build info (version string)');
    version = blob.toString('utf8', n1, n1 + vlen);
    const [mlen, n2] = uvarint(blob, n1 + vlen);
    if (mlen < 0 || n1 + vlen + n2 + mlen > blob.length) throw fail(elf, 'corrupt build info (module string)');
    modinfo = blob.toString('utf8', n1 + vlen + n2, n1 + vlen + n2 + mlen);
  } else {
    if (ptrSize !== 8) throw fail(elf, `unsupported build info pointer size ${ptrSize}`);
    const bigEndian = (flags & 1) !== 0;
    const blobVaddr = where.vaddr + at;
    version = readGoString(elf, readPointer(elf, blobVaddr + 16, bigEndian), bigEndian);
    modinfo = readGoString(elf, readPointer(elf, blobVaddr + 24, bigEndian), bigEndian);
  }
  if (version === '') return undefined;
  // Strip the 16-byte sentinels (cmd/go/internal/modload infoStart/infoEnd).
  if (modinfo.length >= 33 && modinfo[modinfo.length - 17] === '\n') modinfo = modinfo.slice(16, modinfo.length - 16);
  return { version, modinfo };
}

/** Go's strconv.Unquote for the double-quoted strings build settings use. */
export function unquoteGo(s: string): string {
  if (s.length < 2 || s[0] !== '"' || s[s.length - 1] !== '"') return s;
  const body = s.slice(1, -1);
  const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'" };
  const bytes: number[] = [];
  const pushStr = (str: string): void => {
    for (const b of Buffer.from(str, 'utf8')) bytes.push(b);
  };
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== '\\') {
      // Keep astral characters (surrogate pairs) together.
      const cp = body.codePointAt(i) as number;
      pushStr(String.fromCodePoint(cp));
      if (cp > 0xffff) i++;
      continue;
    }
    const e = body[++i];
    if (e in simple) pushStr(simple[e]);
    else if (e === 'x') {
      bytes.push(parseInt(body.substr(i + 1, 2), 16));
      i += 2;
    } else if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      pushStr(String.fromCodePoint(parseInt(body.substr(i + 1, n), 16)));
      i += n;
    } else if (e >= '0' && e <= '7') {
      bytes.push(parseInt(body.substr(i, 3), 8));
      i += 2;
    } else pushStr(e ?? '');
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Parses modinfo text (runtime/debug.ParseBuildInfo's format, minus the "go" line). Unknown lines are ignored. */
export function parseModInfo(text: string): GoModuleInfo {
  let path: string | undefined;
  let main: GoModule | undefined;
  const deps: GoModule[] = [];
  const settings: Array<{ key: string; value: string }> = [];
  let last: 'main' | 'dep' | undefined;
  const mod = (f: string[]): GoModule => ({ path: f[1] ?? '', version: f[2] ?? '', ...(f[3] ? { sum: f[3] } : {}) });
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    switch (f[0]) {
      case 'path':
        path = f[1];
        last = undefined;
        break;
      case 'mod':
        main = mod(f);
        last = 'main';
        break;
      case 'dep':
        deps.push(mod(f));
        last = 'dep';
        break;
      case '=>': {
        const r = mod(f);
        if (last === 'main' && main) main = { ...main, replace: r };
        else if (last === 'dep' && deps.length > 0) deps[deps.length - 1] = { ...deps[deps.length - 1], replace: r };
        last = undefined;
        break;
      }
      case 'build': {
        const kv = f.slice(1).join('\t');
        // key and value are quoted (strconv.Quote) when they contain spaces, quotes, '=' or control characters.
        let key: string;
        let rest: string;
        if (kv.startsWith('"')) {
          const end = findQuoteEnd(kv);
          key = unquoteGo(kv.slice(0, end + 1));
          rest = kv.slice(end + 2);
        } else {
          const eq = kv.indexOf('=');
          key = eq < 0 ? kv : kv.slice(0, eq);
          rest = eq < 0 ? '' : kv.slice(eq + 1);
        }
        settings.push({ key, value: rest.startsWith('"') ? unquoteGo(rest) : rest });
        break;
      }
      default:
        break;
    }
  }
  return { ...(path !== undefined ? { path } : {}), ...(main ? { main } : {}), deps, settings };
}

function findQuoteEnd(s: string): number {
  for (let i = 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '"') return i;
  }
  return s.length - 1;
}

/** Build info of an open ELF file, or undefined if it has none (not a Go binary). */
export function readBuildInfo(elf: ElfFile): GoBuildInfo | undefined {
  const raw = readRawBuildInfo(elf);
  if (!raw) return undefined;
  return { goVersion: raw.version, modules: parseModInfo(raw.modinfo) };
}
