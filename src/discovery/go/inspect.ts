/**
 * Everything the agent needs to know about a Go executable before attaching uprobes to it:
 * Go version and modules (build info), where the probed functions are (file offsets of entry and
 * of every RET), and the struct field offsets the probes read and write.
 *
 * Functions come from `.symtab`, or from `.gopclntab` when the binary is stripped. Requested
 * functions that are not in the binary are listed in `missingFunctions` (not linked in, renamed
 * in this Go version), never thrown: the caller decides which probes it can do without.
 *
 * Results are cached by file identity (see binaryCacheKey): one binary run by many processes is
 * inspected once; later calls only decode functions not asked for before.
 */
import { NotSupportedError, SpanbridgeError } from '../../errors';
import { GoModuleInfo, readBuildInfo } from './buildinfo';
import { binaryCacheKey } from './cache-key';
import { hasDwarf } from './dwarf';
import { ElfFile, ElfFunction, withElf } from './elf';
import { compareGoVersions, parseGoVersion } from './goversion';
import { GoOffsetsSource, ResolvedGoOffsets, resolveGoOffsets } from './offsets';
import { readPclnTable } from './pclntab';
import { findRetOffsets } from './rets';
import { goTlsOffset, type GoTlsResolution } from './tls';

export { binaryCacheKey } from './cache-key';

/** Oldest Go with the register-based calling convention our probes read arguments from. */
export const MIN_GO_VERSION = 'go1.17';

export interface GoFunctionInfo {
  /** File offset of the first instruction (uprobe offset). */
  readonly entryOffset: number;
  readonly vaddr: number;
  /** Bytes; from `.symtab`, or up to the next function (including padding) from `.gopclntab`. */
  readonly size: number;
  /** File offsets of every RET instruction (uprobe offsets standing in for a uretprobe). */
  readonly retOffsets: readonly number[];
}

export interface GoBinaryInfo {
  readonly path: string;
  /** e.g. "go1.26.8". */
  readonly goVersion: string;
  readonly modules: GoModuleInfo;
  /** No `.symtab` (built with -ldflags=-s); functions then come from `.gopclntab`. */
  readonly stripped: boolean;
  /** Has DWARF (not built with -ldflags=-w). */
  readonly hasDwarf: boolean;
  readonly functionSource: 'symtab' | 'pclntab';
  readonly functions: Readonly<Record<string, GoFunctionInfo>>;
  /** Requested functions not found in the binary. */
  readonly missingFunctions: readonly string[];
  /** "<struct>.<field>" -> offset (see offsets.ts for keys). */
  readonly offsets: Readonly<Record<string, number>>;
  readonly offsetsSource: GoOffsetsSource;
  /** With offsetsSource 'table': the entry used and how the version matched it (see offsets.ts). */
  readonly offsetsTableEntry?: string;
  readonly offsetsTableMatch?: ResolvedGoOffsets['tableMatch'];
  /** Offset keys not available for this binary (e.g. Request.Pattern before Go 1.23). */
  readonly missingOffsets: readonly string[];
  /** Where its threads keep g relative to fsbase (tls.ts), or why that is not known. */
  readonly gTls: GoTlsResolution;
}

interface CacheEntry {
  readonly base: Omit<GoBinaryInfo, 'path' | 'functions' | 'missingFunctions'>;
  /** Function name -> info, or null when known to be missing. */
  readonly functions: Map<string, GoFunctionInfo | null>;
}

const cache = new Map<string, CacheEntry>();
const MAX_CACHED_BINARIES = 256;

function inspectBase(elf: ElfFile): CacheEntry['base'] {
  const bi = readBuildInfo(elf);
  if (!bi) throw new SpanbridgeError('ERR_INSPECT', `inspect ${elf.path}: not a Go binary (no .go.buildinfo)`);
  const v = parseGoVersion(bi.goVersion);
  if (!v) throw new SpanbridgeError('ERR_INSPECT', `inspect ${elf.path}: unrecognised Go version "${bi.goVersion}"`);
  if (compareGoVersions(v, MIN_GO_VERSION) < 0) {
    throw new NotSupportedError(`Go binary ${elf.path} built with ${bi.goVersion}`, 'Go >= 1.17 (register ABI)');
  }
  const off = resolveGoOffsets(elf, bi.goVersion);
  const stripped = !elf.hasSymtab;
  return {
    goVersion: bi.goVersion,
    modules: bi.modules,
    stripped,
    hasDwarf: hasDwarf(elf),
    functionSource: stripped ? 'pclntab' : 'symtab',
    offsets: off.offsets,
    offsetsSource: off.source,
    ...(off.tableEntry !== undefined ? { offsetsTableEntry: off.tableEntry, offsetsTableMatch: off.tableMatch } : {}),
    missingOffsets: off.missing,
    gTls: goTlsOffset(elf),
  };
}

function lookupFunctions(elf: ElfFile, names: readonly string[], key: string, stripped: boolean): Map<string, GoFunctionInfo | null> {
  const found: Map<string, ElfFunction> = (stripped ? undefined : elf.findFunctions(names)) ?? readPclnTable(elf).lookup(names);
  const out = new Map<string, GoFunctionInfo | null>();
  for (const n of names) {
    const f = found.get(n);
    out.set(n, f ? { entryOffset: f.fileOffset, vaddr: f.vaddr, size: f.size, retOffsets: findRetOffsets(elf, f, key) } : null);
  }
  return out;
}

/**
 * Inspects the Go executable at `path` and locates `functionNames` (Go symbol names, e.g.
 * "net/http.serverHandler.ServeHTTP", "net/http.(*Transport).roundTrip").
 *
 * Throws SpanbridgeError ERR_INSPECT (unreadable, not ELF/x86-64, not a Go binary) or
 * ERR_NOT_SUPPORTED (Go < 1.17, or no DWARF and a Go version the offsets table does not cover).
 */
export function inspectGoBinary(path: string, functionNames: readonly string[]): GoBinaryInfo {
  const key = binaryCacheKey(path);
  let entry = cache.get(key);
  const todo = entry ? functionNames.filter((n) => !entry?.functions.has(n)) : functionNames;
  if (!entry || todo.length > 0) {
    withElf(path, (elf) => {
      if (!entry) {
        entry = { base: inspectBase(elf), functions: new Map() };
        if (cache.size >= MAX_CACHED_BINARIES) cache.delete(cache.keys().next().value as string);
        cache.set(key, entry);
      }
      for (const [n, f] of lookupFunctions(elf, todo, key, entry.base.stripped)) entry.functions.set(n, f);
    });
  }
  const e = entry as CacheEntry;
  const functions: Record<string, GoFunctionInfo> = {};
  const missingFunctions: string[] = [];
  for (const n of functionNames) {
    const f = e.functions.get(n);
    if (f) functions[n] = f;
    else missingFunctions.push(n);
  }
  return { path, ...e.base, functions, missingFunctions };
}

/** Forgets cached inspections (tests; a long-running agent may call it when binaries go away). */
export function clearInspectCache(): void {
  cache.clear();
}
