/**
 * The capability probe for Node.js in-process linking (bpf/sys_http/sys_http_node_link.h), per binary: its
 * version, the symbols the kernel starts from (libuv's `default_loop_struct`, the vtables of
 * node::TCPWrap and of the HTTP Parser) and the field offsets of the structures it walks, by node
 * version (measured from the binary's machine code and libuv's DWARF: docs/node-async-linking.md).
 * A version without a measured layout is not linked, with that reason: offsets are never guessed.
 * Reads only the ELF file and /proc/<pid>/maps; never the process's memory.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { errorMessage } from '../errors';
import { ElfFile, withElf } from './go/elf';
import { procRoot } from './process-info';
import { findSymbols, loadBias, parseMaps } from './python-asyncio';

/** Byte offsets the kernel reads (struct node_proc, bpf/sys_http/sys_http_node_link.h). */
export interface NodeLayout {
  /** uv_loop_t.watchers, uv_loop_t.nwatchers (libuv DWARF in the binary). */
  readonly loopWatchers: number;
  readonly loopNwatchers: number;
  /** uv_stream_t.io_watcher, uv__io_t.fd. */
  readonly streamIo: number;
  readonly ioFd: number;
  /** AsyncWrap.async_id_ and trigger_async_id_ (doubles): AsyncWrap::AsyncReset. */
  readonly wrapAsyncId: number;
  readonly wrapTriggerId: number;
  /** BaseObject.realm_, Realm.env_ (LibuvStreamWrap::OnUvRead). */
  readonly wrapRealm: number;
  readonly realmEnv: number;
  /** Environment -> async_hooks_.async_id_fields_ buffer (AsyncWrap::AsyncReset). */
  readonly envFields: number;
  /** TCPWrap's StreamResource.listener_ (LibuvStreamWrap::OnUvRead calls listener_->OnStreamRead). */
  readonly streamListener: number;
  /** The StreamListener part of node's HTTP Parser (the OnStreamRead thunk: this - 0x38). */
  readonly listenerParser: number;
  /**
   * Offset in the kernel's struct pt_regs (x86-64) of the register that holds the uv_tcp_t across
   * libuv's connect() call in uv__tcp_connect (its machine code; checked in the kernel by the
   * handle's fd and vtable pointer), or NODE_NO_REG.
   */
  readonly connectReg: number;
}

/** x86-64 struct pt_regs: r15, r14, r13, r12, bp, bx, ... (8 bytes each). */
export const PT_REGS_BX = 40;
export const NODE_NO_REG = 0xffff;

/**
 * Layouts by exact node version, each measured on that build (Debian's /usr/bin/node v20.20.2:
 * disassembly of AsyncWrap::AsyncReset, LibuvStreamWrap::OnUvRead and the Parser's OnStreamRead
 * thunk; libuv's DWARF; checked against executionAsyncId() with gdb on a test process).
 */
export const NODE_LAYOUTS: Readonly<Record<string, NodeLayout>> = {
  '20.20.2': {
    loopWatchers: 104,
    loopNwatchers: 112,
    streamIo: 136,
    ioFd: 48,
    wrapAsyncId: 0x28,
    wrapTriggerId: 0x30,
    wrapRealm: 0x10,
    realmEnv: 0xb0,
    envFields: 0x480,
    streamListener: 0x60,
    listenerParser: 0x38,
    connectReg: PT_REGS_BX,
  },
};

export const NODE_SYMBOLS = {
  loop: 'default_loop_struct',
  tcpWrapVtable: '_ZTVN4node7TCPWrapE',
  parserVtable: '_ZTVN4node12_GLOBAL__N_16ParserE',
} as const;

/** What one node binary offers, at link-time addresses. */
export type NodeBinary =
  | { readonly ok: true; readonly version: string; readonly loop: number; readonly tcpVptr: number; readonly parserVptr: number; readonly layout: NodeLayout }
  | { readonly ok: false; readonly version?: string; readonly reason: string };

/** A process's node, at its runtime addresses (bias applied). */
export type NodeLinkTarget = NodeBinary;

const VERSION_RE = /https:\/\/nodejs\.org\/download\/release\/v(\d+\.\d+\.\d+)\//;

/** node's version from its release URL (process.release), in .rodata. */
export function nodeVersionOf(elf: ElfFile): string | undefined {
  const rodata = elf.section('.rodata');
  if (!rodata) return undefined;
  const data = elf.sectionData(rodata);
  const at = data.indexOf('https://nodejs.org/download/release/v');
  if (at < 0) return undefined;
  return VERSION_RE.exec(data.toString('latin1', at, at + 80))?.[1];
}

/** The secondary vtable (offset-to-top == -delta) of the StreamListener part, within 64 slots. */
function secondaryVptr(elf: ElfFile, vtable: number, delta: number): number | undefined {
  let data: Buffer;
  try {
    data = elf.readVaddr(vtable, 64 * 8);
  } catch {
    return undefined;
  }
  for (let i = 2; i + 2 <= 64; i++) {
    if (data.readBigInt64LE(i * 8) === BigInt(-delta)) return vtable + (i + 2) * 8;
  }
  return undefined;
}

const cache = new Map<string, NodeBinary>();

/** Inspects a node binary (cached by path and size). */
export function inspectNodeBinary(path: string): NodeBinary {
  let key = path;
  try {
    key = `${realpathSync(path)}`;
  } catch {
    /* inspected below, which reports it */
  }
  const hit = cache.get(key);
  if (hit) return hit;
  let out: NodeBinary;
  try {
    out = withElf(path, (elf) => {
      const version = nodeVersionOf(elf);
      if (!version) return { ok: false, reason: 'no node release string (not node, or a custom build)' };
      const layout = NODE_LAYOUTS[version];
      if (!layout) return { ok: false, version, reason: `node ${version}: structure offsets not measured for this version (known: ${Object.keys(NODE_LAYOUTS).join(', ')})` };
      if (!elf.hasSymtab) return { ok: false, version, reason: `node ${version}: no symbols (stripped)` };
      const syms = findSymbols(elf, Object.values(NODE_SYMBOLS));
      const missing = Object.values(NODE_SYMBOLS).filter((s) => !syms.has(s));
      if (missing.length) return { ok: false, version, reason: `node ${version}: symbol(s) missing: ${missing.join(', ')}` };
      const parserVptr = secondaryVptr(elf, syms.get(NODE_SYMBOLS.parserVtable)!, layout.listenerParser);
      if (parserVptr === undefined) return { ok: false, version, reason: `node ${version}: the HTTP Parser's vtable does not have the measured layout` };
      return { ok: true, version, loop: syms.get(NODE_SYMBOLS.loop)!, tcpVptr: syms.get(NODE_SYMBOLS.tcpWrapVtable)! + 16, parserVptr, layout };
    });
  } catch (err) {
    out = { ok: false, reason: `cannot read the binary: ${errorMessage(err)}` };
  }
  cache.set(key, out);
  return out;
}

/** The node executable a process runs, at its runtime addresses; the reason when it cannot be linked. */
export function probeNode(pid: number): NodeLinkTarget {
  let exe: string;
  try {
    exe = realpathSync(`${procRoot()}/${pid}/exe`);
  } catch (err) {
    return { ok: false, reason: `cannot read /proc/${pid}/exe: ${errorMessage(err)}` };
  }
  const bin = inspectNodeBinary(exe);
  if (!bin.ok) return bin;
  let bias: number | undefined;
  try {
    const maps = parseMaps(readFileSync(`${procRoot()}/${pid}/maps`, 'utf8'));
    bias = withElf(exe, (elf) => loadBias(elf, maps, exe));
  } catch (err) {
    return { ok: false, version: bin.version, reason: `cannot read its mappings: ${errorMessage(err)}` };
  }
  if (bias === undefined) return { ok: false, version: bin.version, reason: `${exe} is not mapped in the process` };
  return { ...bin, loop: bin.loop + bias, tcpVptr: bin.tcpVptr + bias, parserVptr: bin.parserVptr + bias };
}
