/**
 * A BPF object file through libbpf: open (with .rodata values and autoload choices), load (the
 * verifier log kept on failure), its programs, maps and ring buffers by name, and close.
 *
 * The object owns everything made from it: close() stops record delivery (or drains), destroys
 * links in reverse creation order, frees ring buffers, then the object itself.
 */
import koffi from 'koffi';
import { BpfLoadError, SpanbridgeError, type ErrorCode } from '../../errors';
import { trackOpenObject } from '../lifecycle';
import type { BpfLink, BpfMap, BpfObject, BpfProgram, CloseOptions, OpenOptions, RecordHandler, RingBufferSource } from '../types';
import { bpfError, errnoText, pointerErrno } from './errors';
import { LibbpfMap } from './map';
import type { Native, Ptr } from './native';
import type { BackendConfig } from './options';
import { LibbpfProgram } from './program';
import { LibbpfRingBuffer } from './ring-buffer';
import type { RingPoller } from './ring-poller';
import { createMissingPins } from './pins';
import { setRodata } from './rodata';

const LOG_BUF_SIZE = 16 * 1024 * 1024; // calloc'd: pages are only touched if the kernel writes.
const LOG_TAIL_BYTES = 4096;
const BPF_MAP_TYPE_RINGBUF = 27;

export class LibbpfObject implements BpfObject {
  private ptr: Ptr;
  private loaded = false;
  private readonly links: BpfLink[] = [];
  private readonly rings: LibbpfRingBuffer[] = [];
  private readonly programs = new Map<string, LibbpfProgram>();
  private readonly maps = new Map<string, LibbpfMap>();
  private closing: Promise<void> | undefined;
  /** A load running on a worker thread (loadAsync); close() waits for it before freeing. */
  private loading: Promise<void> | undefined;
  /** Pending link detaches; close() waits for them before freeing the object. */
  private linkDestroys: Promise<void> = Promise.resolve();
  private readonly untrack: () => void;

  private constructor(
    private readonly n: Native,
    private readonly cfg: BackendConfig,
    private readonly poller: RingPoller,
    readonly possibleCpus: () => number,
    readonly path: string,
    private readonly options: OpenOptions,
    ptr: bigint,
  ) {
    this.ptr = ptr;
    this.untrack = trackOpenObject(this);
  }

  static open(
    n: Native,
    cfg: BackendConfig,
    poller: RingPoller,
    possibleCpus: () => number,
    path: string,
    options: OpenOptions,
  ): LibbpfObject {
    return new LibbpfObject(n, cfg, poller, possibleCpus, path, options, openHandle(n, path, options));
  }

  /** The live object pointer; throws `code` once the object is closed. */
  handle(code: ErrorCode, what: string): bigint {
    if (this.ptr === null || this.closing) throw new SpanbridgeError(code, `${what}: object ${this.path} is closed`);
    return this.ptr;
  }

  isLoaded(): boolean {
    return this.loaded;
  }

  /**
   * Loads on a libuv worker thread (the verifier takes ~0.2-0.5 s per object here), so several
   * objects load at once and the event loop runs meanwhile. Maps pinned by name are created first,
   * on this thread (pins.ts). libbpf's print hook is unset meanwhile (native.ts): when the load
   * fails, it runs again synchronously (load()), whose error carries the failing program, the
   * verifier log and libbpf's messages as always.
   */
  loadAsync(): Promise<void> {
    if (this.loaded) return Promise.resolve();
    this.loading ??= this.loadOnWorker().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async loadOnWorker(): Promise<void> {
    const obj = this.handle('ERR_BPF_LOAD', `load ${this.path}`);
    const n = this.n;
    createMissingPins(n, obj);
    n.log.mute();
    let r: number;
    try {
      r = await new Promise<number>((resolve, reject) => {
        n.objectLoad.async(obj, (err: unknown, res: number) => (err ? reject(err) : resolve(res)));
      });
    } finally {
      n.log.unmute();
      n.mallocTrim(0);
    }
    if (r === 0) {
      this.loaded = true;
      return;
    }
    this.handle('ERR_BPF_LOAD', `load ${this.path}`);
    // libbpf loads an object once: a fresh handle for the diagnosing load.
    n.objectClose(obj);
    this.ptr = null;
    this.programs.clear();
    this.maps.clear();
    this.ptr = openHandle(n, this.path, this.options);
    this.load();
  }

  load(): void {
    const obj = this.handle('ERR_BPF_LOAD', `load ${this.path}`);
    if (this.loaded) return;
    const n = this.n;
    // One log buffer shared by every program: load stops at the first program the verifier
    // rejects, and libbpf only asks for a log (level 1) when a load fails, so after a failure
    // the buffer holds exactly the failing program's log.
    const logBuf = koffi.alloc('char', LOG_BUF_SIZE) as bigint;
    createMissingPins(n, obj);
    const progs: bigint[] = [];
    for (let p = n.nextProgram(obj, null) as Ptr; p !== null; p = n.nextProgram(obj, p) as Ptr) progs.push(p);
    try {
      for (const p of progs) n.programSetLogBuf(p, logBuf, LOG_BUF_SIZE);
      n.log.begin();
      const r = n.objectLoad(obj) as number;
      if (r === 0) {
        this.loaded = true;
        n.log.take();
        return;
      }
      const errno = Math.abs(r);
      const libbpfLines = n.log.take();
      const failed = libbpfLines
        .map((l) => /prog '([^']+)': BPF program load failed/.exec(l)?.[1])
        .find((x): x is string => x !== undefined);
      const verifierLog = koffi.decode.string(logBuf) ?? '';
      let msg = `load ${this.path}${failed ? `: program ${failed}` : ''}: ${errnoText(n, errno)}`;
      if (verifierLog.trim() !== '') {
        const tail = verifierLog.length > LOG_TAIL_BYTES ? `...\n${verifierLog.slice(-LOG_TAIL_BYTES)}` : verifierLog;
        msg += `\nverifier log${errno === 28 ? ' (truncated by the kernel: ENOSPC)' : ''}:\n${tail.trimEnd()}`;
      } else if (libbpfLines.length > 0) {
        msg += `\nlibbpf:\n${libbpfLines.slice(-20).join('\n')}`;
      }
      throw new BpfLoadError(msg, {
        errno,
        program: failed,
        verifierLog,
        cause: libbpfLines.length ? new Error(libbpfLines.join('\n')) : undefined,
      });
    } finally {
      // libbpf keeps the pointer (and refuses to change it once loaded) but only reads it during
      // bpf_object__load, which it never runs twice; so the buffer can go now.
      koffi.free(logBuf);
      // A load parses the kernel's BTF (several MB, freed by libbpf once loaded); glibc keeps the
      // freed heap unless asked, which left ~20 MB resident in an idle agent.
      n.mallocTrim(0);
    }
  }

  program(name: string): BpfProgram {
    const obj = this.handle('ERR_BPF_OPEN', `program ${name}`);
    const cached = this.programs.get(name);
    if (cached) return cached;
    const ptr = this.n.findProgram(obj, name) as Ptr;
    if (ptr === null) throw new SpanbridgeError('ERR_BPF_OPEN', `program ${name}: not in ${this.path}`);
    const prog = new LibbpfProgram(this.n, this, name, ptr);
    this.programs.set(name, prog);
    return prog;
  }

  map(name: string): BpfMap {
    const obj = this.handle('ERR_BPF_MAP', `map ${name}`);
    const cached = this.maps.get(name);
    if (cached) return cached;
    const n = this.n;
    const ptr = n.findMap(obj, name) as Ptr;
    if (ptr === null) throw new SpanbridgeError('ERR_BPF_MAP', `map ${name}: not in ${this.path}`);
    const m = new LibbpfMap(n, this, name, ptr);
    this.maps.set(name, m);
    return m;
  }

  ringBuffer(mapName: string, onRecord: RecordHandler): RingBufferSource {
    const m = this.map(mapName) as LibbpfMap;
    const what = `ring buffer ${mapName}`;
    this.handle('ERR_BPF_MAP', what);
    if (m.type !== BPF_MAP_TYPE_RINGBUF) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: map type ${m.type} is not a ring buffer`);
    const fd = this.n.mapFd(m.ptr) as number;
    if (!this.loaded || fd < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: object ${this.path} is not loaded`);
    const rb = new LibbpfRingBuffer(this.n, this.cfg, this.poller, mapName, fd, onRecord);
    this.rings.push(rb);
    return rb;
  }

  /** Called by LibbpfProgram: the object owns every link. */
  adoptLink(link: BpfLink): void {
    this.links.push(link);
  }

  /** Runs link detaches one after another, off the main thread (see LibbpfLink). */
  chainDestroy(step: () => Promise<void>): void {
    this.linkDestroys = this.linkDestroys.then(step);
  }

  close(options: CloseOptions = {}): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      // A load on a worker thread still uses the object: free it only once that returned. (No
      // await otherwise: delivery stops within this call.)
      if (this.loading) await this.loading.catch(() => undefined);
      // Without drain no record reaches a handler once close() was called; with drain records
      // keep flowing while the links go, then what is left is read out. Then the kernel side goes
      // in the documented order: links (reverse creation order), ring buffers, the object.
      if (!options.drain) for (const r of this.rings) r.stopDelivery();
      for (const link of [...this.links].reverse()) link.destroy();
      this.links.length = 0;
      await this.linkDestroys;
      for (const r of this.rings) {
        r.stopDelivery();
        // The links are gone, so nothing new arrives: records below the wakeup threshold (and
        // any the last turns left) reach the handler now, synchronously.
        if (options.drain) r.drainRemaining();
      }
      await Promise.all(this.rings.map((r) => r.close()));
      this.rings.length = 0;
      if (this.ptr !== null) this.n.objectClose(this.ptr);
      this.ptr = null;
      this.untrack();
    })();
    return this.closing;
  }
}

/** bpf_object__open_file, then the settings that must precede load: .rodata, autoload, map sizes. */
function openHandle(n: Native, path: string, options: OpenOptions): bigint {
  n.log.begin();
  const ptr = n.openFile(path, null) as Ptr;
  if (ptr === null) {
    const errno = pointerErrno(n, koffi.errno());
    throw bpfError(n, 'ERR_BPF_OPEN', `open ${path}: ${errnoText(n, errno)}`, { errno });
  }
  try {
    if (options.rodata && Object.keys(options.rodata).length > 0) setRodata(n, ptr, path, options.rodata);
    for (const name of options.disablePrograms ?? []) {
      const prog = n.findProgram(ptr, name) as Ptr;
      if (prog === null) throw new SpanbridgeError('ERR_BPF_OPEN', `disable program ${name}: not in ${path}`);
      const r = n.programSetAutoload(prog, false) as number;
      if (r < 0) throw new SpanbridgeError('ERR_BPF_OPEN', `disable program ${name}: ${errnoText(n, r)}`);
    }
    for (const [name, size] of Object.entries(options.maxEntries ?? {})) {
      const map = n.findMap(ptr, name) as Ptr;
      if (map === null) throw new SpanbridgeError('ERR_BPF_OPEN', `size map ${name}: not in ${path}`);
      const r = n.mapSetMaxEntries(map, size) as number;
      if (r < 0) throw new SpanbridgeError('ERR_BPF_OPEN', `size map ${name} to ${size}: ${errnoText(n, r)}`);
    }
  } catch (err) {
    n.objectClose(ptr);
    throw err;
  }
  n.log.take();
  return ptr;
}
