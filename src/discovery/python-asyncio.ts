/**
 * The capability probe for Python asyncio linking (bpf/sys_http/sys_http_asyncio.h), per process: is
 * asyncio loaded, which CPython, and does its build keep the symbols the uprobes need? Reads only
 * /proc/<pid>/maps and the mapped ELF files (their .symtab and relocations); never the process's
 * memory. Stripped builds (Debian's /usr/bin/python3.x) answer "not linked: no symbols".
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { ElfFile } from './go/elf';
import { procRoot } from './process-info';

/** Field offsets of the CPython objects the probes read (same in 3.10 .. 3.13, from DWARF). */
export interface PyAsyncioOffsets {
  readonly swTask: number; // TaskStepMethWrapper.sw_task
  readonly futCallback0: number; // FutureObj.fut_callback0
  readonly mMl: number; // PyCFunctionObject.m_ml
  readonly mSelf: number; // PyCFunctionObject.m_self
  readonly tpName: number; // PyTypeObject.tp_name
  readonly taskContext: number; // TaskObj.task_context
}

/** Verified with `ptype /o` on pyenv's 3.10.13, 3.11.7, 3.12.1 and 3.13.0 builds. */
const OFFSETS: Readonly<Record<string, PyAsyncioOffsets>> = {
  '3.10': { swTask: 16, futCallback0: 24, mMl: 16, mSelf: 24, tpName: 24, taskContext: 176 },
  '3.11': { swTask: 16, futCallback0: 24, mMl: 16, mSelf: 24, tpName: 24, taskContext: 152 },
  '3.12': { swTask: 16, futCallback0: 24, mMl: 16, mSelf: 24, tpName: 24, taskContext: 152 },
  '3.13': { swTask: 16, futCallback0: 24, mMl: 16, mSelf: 24, tpName: 24, taskContext: 136 },
};

export interface UprobePoint {
  /** The file as the agent opens it (/proc/<pid>/root/...). */
  readonly binaryPath: string;
  /** File offset of the function's entry. */
  readonly offset: number;
}

/**
 * uvloop runs callbacks through the C API (PyContext_Enter/PyContext_Exit around the callable it
 * calls itself), never through Context.run: where its loop module is mapped, these points too
 * (the exit alone marks where a callback ends; bpf/sys_http/sys_http_asyncio.h).
 */
export interface UvloopPoints {
  readonly contextExit: UprobePoint; // PyContext_Exit (the interpreter)
  readonly taskWakeup: UprobePoint; // task_wakeup (_asyncio): a task's wakeup method
  readonly taskStepCall: UprobePoint; // TaskStepMethWrapper_call (_asyncio): a task's step
  /** libuv's uv_read_start in uvloop's loop module: a connection's reading starts (its connection's task). */
  readonly readStart?: UprobePoint;
}

export interface AsyncioTarget {
  readonly version: string; // "3.11"
  readonly contextRun: UprobePoint;
  readonly taskInit: UprobePoint;
  readonly futureSetResult: UprobePoint;
  /** Set when uvloop's loop module is mapped in the process. */
  readonly uvloop?: UvloopPoints;
  /** Runtime addresses in the process (stepType 0: a heap type, learned by the probe from stepName). */
  readonly stepType: number;
  readonly stepName: string;
  readonly wakeupDef: number;
  readonly cfunctionType: number;
  readonly offsets: PyAsyncioOffsets;
}

export type AsyncioProbe =
  | { readonly kind: 'absent' } // no _asyncio module mapped: not (yet) an asyncio process
  | { readonly kind: 'unlinkable'; readonly version: string; readonly reason: string }
  | { readonly kind: 'linkable'; readonly target: AsyncioTarget };

interface Mapping {
  readonly start: number;
  readonly offset: number;
  readonly path: string;
}

/** File-backed mappings of /proc/<pid>/maps. */
export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-[0-9a-f]+ \S+ ([0-9a-f]+) \S+ \d+\s+(\/.*)$/.exec(line);
    if (m) out.push({ start: parseInt(m[1], 16), offset: parseInt(m[2], 16), path: m[3] });
  }
  return out;
}

const SHT_SYMTAB = 2;

/** Symbols (any type) by exact name from .symtab: their link-time addresses. */
export function findSymbols(elf: ElfFile, names: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  const symtab = elf.sections.find((s) => s.type === SHT_SYMTAB);
  if (!symtab) return out;
  const strtab = elf.sections[symtab.link];
  if (!strtab) return out;
  const syms = elf.sectionData(symtab);
  const strs = elf.sectionData(strtab);
  const want = new Set(names);
  const ent = symtab.entsize || 24;
  for (let o = 0; o + 24 <= syms.length && out.size < want.size; o += ent) {
    const nameOff = syms.readUInt32LE(o);
    const end = strs.indexOf(0, nameOff);
    const name = strs.toString('latin1', nameOff, end);
    if (want.has(name) && !out.has(name)) out.set(name, Number(syms.readBigUInt64LE(o + 8)));
  }
  return out;
}

/** Load bias of a mapped ELF file: runtime address = bias + link-time address. */
export function loadBias(elf: ElfFile, maps: readonly Mapping[], path: string): number | undefined {
  const first = maps.find((m) => m.path === path && m.offset === 0);
  if (!first) return undefined;
  if (elf.type === 2) return 0; // ET_EXEC: linked at its addresses
  const load = elf.segments.find((s) => s.type === 1 && s.offset === 0); // PT_LOAD with the ELF header
  return first.start - (load ? load.vaddr - (load.vaddr % 4096) : 0);
}

/** A pointer stored in the file at link-time address `vaddr` (PIC: its relocation's addend). */
function pointerAt(elf: ElfFile, vaddr: number): number | undefined {
  const rel = elf.relativeRelocationAt(vaddr);
  if (rel !== undefined) return rel;
  try {
    const v = Number(elf.readVaddr(vaddr, 8).readBigUInt64LE(0));
    return v || undefined;
  } catch {
    return undefined;
  }
}

/** The NUL-terminated string at link-time address `vaddr`. */
function stringAt(elf: ElfFile, vaddr: number): string | undefined {
  try {
    const b = elf.readVaddr(vaddr, 64);
    const end = b.indexOf(0);
    return end < 0 ? undefined : b.toString('latin1', 0, end);
  } catch {
    return undefined;
  }
}

interface AsyncioSymbols {
  readonly m: Map<string, number>;
  readonly l: Map<string, number>;
  readonly stepName: string;
  readonly staticType: number | undefined;
}

/** The symbols the uprobes need in the `_asyncio` module and the interpreter, or why they are not there. */
function asyncioSymbols(modElf: ElfFile, modPath: string, libElf: ElfFile, libPath: string, offsets: PyAsyncioOffsets): AsyncioSymbols | string {
  if (!modElf.hasSymtab || !libElf.hasSymtab) return `no symbols: ${!modElf.hasSymtab ? modPath : libPath} is stripped (.symtab removed)`;
  const m = findSymbols(modElf, ['_asyncio_Task___init__', '_asyncio_Future_set_result', 'TaskWakeupDef', 'TaskStepMethWrapper_Type', 'TaskStepMethWrapper_spec']);
  const l = findSymbols(libElf, ['context_run', 'PyCFunction_Type']);
  const missing = ['_asyncio_Task___init__', '_asyncio_Future_set_result', 'TaskWakeupDef'].filter((n) => !m.has(n));
  missing.push(...['context_run', 'PyCFunction_Type'].filter((n) => !l.has(n)));
  if (missing.length) return `no symbols: ${missing.join(', ')} not found`;
  // The step callable's type: a static type (<= 3.11) is known by its address; a heap type
  // (3.12+, made from TaskStepMethWrapper_spec) is learned by the probe from its tp_name text,
  // which PyType_FromSpec copies from the spec's name.
  const staticType = m.get('TaskStepMethWrapper_Type');
  const spec = m.get('TaskStepMethWrapper_spec');
  let stepName: string | undefined;
  if (staticType !== undefined) {
    const p = pointerAt(modElf, staticType + offsets.tpName);
    stepName = p !== undefined ? stringAt(modElf, p) : undefined;
  } else if (spec !== undefined) {
    const p = pointerAt(modElf, spec);
    stepName = p !== undefined ? stringAt(modElf, p) : undefined;
  }
  if (stepName === undefined || !stepName.endsWith('TaskStepMethWrapper') || stepName.length >= 32) {
    return 'no symbols: the TaskStepMethWrapper type was not found';
  }
  return { m, l, stepName, staticType };
}

const UVLOOP_MODULE = /\/uvloop\/loop\.cpython-3\d+[^/]*\.so$/;
const UVLOOP_MOD_SYMBOLS = ['task_wakeup', 'TaskStepMethWrapper_call'];
const UVLOOP_LIB_SYMBOLS = ['PyContext_Exit'];

/** Whether uvloop's loop module is mapped in process `pid` (read from /proc/<pid>/maps). */
export function uvloopLoaded(pid: number): boolean {
  try {
    return parseMaps(readFileSync(`${procRoot()}/${pid}/maps`, 'utf8')).some((m) => UVLOOP_MODULE.test(m.path));
  } catch {
    return false;
  }
}

/**
 * libuv's uv_read_start in uvloop's loop module (`file`, as the agent opens it; exported, so in
 * .dynsym even where .symtab is stripped), or undefined: connections' tasks are then known only by
 * their wakeups. The probe reads the stream's type and fd at libuv 1.x's x86_64 offsets (uvloop
 * 0.23.0's bundled libuv, from its DWARF; bpf/sys_http/sys_http_asyncio.h).
 */
function uvReadStart(file: string): UprobePoint | undefined {
  let elf: ElfFile | undefined;
  try {
    elf = ElfFile.open(file);
    const f = elf.findDynamicFunction('uv_read_start') ?? elf.findFunction('uv_read_start');
    return f ? { binaryPath: file, offset: f.fileOffset } : undefined;
  } catch {
    return undefined;
  } finally {
    elf?.close();
  }
}

/** The uvloop points' symbols, or which are missing. */
function uvloopSymbols(modElf: ElfFile, libElf: ElfFile): { m: Map<string, number>; l: Map<string, number> } | string {
  const m = findSymbols(modElf, UVLOOP_MOD_SYMBOLS);
  const l = findSymbols(libElf, UVLOOP_LIB_SYMBOLS);
  const missing = [...UVLOOP_MOD_SYMBOLS.filter((n) => !m.has(n)), ...UVLOOP_LIB_SYMBOLS.filter((n) => !l.has(n))];
  return missing.length ? `uvloop: no symbols: ${missing.join(', ')} not found` : { m, l };
}

/** Probes process `pid` (its maps and mapped files, seen under /proc/<pid>/root). */
export function probeAsyncio(pid: number): AsyncioProbe {
  let maps: Mapping[];
  try {
    maps = parseMaps(readFileSync(`${procRoot()}/${pid}/maps`, 'utf8'));
  } catch {
    return { kind: 'absent' };
  }
  const mod = maps.find((m) => /\/_asyncio(\.cpython-3\d+[^/]*)?\.so$/.test(m.path));
  if (!mod) return { kind: 'absent' };
  const lib = maps.find((m) => /\/libpython3\.\d+[^/]*\.so[.\d]*$/.test(m.path)) ?? maps.find((m) => /\/python3(\.\d+)?$/.test(m.path));
  const ver = /cpython-3(\d+)/.exec(mod.path) ?? /python3\.(\d+)/.exec(lib?.path ?? '');
  const version = ver ? `3.${ver[1]}` : 'unknown';
  const unlinkable = (reason: string): AsyncioProbe => ({ kind: 'unlinkable', version, reason });
  const offsets = OFFSETS[version];
  if (!offsets) return unlinkable(unsupported(version));
  if (!lib) return unlinkable('the interpreter (libpython or python executable) is not mapped');
  const root = `${procRoot()}/${pid}/root`;
  let modElf: ElfFile | undefined;
  let libElf: ElfFile | undefined;
  try {
    modElf = ElfFile.open(root + mod.path);
    libElf = ElfFile.open(root + lib.path);
    const syms = asyncioSymbols(modElf, mod.path, libElf, lib.path, offsets);
    if (typeof syms === 'string') return unlinkable(syms);
    const { m, l, stepName, staticType } = syms;
    const uv = maps.some((x) => UVLOOP_MODULE.test(x.path)) ? uvloopSymbols(modElf, libElf) : undefined;
    if (typeof uv === 'string') return unlinkable(uv);
    const uvMod = uv ? maps.find((x) => UVLOOP_MODULE.test(x.path) && x.offset === 0) : undefined;
    const readStart = uvMod ? uvReadStart(root + uvMod.path) : undefined;
    const modBias = loadBias(modElf, maps, mod.path);
    const libBias = loadBias(libElf, maps, lib.path);
    if (modBias === undefined || libBias === undefined) return unlinkable('load address not found in /proc/<pid>/maps');
    const point = (elf: ElfFile, path: string, vaddr: number): UprobePoint => {
      const offset = elf.vaddrToFileOffset(vaddr);
      if (offset === undefined) throw new Error(`no file offset for 0x${vaddr.toString(16)} in ${path}`);
      return { binaryPath: root + path, offset };
    };
    return {
      kind: 'linkable',
      target: {
        version,
        contextRun: point(libElf, lib.path, l.get('context_run')!),
        taskInit: point(modElf, mod.path, m.get('_asyncio_Task___init__')!),
        futureSetResult: point(modElf, mod.path, m.get('_asyncio_Future_set_result')!),
        ...(uv && {
          uvloop: {
            contextExit: point(libElf, lib.path, uv.l.get('PyContext_Exit')!),
            taskWakeup: point(modElf, mod.path, uv.m.get('task_wakeup')!),
            taskStepCall: point(modElf, mod.path, uv.m.get('TaskStepMethWrapper_call')!),
            ...(readStart && { readStart }),
          },
        }),
        stepType: staticType !== undefined ? modBias + staticType : 0,
        stepName,
        wakeupDef: modBias + m.get('TaskWakeupDef')!,
        cfunctionType: libBias + l.get('PyCFunction_Type')!,
        offsets,
      },
    };
  } catch (err) {
    return unlinkable(`cannot read the interpreter's files: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    modElf?.close();
    libElf?.close();
  }
}

function unsupported(version: string): string {
  return `CPython ${version} is not supported (3.10 .. 3.13${version === '3.14' ? '; 3.14 keeps the running task in the thread state, not read yet' : ''})`;
}

export interface InterpreterReport {
  readonly path: string;
  readonly version: string;
  readonly linkable: boolean;
  /** What would be probed, or why asyncio in it cannot be linked. */
  readonly detail: string;
}

/**
 * Whether asyncio in the CPython executable at `exe` (a real file, not a shim script) could be
 * linked, from its files alone: `<prefix>/lib/python3.X/lib-dynload/_asyncio.cpython-3X-*.so` and
 * the interpreter (`<prefix>/lib/libpython3.X.so.1.0` when the executable has no `context_run`).
 * Null when `exe` is not an ELF CPython.
 */
export function inspectInterpreter(exe: string): InterpreterReport | null {
  let real: string;
  try {
    real = realpathSync(exe);
  } catch {
    return null;
  }
  const ver = /python3\.(\d+)$/.exec(real);
  if (!ver) return null;
  const version = `3.${ver[1]}`;
  const prefix = dirname(dirname(real));
  const no = (detail: string): InterpreterReport => ({ path: real, version, linkable: false, detail });
  const offsets = OFFSETS[version];
  if (!offsets) return no(unsupported(version));
  const dynload = `${prefix}/lib/python${version}/lib-dynload`;
  let modName: string | undefined;
  try {
    modName = readdirSync(dynload).find((f) => /^_asyncio\.cpython-3\d+[^/]*\.so$/.test(f));
  } catch {
    // no lib-dynload
  }
  if (!modName) return no(`no _asyncio module in ${dynload} (built into the interpreter: not supported)`);
  let modElf: ElfFile | undefined;
  let libElf: ElfFile | undefined;
  try {
    modElf = ElfFile.open(`${dynload}/${modName}`);
    libElf = ElfFile.open(real);
    let libPath = real;
    if (!findSymbols(libElf, ['context_run']).has('context_run')) {
      const shared = `${prefix}/lib/libpython${version}.so.1.0`;
      if (existsSync(shared)) {
        libElf.close();
        libElf = ElfFile.open(shared);
        libPath = shared;
      }
    }
    const syms = asyncioSymbols(modElf, `${dynload}/${modName}`, libElf, libPath, offsets);
    if (typeof syms === 'string') return no(syms);
    const uv = uvloopSymbols(modElf, libElf);
    const uvNote = typeof uv === 'string' ? `; ${uv}` : '; uvloop: PyContext_Exit, task_wakeup, TaskStepMethWrapper_call, uv_read_start (where uvloop is mapped)';
    return { path: real, version, linkable: true, detail: `uprobes at Context.run (${libPath}), Task.__init__ and Future.set_result (${dynload}/${modName})${uvNote}` };
  } catch (err) {
    return no(`cannot read the interpreter's files: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    modElf?.close();
    libElf?.close();
  }
}
