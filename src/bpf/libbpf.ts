/**
 * The libbpf binding: implements the typed BPF API (./types.ts) on libbpf.so.1 through koffi.
 * This is the ONLY module that imports koffi; everything else sees BpfBackend and its fake.
 *
 * Flow, as libbpf-bootstrap: open -> set .rodata by name -> autoload choices -> load (verifier log
 * kept on failure) -> attach (links owned by the object) -> ring buffers -> close (links in
 * reverse order, ring buffers, object). One close() frees everything the object owns.
 *
 * Ring buffers never block Node's event loop: waiting for data is done by libuv's own poll phase
 * on the ring buffer's epoll fd ('uv-poll', default) or by epoll_wait on a libuv worker thread
 * through koffi's async call ('worker'); records are consumed on the main thread with
 * ring_buffer__consume, in time-bounded turns (default 5 ms) so a flood of records cannot starve
 * timers and I/O. Programs may skip the wakeup while little data waits (bpf/ring_wakeup.h), so one
 * unref'd timer also gives every running ring a turn each pollIntervalMs (default 50 ms), and a
 * draining close reads every ring empty once the links are gone. Link detaches, which wait for
 * RCU grace periods in the kernel, also run on a worker thread. What stays synchronous: open,
 * load (verifier) and attach.
 *
 * libbpf 1.1.2 (Debian 12) conventions relied on: functions returning pointers give NULL and set
 * errno; functions returning int give -errno; libbpf's own diagnostics go through a print callback,
 * which we capture so errors can carry them (as the `cause`).
 */
import koffi, { type LibraryHandle, type TypeObject, type node as koffiNode } from 'koffi';
import { SpanbridgeError, NotSupportedError, type ErrorCode } from '../errors';
import { trackOpenObject } from './lifecycle';
import {
  BTF_KIND_DATASEC,
  BTF_TYPE_HEADER_SIZE,
  BTF_VAR_SECINFO_SIZE,
  parseBtfTypeHeader,
  parseVarSecinfos,
  writeRodata,
  type RodataVar,
} from './rodata';
import type {
  BpfBackend,
  BpfLink,
  BpfMap,
  BpfObject,
  BpfProgram,
  CloseOptions,
  OpenOptions,
  RecordHandler,
  RingBufferSource,
  UprobeTarget,
} from './types';

/** A C pointer as koffi 3 represents it (BigInt), or null for NULL. */
type Ptr = bigint | null;

export type RingWaitMode = 'uv-poll' | 'worker';

function ringWaitFromEnv(): RingWaitMode | undefined {
  const v = process.env.SPANBRIDGE_RING_WAIT;
  if (v === undefined || v === '') return undefined;
  if (v === 'uv-poll' || v === 'worker') return v;
  process.emitWarning(`SPANBRIDGE_RING_WAIT=${v} ignored (expected uv-poll or worker)`);
  return undefined;
}

export interface LibbpfBackendOptions {
  /**
   * How a ring buffer waits for data without blocking the event loop (records are consumed on
   * the main thread either way). Option > env SPANBRIDGE_RING_WAIT > default 'uv-poll'.
   * - 'uv-poll' (default): libuv's own poll phase watches the ring buffer's epoll fd
   *   (koffi.node.poll). No thread, no timeout, wakes at once, closes at once. koffi calls this
   *   API not yet stable: the integration tests pin its behaviour for the koffi version we ship.
   *   If libuv reports a poll error, that ring buffer falls back to 'worker'.
   * - 'worker': epoll_wait (200 ms timeout) through koffi's async call on a libuv threadpool
   *   thread, which it holds for as long as the ring buffer runs. Measured: with 4 running ring
   *   buffers (UV_THREADPOOL_SIZE is 4) every fs.readFile waited ~193 ms instead of ~0.3 ms,
   *   and dns.lookup/zlib/crypto share that pool; hence not the default.
   */
  readonly ringWait?: RingWaitMode;
  /** epoll_wait timeout in 'worker' mode; bounds how long close() can wait. Default 200 ms. */
  readonly waitTimeoutMs?: number;
  /** Longest a single consume turn may run on the main thread before yielding. Default 5 ms. */
  readonly consumeTurnMs?: number;
  /**
   * Every running ring buffer is also consumed on this period (one unref'd timer per backend),
   * whether or not the kernel woke us: programs that skip wakeups while little data waits
   * (bpf/ring_wakeup.h, `ring_wakeup_bytes`) rely on it, so no record waits longer than this.
   * Default 50 ms; 0 turns it off (then every program must wake user space itself).
   */
  readonly pollIntervalMs?: number;
}

/** Default period of the backend's ring-buffer consume timer (LibbpfBackendOptions.pollIntervalMs). */
export const DEFAULT_POLL_INTERVAL_MS = 50;
const LOG_BUF_SIZE = 16 * 1024 * 1024; // calloc'd: pages are only touched if the kernel writes.
const LOG_TAIL_BYTES = 4096;
const LIBBPF_LINES_KEPT = 200;
const BPF_MAP_TYPE_RINGBUF = 27;
const BPF_MAP_TYPE_SOCKMAP = 15;
const BPF_MAP_TYPE_SOCKHASH = 18;
/** enum bpf_attach_type */
const BPF_SK_MSG_VERDICT = 7;
const O_RDONLY = 0;
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;
const SOL_SOCKET = 1;
const SO_COOKIE = 57;
const O_DIRECTORY = 0o200000;
/** BPF_MAP_TYPE_PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE. */
const PER_CPU_MAP_TYPES = new Set([5, 6, 10, 21]);
const EPOLL_CTL_ADD = 1;
const EPOLLIN = 0x001;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const EPOLL_EVENT_SIZE = 12; // struct epoll_event is packed on x86-64

// ---------------------------------------------------------------------------------------------
// Native bindings (loaded once per process).

/** A bound C function; koffi functions are untyped, so every call site casts its result. */
type KFn = ReturnType<LibraryHandle['func']>;

interface Native {
  readonly openFile: KFn;
  readonly objectLoad: KFn;
  readonly objectClose: KFn;
  readonly findProgram: KFn;
  readonly findMap: KFn;
  readonly nextProgram: KFn;
  readonly objectBtf: KFn;
  readonly programSetAutoload: KFn;
  readonly programAutoload: KFn;
  readonly programSetLogBuf: KFn;
  readonly attachUprobe: KFn;
  readonly attachTracepoint: KFn;
  readonly attachRawTracepoint: KFn;
  readonly attachCgroup: KFn;
  readonly programFd: KFn;
  readonly progAttach: KFn;
  readonly progDetach2: KFn;
  readonly open: KFn;
  readonly syscall: KFn;
  readonly getsockopt: KFn;
  readonly linkDestroy: KFn;
  readonly getError: KFn;
  readonly mapFd: KFn;
  readonly mapType: KFn;
  readonly mapKeySize: KFn;
  readonly mapValueSize: KFn;
  readonly mapInitialValue: KFn;
  readonly mapUpdate: KFn;
  readonly mapLookup: KFn;
  readonly mapDelete: KFn;
  readonly btfFindByNameKind: KFn;
  readonly btfTypeById: KFn;
  readonly btfNameByOffset: KFn;
  readonly numPossibleCpus: KFn;
  readonly ringNew: KFn;
  readonly ringConsume: KFn;
  readonly ringEpollFd: KFn;
  readonly ringFree: KFn;
  readonly sampleFnType: TypeObject;
  readonly strerror: KFn;
  readonly memcpy: KFn;
  readonly epollWait: KFn;
  readonly epollCtl: KFn;
  readonly eventfd: KFn;
  readonly write: KFn;
  readonly close: KFn;
  /** libbpf warnings/info lines since the last `beginCapture()`. */
  readonly log: LibbpfLogCapture;
}

/** Collects libbpf's printed messages so a failing call can attach them to its error. */
class LibbpfLogCapture {
  private lines: string[] = [];
  readonly debug = process.env.SPANBRIDGE_LIBBPF_DEBUG === '1';

  begin(): void {
    this.lines = [];
  }

  push(level: number, text: string): void {
    if (this.debug) process.stderr.write(text);
    if (level > 1) return; // LIBBPF_DEBUG: only with SPANBRIDGE_LIBBPF_DEBUG=1
    if (this.lines.length >= LIBBPF_LINES_KEPT) this.lines.shift();
    this.lines.push(text.trimEnd());
  }

  take(): string[] {
    const out = this.lines;
    this.lines = [];
    return out;
  }
}

let nativeSingleton: Native | undefined;

function loadNative(): Native {
  if (nativeSingleton) return nativeSingleton;
  let lib: LibraryHandle;
  let libc: LibraryHandle;
  try {
    lib = koffi.load('libbpf.so.1');
    libc = koffi.load('libc.so.6');
  } catch (err) {
    throw new NotSupportedError('libbpf', 'libbpf.so.1 (Debian/Ubuntu package libbpf1)', { cause: err });
  }
  // Unnamed prototypes: koffi's type names are process-global, and this module may be evaluated
  // more than once per process (jest module registries).
  const printFnType = koffi.proto('int', ['int', 'const char *', 'void *']);
  const sampleFnType = koffi.proto('int', ['void *', 'void *', 'size_t']);
  const log = new LibbpfLogCapture();
  const vsnprintf = libc.func('int vsnprintf(void *buf, size_t size, const char *fmt, void *ap)');
  const printBuf = Buffer.alloc(8192);
  // libbpf_print_fn_t gets a va_list; on x86-64 that is a pointer to __va_list_tag, which
  // vsnprintf accepts as-is. Registered for the whole process and never unregistered.
  const printCb = koffi.register((level: number, fmt: string, ap: Ptr): number => {
    const n = vsnprintf(printBuf, printBuf.length, fmt, ap) as number;
    log.push(level, printBuf.toString('utf8', 0, Math.max(0, Math.min(n, printBuf.length - 1))));
    return 0;
  }, koffi.pointer(printFnType));
  lib.func('libbpf_set_print', 'void *', [koffi.pointer(printFnType)])(printCb);

  nativeSingleton = {
    openFile: lib.func('void *bpf_object__open_file(const char *path, const void *opts)'),
    objectLoad: lib.func('int bpf_object__load(void *obj)'),
    objectClose: lib.func('void bpf_object__close(void *obj)'),
    findProgram: lib.func('void *bpf_object__find_program_by_name(const void *obj, const char *name)'),
    findMap: lib.func('void *bpf_object__find_map_by_name(const void *obj, const char *name)'),
    nextProgram: lib.func('void *bpf_object__next_program(const void *obj, void *prog)'),
    objectBtf: lib.func('void *bpf_object__btf(const void *obj)'),
    programSetAutoload: lib.func('int bpf_program__set_autoload(void *prog, bool autoload)'),
    programAutoload: lib.func('bool bpf_program__autoload(const void *prog)'),
    programSetLogBuf: lib.func('int bpf_program__set_log_buf(void *prog, void *buf, size_t size)'),
    attachUprobe: lib.func(
      'void *bpf_program__attach_uprobe(const void *prog, bool retprobe, int pid, const char *path, size_t offset)',
    ),
    attachTracepoint: lib.func('void *bpf_program__attach_tracepoint(const void *prog, const char *cat, const char *name)'),
    attachRawTracepoint: lib.func('void *bpf_program__attach_raw_tracepoint(const void *prog, const char *name)'),
    attachCgroup: lib.func('void *bpf_program__attach_cgroup(const void *prog, int cgroup_fd)'),
    programFd: lib.func('int bpf_program__fd(const void *prog)'),
    // libbpf 1.1 has no bpf_program__attach_sockmap: sk_msg programs attach to a map the old way.
    progAttach: lib.func('int bpf_prog_attach(int prog_fd, int attachable_fd, int type, unsigned int flags)'),
    progDetach2: lib.func('int bpf_prog_detach2(int prog_fd, int attachable_fd, int type)'),
    open: libc.func('int open(const char *path, int flags)'),
    syscall: libc.func('long syscall(long number, ...)'),
    getsockopt: libc.func('int getsockopt(int fd, int level, int name, _Out_ uint64_t *value, _Inout_ uint32_t *len)'),
    linkDestroy: lib.func('int bpf_link__destroy(void *link)'),
    getError: lib.func('long libbpf_get_error(const void *ptr)'),
    mapFd: lib.func('int bpf_map__fd(const void *map)'),
    mapType: lib.func('int bpf_map__type(const void *map)'),
    mapKeySize: lib.func('uint32_t bpf_map__key_size(const void *map)'),
    mapValueSize: lib.func('uint32_t bpf_map__value_size(const void *map)'),
    mapInitialValue: lib.func('void *bpf_map__initial_value(void *map, _Out_ size_t *psize)'),
    mapUpdate: lib.func(
      'int bpf_map__update_elem(const void *map, const void *key, size_t key_sz, const void *value, size_t value_sz, uint64_t flags)',
    ),
    mapLookup: lib.func(
      'int bpf_map__lookup_elem(const void *map, const void *key, size_t key_sz, void *value, size_t value_sz, uint64_t flags)',
    ),
    mapDelete: lib.func('int bpf_map__delete_elem(const void *map, const void *key, size_t key_sz, uint64_t flags)'),
    btfFindByNameKind: lib.func('int32_t btf__find_by_name_kind(const void *btf, const char *name, uint32_t kind)'),
    btfTypeById: lib.func('const void *btf__type_by_id(const void *btf, uint32_t id)'),
    btfNameByOffset: lib.func('const char *btf__name_by_offset(const void *btf, uint32_t offset)'),
    numPossibleCpus: lib.func('int libbpf_num_possible_cpus(void)'),
    ringNew: lib.func('ring_buffer__new', 'void *', ['int', koffi.pointer(sampleFnType), 'void *', 'void *']),
    ringConsume: lib.func('int ring_buffer__consume(void *rb)'),
    ringEpollFd: lib.func('int ring_buffer__epoll_fd(const void *rb)'),
    ringFree: lib.func('void ring_buffer__free(void *rb)'),
    sampleFnType,
    strerror: libc.func('const char *strerror(int errnum)'),
    memcpy: libc.func('void *memcpy(void *dst, const void *src, size_t n)'),
    epollWait: libc.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)'),
    epollCtl: libc.func('int epoll_ctl(int epfd, int op, int fd, void *event)'),
    eventfd: libc.func('int eventfd(unsigned int initval, int flags)'),
    write: libc.func('intptr_t write(int fd, const void *buf, size_t count)'),
    close: libc.func('int close(int fd)'),
    log,
  };
  return nativeSingleton;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** "No such process (errno 3)". */
function errnoText(n: Native, errno: number): string {
  const e = Math.abs(errno);
  return `${(n.strerror(e) as string | null) ?? 'unknown error'} (errno ${e})`;
}

/** The errno of a failed pointer-returning libbpf call: errno, else libbpf_get_error(NULL). */
function pointerErrno(n: Native, errno: number): number {
  if (errno !== 0) return errno;
  const e = Number(n.getError(null) as number | bigint);
  return e !== 0 ? Math.abs(e) : 0;
}

/** Builds the error; libbpf's own messages for this call go into `cause`. */
function bpfError(n: Native, code: ErrorCode, message: string, extra?: { errno?: number }): SpanbridgeError {
  const lines = n.log.take();
  const cause = lines.length > 0 ? new Error(lines.join('\n')) : undefined;
  const err = new SpanbridgeError(code, message, cause ? { cause } : undefined);
  if (extra?.errno !== undefined) Object.defineProperty(err, 'errno', { value: extra.errno, enumerable: true });
  return err;
}

// ---------------------------------------------------------------------------------------------
// Backend

export function createLibbpfBackend(options: LibbpfBackendOptions = {}): BpfBackend {
  const n = loadNative();
  const cfg: Required<LibbpfBackendOptions> = {
    ringWait: options.ringWait ?? ringWaitFromEnv() ?? 'uv-poll',
    waitTimeoutMs: options.waitTimeoutMs ?? 200,
    consumeTurnMs: options.consumeTurnMs ?? 5,
    pollIntervalMs: options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
  };
  let cpus: number | undefined;
  const possibleCpus = (): number => {
    if (cpus === undefined) {
      const r = n.numPossibleCpus() as number;
      if (r <= 0) throw new SpanbridgeError('ERR_BPF_MAP', `possible cpus: ${errnoText(n, r)}`);
      cpus = r;
    }
    return cpus;
  };
  const poller = new RingPoller(cfg.pollIntervalMs);
  return {
    open: (path, openOptions) => LibbpfObject.open(n, cfg, poller, possibleCpus, path, openOptions ?? {}),
    possibleCpus,
  };
}

class LibbpfObject implements BpfObject {
  private ptr: Ptr;
  private loaded = false;
  private readonly links: BpfLink[] = [];
  private readonly rings: LibbpfRingBuffer[] = [];
  private readonly programs = new Map<string, LibbpfProgram>();
  private readonly maps = new Map<string, LibbpfMap>();
  private closing: Promise<void> | undefined;
  /** Pending link detaches; close() waits for them before freeing the object. */
  private linkDestroys: Promise<void> = Promise.resolve();
  private readonly untrack: () => void;

  private constructor(
    private readonly n: Native,
    private readonly cfg: Required<LibbpfBackendOptions>,
    private readonly poller: RingPoller,
    readonly possibleCpus: () => number,
    readonly path: string,
    ptr: bigint,
  ) {
    this.ptr = ptr;
    this.untrack = trackOpenObject(this);
  }

  static open(
    n: Native,
    cfg: Required<LibbpfBackendOptions>,
    poller: RingPoller,
    possibleCpus: () => number,
    path: string,
    options: OpenOptions,
  ): LibbpfObject {
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
    } catch (err) {
      n.objectClose(ptr);
      throw err;
    }
    n.log.take();
    return new LibbpfObject(n, cfg, poller, possibleCpus, path, ptr);
  }

  /** The live object pointer; throws `code` once the object is closed. */
  handle(code: ErrorCode, what: string): bigint {
    if (this.ptr === null || this.closing) throw new SpanbridgeError(code, `${what}: object ${this.path} is closed`);
    return this.ptr;
  }

  isLoaded(): boolean {
    return this.loaded;
  }

  load(): void {
    const obj = this.handle('ERR_BPF_LOAD', `load ${this.path}`);
    if (this.loaded) return;
    const n = this.n;
    // One log buffer shared by every program: load stops at the first program the verifier
    // rejects, and libbpf only asks for a log (level 1) when a load fails, so after a failure
    // the buffer holds exactly the failing program's log.
    const logBuf = koffi.alloc('char', LOG_BUF_SIZE) as bigint;
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
      const err = new SpanbridgeError('ERR_BPF_LOAD', msg, libbpfLines.length ? { cause: new Error(libbpfLines.join('\n')) } : undefined);
      Object.defineProperty(err, 'errno', { value: errno, enumerable: true });
      Object.defineProperty(err, 'verifierLog', { value: verifierLog, enumerable: false });
      throw err;
    } finally {
      // libbpf keeps the pointer (and refuses to change it once loaded) but only reads it during
      // bpf_object__load, which it never runs twice; so the buffer can go now.
      koffi.free(logBuf);
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

/** Reads the .rodata DATASEC layout from the object's BTF and writes the values by name. */
function setRodata(n: Native, obj: bigint, path: string, values: NonNullable<OpenOptions['rodata']>): void {
  const fail = (why: string): never => {
    throw bpfError(n, 'ERR_BPF_OPEN', `set rodata in ${path}: ${why}`);
  };
  const map = n.findMap(obj, '.rodata') as Ptr;
  if (map === null) return fail('object has no .rodata (no const volatile globals)');
  const sizeOut = [0];
  const image = n.mapInitialValue(map, sizeOut) as Ptr;
  const imageSize = sizeOut[0] ?? 0;
  if (image === null || imageSize === 0) return fail('no initial value for .rodata');
  const btf = n.objectBtf(obj) as Ptr;
  if (btf === null) return fail('object has no BTF (build with clang -g)');
  const secId = n.btfFindByNameKind(btf, '.rodata', BTF_KIND_DATASEC) as number;
  if (secId <= 0) return fail('no .rodata DATASEC in BTF');
  const readBytes = (ptr: bigint, len: number): Buffer => {
    const b = Buffer.allocUnsafe(len);
    n.memcpy(b, ptr, len);
    return b;
  };
  const secPtr = n.btfTypeById(btf, secId) as Ptr;
  if (secPtr === null) return fail(`BTF type ${secId} missing`);
  const header = parseBtfTypeHeader(readBytes(secPtr, BTF_TYPE_HEADER_SIZE));
  const infos = parseVarSecinfos(readBytes(secPtr, BTF_TYPE_HEADER_SIZE + header.vlen * BTF_VAR_SECINFO_SIZE), header.vlen);
  const vars: RodataVar[] = infos.map((info) => {
    const varPtr = n.btfTypeById(btf, info.type) as Ptr;
    if (varPtr === null) return fail(`BTF type ${info.type} missing`);
    const varHeader = parseBtfTypeHeader(readBytes(varPtr, BTF_TYPE_HEADER_SIZE));
    const name = (n.btfNameByOffset(btf, varHeader.nameOff) as string | null) ?? '';
    return { name, offset: info.offset, size: info.size };
  });
  // A Buffer over libbpf's own .rodata image (no copy): what we write is what gets loaded.
  const view = Buffer.from(koffi.view(image, imageSize));
  writeRodata(path, view, vars, values);
}

class LibbpfProgram implements BpfProgram {
  constructor(
    private readonly n: Native,
    private readonly obj: LibbpfObject,
    readonly name: string,
    private readonly ptr: bigint,
  ) {}

  attachUprobe(target: UprobeTarget): BpfLink {
    const pid = target.pid ?? -1;
    const where = `${target.binaryPath}+0x${target.offset.toString(16)}${pid >= 0 ? ` pid ${pid}` : ''}`;
    const what = `attach uprobe ${where}`;
    if (!Number.isSafeInteger(target.offset) || target.offset < 0) {
      throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: offset must be a non-negative integer`);
    }
    if (!Number.isInteger(pid) || pid === 0 || pid < -1) {
      throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: pid must be a positive process id or -1 (any process)`);
    }
    this.checkAttachable(what);
    this.n.log.begin();
    // retprobe=false: uretprobes are never offered (they corrupt Go stacks).
    const link = this.n.attachUprobe(this.ptr, false, pid, target.binaryPath, target.offset) as Ptr;
    return this.adopt(link, koffi.errno(), what, `uprobe:${target.binaryPath}+0x${target.offset.toString(16)}${pid >= 0 ? ` pid=${pid}` : ''}`);
  }

  attachTracepoint(category: string, name: string): BpfLink {
    const what = `attach tracepoint ${category}/${name}`;
    this.checkAttachable(what);
    this.n.log.begin();
    const link = this.n.attachTracepoint(this.ptr, category, name) as Ptr;
    return this.adopt(link, koffi.errno(), what, `tracepoint:${category}/${name}`);
  }

  /** A raw tracepoint (BPF_PROG_TYPE_RAW_TRACEPOINT): its arguments are the kernel's own, e.g. tasks. */
  attachRawTracepoint(name: string): BpfLink {
    const what = `attach raw tracepoint ${name}`;
    this.checkAttachable(what);
    this.n.log.begin();
    const link = this.n.attachRawTracepoint(this.ptr, name) as Ptr;
    return this.adopt(link, koffi.errno(), what, `raw_tracepoint:${name}`);
  }

  /** sock_ops (and other cgroup programs) on a cgroup v2 directory, as a BPF link. */
  attachCgroup(cgroupPath: string): BpfLink {
    const what = `attach ${this.name} to cgroup ${cgroupPath}`;
    this.checkAttachable(what);
    const fd = this.n.open(cgroupPath, O_RDONLY | O_DIRECTORY) as number;
    if (fd < 0) {
      const errno = koffi.errno();
      throw bpfError(this.n, 'ERR_BPF_ATTACH', `${what}: open: ${errnoText(this.n, errno)}`, { errno });
    }
    try {
      this.n.log.begin();
      const link = this.n.attachCgroup(this.ptr, fd) as Ptr;
      return this.adopt(link, koffi.errno(), what, `cgroup:${cgroupPath} ${this.name}`);
    } finally {
      this.n.close(fd); // the link holds its own reference to the cgroup
    }
  }

  /** An sk_msg program on a SOCKHASH/SOCKMAP of the same object (BPF_SK_MSG_VERDICT). */
  attachSkMsg(mapName: string): BpfLink {
    const what = `attach ${this.name} to sockmap ${mapName}`;
    this.checkAttachable(what);
    const map = this.obj.map(mapName) as LibbpfMap;
    if (map.type !== BPF_MAP_TYPE_SOCKMAP && map.type !== BPF_MAP_TYPE_SOCKHASH) {
      throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: map type ${map.type} is not a SOCKMAP or SOCKHASH`);
    }
    const progFd = this.n.programFd(this.ptr) as number;
    const mapFd = this.n.mapFd(map.ptr) as number;
    if (progFd < 0 || mapFd < 0) throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: no file descriptor (not loaded?)`);
    const r = this.n.progAttach(progFd, mapFd, BPF_SK_MSG_VERDICT, 0) as number;
    if (r < 0) throw bpfError(this.n, 'ERR_BPF_ATTACH', `${what}: ${errnoText(this.n, r)}`, { errno: Math.abs(r) });
    const n = this.n;
    let attached = true;
    const l: BpfLink = {
      description: `sk_msg:${mapName} ${this.name}`,
      destroy(): void {
        if (!attached) return;
        attached = false;
        n.progDetach2(progFd, mapFd, BPF_SK_MSG_VERDICT);
      },
    };
    this.obj.adoptLink(l);
    return l;
  }

  private checkAttachable(what: string): void {
    this.obj.handle('ERR_BPF_ATTACH', what);
    if (!this.obj.isLoaded()) throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: object ${this.obj.path} is not loaded`);
    if (!(this.n.programAutoload(this.ptr) as boolean)) {
      throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: program ${this.name} is disabled (not loaded)`);
    }
  }

  private adopt(link: Ptr, errnoAfter: number, what: string, description: string): BpfLink {
    if (link === null) {
      const errno = pointerErrno(this.n, errnoAfter);
      throw bpfError(this.n, 'ERR_BPF_ATTACH', `${what}: ${errnoText(this.n, errno)}`, { errno });
    }
    this.n.log.take();
    const l = new LibbpfLink(this.n, this.obj, description, link);
    this.obj.adoptLink(l);
    return l;
  }
}

/**
 * A link owned by its object. destroy() returns at once; bpf_link__destroy runs on a libuv worker
 * thread, because detaching waits for the kernel's RCU grace periods: measured 70-180 ms per
 * uprobe or tracepoint link here, which would stall every timer and ring buffer if done on the
 * main thread. Destroys of one object are chained (run one after another, in call order), so
 * close() still detaches in reverse creation order and uses one worker thread at a time.
 */
class LibbpfLink implements BpfLink {
  private ptr: Ptr;

  constructor(
    private readonly n: Native,
    private readonly obj: LibbpfObject,
    readonly description: string,
    ptr: bigint,
  ) {
    this.ptr = ptr;
  }

  destroy(): void {
    if (this.ptr === null) return;
    const p = this.ptr;
    this.ptr = null;
    this.obj.chainDestroy(
      () =>
        new Promise<void>((resolve) => {
          this.n.linkDestroy.async(p, () => resolve());
        }),
    );
  }
}

class LibbpfMap implements BpfMap {
  readonly keySize: number;
  readonly valueSize: number;
  readonly type: number;

  constructor(
    private readonly n: Native,
    private readonly obj: LibbpfObject,
    readonly name: string,
    readonly ptr: bigint,
  ) {
    this.keySize = n.mapKeySize(ptr) as number;
    this.valueSize = n.mapValueSize(ptr) as number;
    this.type = n.mapType(ptr) as number;
  }

  private get perCpu(): boolean {
    return PER_CPU_MAP_TYPES.has(this.type);
  }

  /** Kernel layout of a per-CPU value: one 8-byte-aligned slot per possible CPU. */
  private get perCpuStride(): number {
    return Math.ceil(this.valueSize / 8) * 8;
  }

  private check(op: string, key: Buffer): string {
    const what = `${op} map ${this.name}`;
    this.obj.handle('ERR_BPF_MAP', what);
    if (!this.obj.isLoaded()) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: object ${this.obj.path} is not loaded`);
    if (key.length !== this.keySize) {
      throw new SpanbridgeError('ERR_BPF_MAP', `${what}: key is ${key.length} bytes, map wants ${this.keySize}`);
    }
    return what;
  }

  /**
   * For per-CPU maps `value` is either one value (written to every CPU) or the full kernel
   * layout (possibleCpus() slots of round_up(valueSize, 8) bytes).
   */
  /**
   * Puts the socket that process `pid` has open as `fd` into this SOCKHASH/SOCKMAP (a copy of the
   * fd is taken with pidfd_getfd, Linux 5.6+, and closed again), keyed by its socket cookie.
   * Returns the cookie.
   */
  insertSocketOf(pid: number, fd: number): bigint {
    const what = `insert socket ${pid}/${fd} into map ${this.name}`;
    this.obj.handle('ERR_BPF_MAP', what);
    if (this.type !== BPF_MAP_TYPE_SOCKMAP && this.type !== BPF_MAP_TYPE_SOCKHASH) {
      throw new SpanbridgeError('ERR_BPF_MAP', `${what}: map type ${this.type} is not a SOCKMAP or SOCKHASH`);
    }
    const n = this.n;
    const pidfd = Number(n.syscall(SYS_PIDFD_OPEN, 'int', pid, 'unsigned int', 0));
    if (pidfd < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: pidfd_open: ${errnoText(n, koffi.errno())}`);
    let sfd = -1;
    try {
      sfd = Number(n.syscall(SYS_PIDFD_GETFD, 'int', pidfd, 'int', fd, 'unsigned int', 0));
      if (sfd < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: pidfd_getfd: ${errnoText(n, koffi.errno())}`);
      const cookie = [0n];
      const len = [8];
      if ((n.getsockopt(sfd, SOL_SOCKET, SO_COOKIE, cookie, len) as number) < 0) {
        throw new SpanbridgeError('ERR_BPF_MAP', `${what}: SO_COOKIE: ${errnoText(n, koffi.errno())}`);
      }
      const key = Buffer.alloc(8);
      key.writeBigUInt64LE(BigInt(cookie[0]));
      const value = Buffer.alloc(this.valueSize);
      if (this.valueSize === 8) value.writeBigUInt64LE(BigInt(sfd));
      else value.writeUInt32LE(sfd);
      const r = n.mapUpdate(this.ptr, key, key.length, value, value.length, 0) as number;
      if (r < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: ${errnoText(n, r)}`);
      return BigInt(cookie[0]);
    } finally {
      if (sfd >= 0) n.close(sfd);
      n.close(pidfd);
    }
  }

  update(key: Buffer, value: Buffer): void {
    const what = this.check('update', key);
    let v = value;
    if (this.perCpu) {
      const cpus = this.obj.possibleCpus();
      const stride = this.perCpuStride;
      if (value.length === this.valueSize) {
        v = Buffer.alloc(cpus * stride);
        for (let c = 0; c < cpus; c++) value.copy(v, c * stride);
      } else if (value.length !== cpus * stride) {
        throw new SpanbridgeError(
          'ERR_BPF_MAP',
          `${what}: per-CPU value is ${value.length} bytes, want ${this.valueSize} or ${cpus}x${stride}`,
        );
      }
    } else if (value.length !== this.valueSize) {
      throw new SpanbridgeError('ERR_BPF_MAP', `${what}: value is ${value.length} bytes, map wants ${this.valueSize}`);
    }
    const r = this.n.mapUpdate(this.ptr, key, key.length, v, v.length, 0) as number;
    if (r < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: ${errnoText(this.n, r)}`);
  }

  lookup(key: Buffer): Buffer | null {
    const what = this.check('lookup', key);
    if (this.perCpu) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: per-CPU map, use lookupPerCpu`);
    const out = Buffer.alloc(this.valueSize);
    const r = this.n.mapLookup(this.ptr, key, key.length, out, out.length, 0) as number;
    if (r === -2) return null; // ENOENT
    if (r < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: ${errnoText(this.n, r)}`);
    return out;
  }

  delete(key: Buffer): boolean {
    const what = this.check('delete', key);
    const r = this.n.mapDelete(this.ptr, key, key.length, 0) as number;
    if (r === -2) return false;
    if (r < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: ${errnoText(this.n, r)}`);
    return true;
  }

  lookupPerCpu(key: Buffer): Buffer[] | null {
    const what = this.check('lookup', key);
    if (!this.perCpu) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: not a per-CPU map (type ${this.type})`);
    const cpus = this.obj.possibleCpus();
    const stride = this.perCpuStride;
    const out = Buffer.alloc(cpus * stride);
    const r = this.n.mapLookup(this.ptr, key, key.length, out, out.length, 0) as number;
    if (r === -2) return null;
    if (r < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: ${errnoText(this.n, r)}`);
    const values: Buffer[] = [];
    for (let c = 0; c < cpus; c++) values.push(out.subarray(c * stride, c * stride + this.valueSize));
    return values;
  }
}

// ---------------------------------------------------------------------------------------------
// Ring buffers

/**
 * The backend's periodic consume: one unref'd interval timer while any ring buffer runs, which
 * gives every running ring a consume turn whether or not the kernel woke us. Programs that skip
 * wakeups while little data waits (bpf/ring_wakeup.h) rely on it: a record waits at most one
 * period. One timer for all rings, so an idle agent wakes once per period, not once per ring.
 */
class RingPoller {
  private readonly rings = new Set<LibbpfRingBuffer>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs: number) {}

  add(ring: LibbpfRingBuffer): void {
    if (!(this.intervalMs > 0)) return;
    this.rings.add(ring);
    if (this.timer) return;
    this.timer = setInterval(() => {
      for (const r of [...this.rings]) r.poll();
    }, this.intervalMs);
    this.timer.unref(); // never what keeps the agent alive
  }

  remove(ring: LibbpfRingBuffer): void {
    this.rings.delete(ring);
    if (this.rings.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

/**
 * One libbpf ring_buffer manager for one map. States: created -> running (start) -> stopping ->
 * closing -> closed. Invariants: ring_buffer__consume only runs on the main thread and never
 * while the manager is being freed; ring_buffer__free only runs when no epoll_wait is in flight.
 * Records are consumed when the kernel wakes us (epoll: libuv poll or a worker's epoll_wait),
 * on the backend's poll period (RingPoller), and once more at a draining close.
 */
class LibbpfRingBuffer implements RingBufferSource {
  delivered = 0;
  /** Records delivered by the periodic consume (the kernel had not woken us for them). */
  deliveredByPoll = 0;
  /** Records delivered by the final read-out of a draining close. */
  deliveredAtClose = 0;
  /** Handler exceptions caught (and counted, never rethrown into libbpf). */
  handlerErrors = 0;
  lastHandlerError: unknown = undefined;
  /** ring_buffer__consume / epoll_wait failures (other than EINTR). */
  waitErrors = 0;
  /** Longest single consume turn on the main thread, in ms (what this module can block the loop). */
  maxTurnMs = 0;

  private rb: Ptr;
  private readonly callback: bigint;
  private readonly epollFd: number;
  /** An eventfd in the ring's epoll set: written on close so an in-flight epoll_wait returns now. */
  private readonly wakeFd: number;
  private readonly events: bigint;
  /** 'stopping': no more deliveries, resources kept until close() (links are detached first). */
  private state: 'created' | 'running' | 'stopping' | 'closing' | 'closed' = 'created';
  /** Starts as configured; a ring buffer whose libuv poll fails continues in 'worker' mode. */
  private mode: RingWaitMode;
  private waiting = false;
  private consuming = false;
  /** Inside drainRemaining(): deliver everything, no turn limit, whatever the state. */
  private readingOut = false;
  private drainScheduled = false;
  private pollScheduled = false;
  /** start() was called: only then does a draining close deliver what is left. */
  private started = false;
  private turnDeadline = 0;
  private turnCount = 0;
  private turnOver = false;
  private uvPoll: koffiNode.PollHandle | undefined;
  private closed: Promise<void> | undefined;
  private resolveClosed: (() => void) | undefined;

  constructor(
    private readonly n: Native,
    private readonly cfg: Required<LibbpfBackendOptions>,
    private readonly poller: RingPoller,
    readonly name: string,
    mapFd: number,
    private readonly onRecord: RecordHandler,
  ) {
    this.mode = cfg.ringWait;
    this.callback = koffi.register(this.onSample, koffi.pointer(n.sampleFnType));
    n.log.begin();
    const rb = n.ringNew(mapFd, this.callback, null, null) as Ptr;
    if (rb === null) {
      const errno = pointerErrno(n, koffi.errno());
      koffi.unregister(this.callback);
      throw bpfError(n, 'ERR_BPF_MAP', `ring buffer ${name}: ${errnoText(n, errno)}`, { errno });
    }
    n.log.take();
    this.rb = rb;
    this.epollFd = n.ringEpollFd(rb) as number;
    this.events = koffi.alloc('uint8_t', EPOLL_EVENT_SIZE * 2) as bigint;
    this.wakeFd = n.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) as number;
    if (this.wakeFd >= 0) {
      // epoll_event {u32 events; u64 data} packed; data = 0xffffffff, never a ring index.
      const ev = Buffer.alloc(EPOLL_EVENT_SIZE);
      ev.writeUInt32LE(EPOLLIN, 0);
      ev.writeUInt32LE(0xffffffff, 4);
      n.epollCtl(this.epollFd, EPOLL_CTL_ADD, this.wakeFd, ev);
    }
  }

  start(): void {
    if (this.state !== 'created') return;
    this.state = 'running';
    this.started = true;
    this.poller.add(this);
    if (this.mode === 'uv-poll') {
      // Readable when the ring has data (level-triggered). Consume from setImmediate rather than
      // inside koffi's poll callback (a plain N-API call outside any callback scope), so that
      // promise jobs queued by handlers run right after each record batch.
      // koffi's typings say (events) => void; it actually passes (status, events).
      const onPoll = (status: unknown): void => {
        if (typeof status === 'number' && status < 0) {
          this.waitErrors++;
          this.uvPoll?.close();
          this.uvPoll = undefined;
          this.mode = 'worker';
          this.drain();
          return;
        }
        this.scheduleDrain();
      };
      this.uvPoll = koffi.node.poll(this.epollFd, { readable: true }, onPoll as (ev: koffiNode.PollEvents) => void);
    } else {
      this.drain(); // records may already be waiting
    }
  }

  /** Stops delivering records at once (even mid-consume); close() frees everything later. */
  stopDelivery(): void {
    if (this.state !== 'created' && this.state !== 'running') return;
    this.state = 'stopping';
    this.poller.remove(this);
    this.uvPoll?.stop(); // level-triggered: would otherwise fire every loop turn while data remains
  }

  /**
   * Reads the ring empty now, synchronously, delivering every record (no turn limit). For a
   * draining close, once the object's links are gone so nothing new arrives. Not while a consume
   * is running (a handler that closes its own object mid-consume keeps the stop-at-once rule).
   */
  drainRemaining(): void {
    if (!this.started || this.rb === null || this.consuming || this.state === 'closing' || this.state === 'closed') return;
    this.consuming = true;
    this.readingOut = true;
    const turnStart = performance.now();
    try {
      const r = this.n.ringConsume(this.rb) as number;
      if (r < 0) this.waitErrors++;
    } finally {
      this.consuming = false;
      this.readingOut = false;
      this.maxTurnMs = Math.max(this.maxTurnMs, performance.now() - turnStart);
    }
  }

  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.state = 'closing';
    this.poller.remove(this);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    if (this.waiting && this.wakeFd >= 0) {
      const one = Buffer.alloc(8);
      one.writeBigUInt64LE(1n);
      this.n.write(this.wakeFd, one, 8);
    }
    this.finishCloseIfIdle();
    return this.closed;
  }

  /** The backend's periodic consume: one bounded turn, continued right away while records remain. */
  poll(): void {
    if (this.state !== 'running' || this.rb === null || this.consuming) return;
    const before = this.delivered;
    const more = this.consumeTurn();
    this.deliveredByPoll += this.delivered - before;
    if (more && this.state === 'running' && !this.pollScheduled) {
      // Below the wakeup threshold epoll may never report these: continue without waiting a period.
      this.pollScheduled = true;
      setImmediate(() => {
        this.pollScheduled = false;
        this.poll();
      });
    }
  }

  /** libbpf's ring_buffer_sample_fn: runs on the main thread, inside ring_buffer__consume. */
  private readonly onSample = (_ctx: Ptr, data: bigint, size: number | bigint): number => {
    const len = Number(size);
    // Copy out: the ring's memory is handed back to the kernel when we return. memcpy through
    // koffi is ~8x cheaper than creating an external ArrayBuffer (koffi.view) per record.
    const rec = Buffer.allocUnsafe(len);
    this.n.memcpy(rec, data, len);
    this.delivered++;
    if (this.readingOut) this.deliveredAtClose++;
    try {
      this.onRecord(rec);
    } catch (err) {
      this.handlerErrors++;
      this.lastHandlerError = err;
    }
    if (this.readingOut) return 0;
    if (this.state !== 'running') {
      this.turnOver = true;
      return -1; // stop this consume (record already accounted for)
    }
    if ((++this.turnCount & 31) === 0 && performance.now() > this.turnDeadline) {
      this.turnOver = true;
      return -1; // the record is consumed; libbpf stops and returns, we yield to the event loop
    }
    return 0;
  };

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  /**
   * One bounded consume turn on the main thread. Returns true when the turn ended with records
   * left (time limit) and the ring buffer still runs.
   */
  private consumeTurn(): boolean {
    if (this.rb === null) return false;
    this.consuming = true;
    this.turnOver = false;
    this.turnCount = 0;
    const turnStart = performance.now();
    this.turnDeadline = turnStart + this.cfg.consumeTurnMs;
    let r = 0;
    try {
      r = this.n.ringConsume(this.rb) as number;
    } finally {
      this.consuming = false;
      this.maxTurnMs = Math.max(this.maxTurnMs, performance.now() - turnStart);
    }
    if (this.state !== 'running') {
      this.finishCloseIfIdle();
      return false;
    }
    if (r < 0 && !this.turnOver) this.waitErrors++;
    return this.turnOver;
  }

  /** A consume turn after a wake-up (or in 'worker' mode), then wait again (or yield and continue). */
  private drain(): void {
    if (this.state !== 'running' || this.rb === null) return;
    const more = this.consumeTurn();
    if (this.state !== 'running') return;
    if (this.mode === 'uv-poll') return; // libuv calls back while data remains
    if (more) {
      this.scheduleDrain(); // more records right away; let timers and I/O run first
      return;
    }
    this.waitForData();
  }

  /** 'worker' mode: epoll_wait on a libuv threadpool thread; the main thread stays free. */
  private waitForData(): void {
    this.waiting = true;
    this.n.epollWait.async(this.epollFd, this.events, 2, this.cfg.waitTimeoutMs, (err: unknown, ready: number) => {
      this.waiting = false;
      if (this.state !== 'running') {
        this.finishCloseIfIdle();
        return;
      }
      if (err || ready < 0) {
        if (err || koffi.errno() !== 4 /* EINTR */) this.waitErrors++;
        // Back off a little on unexpected errors instead of spinning.
        setTimeout(() => this.drain(), err ? 50 : 0);
        return;
      }
      this.drain();
    });
  }

  private finishCloseIfIdle(): void {
    if (this.state !== 'closing' || this.waiting || this.consuming || this.rb === null) return;
    this.uvPoll?.close();
    this.uvPoll = undefined;
    this.n.ringFree(this.rb); // closes the epoll fd and unmaps the ring
    this.rb = null;
    if (this.wakeFd >= 0) this.n.close(this.wakeFd);
    koffi.free(this.events);
    koffi.unregister(this.callback);
    this.state = 'closed';
    this.resolveClosed?.();
  }
}
