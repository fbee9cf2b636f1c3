/**
 * The native table: libbpf.so.1 and the few libc functions the binding needs, bound through koffi
 * once per process, plus the capture of libbpf's printed diagnostics.
 *
 * libbpf 1.1.2 (Debian 12) conventions relied on: functions returning pointers give NULL and set
 * errno; functions returning int give -errno; libbpf's own diagnostics go through a print callback,
 * which is captured so errors can carry them (as the `cause`).
 */
import koffi, { type LibraryHandle } from 'koffi';
import { NotSupportedError } from '../../errors';

/** A C pointer as koffi 3 represents it (BigInt), or null for NULL. */
export type Ptr = bigint | null;

const LIBBPF_LINES_KEPT = 200;
const SC_PAGESIZE = 30; // glibc's _SC_PAGESIZE

/** A bound C function; koffi functions are untyped, so every call site casts its result. */
type KFn = ReturnType<LibraryHandle['func']>;

export interface Native {
  readonly openFile: KFn;
  readonly objectLoad: KFn;
  readonly objectClose: KFn;
  readonly findProgram: KFn;
  readonly findMap: KFn;
  readonly nextProgram: KFn;
  readonly nextMap: KFn;
  readonly mapName: KFn;
  readonly mapPinPath: KFn;
  readonly mapMaxEntries: KFn;
  readonly mapFlags: KFn;
  readonly mapExtra: KFn;
  readonly mapCreate: KFn;
  readonly objPin: KFn;
  readonly objectBtf: KFn;
  readonly programSetAutoload: KFn;
  readonly mapSetMaxEntries: KFn;
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
  readonly setsockopt: KFn;
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
  /** libbpf's feature probes: each loads one minimal program (or creates one map) and says whether the kernel took it. */
  readonly probeProgType: KFn;
  readonly probeHelper: KFn;
  readonly probeMapType: KFn;
  /** bpf_obj_get_info_by_fd (a ring's size from its fd). */
  readonly objGetInfoByFd: KFn;
  /** The page size: a ring buffer's consumer and producer pages (RingMapping). */
  readonly pageSize: number;
  readonly mmap: KFn;
  readonly munmap: KFn;
  readonly strerror: KFn;
  readonly mallocTrim: KFn;
  readonly memcpy: KFn;
  readonly epollCreate1: KFn;
  readonly epollWait: KFn;
  readonly epollCtl: KFn;
  readonly eventfd: KFn;
  readonly write: KFn;
  readonly close: KFn;
  /** libbpf warnings/info lines since the last `beginCapture()`. */
  readonly log: LibbpfLogCapture;
}

/**
 * Collects libbpf's printed messages so a failing call can attach them to its error.
 *
 * While an object loads on a worker thread (LibbpfObject.loadAsync) libbpf's print hook is unset:
 * a JS callback called from another thread runs on the main thread, and the worker waits for it,
 * once per message (~4,800 debug lines for the agent's objects), so a busy main thread would
 * stall every load. A failed asynchronous load is repeated synchronously, with the hook, for its
 * diagnostics.
 */
class LibbpfLogCapture {
  private lines: string[] = [];
  /** Copy every message to stderr (LibbpfBackendOptions.libbpfDebug); also keeps the hook set while muted. */
  debug = false;
  private muted = 0;

  constructor(private readonly setHook: (on: boolean) => void) {}

  /** Unsets libbpf's print hook until as many unmute() calls (nested: one per load in flight). */
  mute(): void {
    if (this.muted++ === 0 && !this.debug) this.setHook(false);
  }

  unmute(): void {
    if (this.muted > 0 && --this.muted === 0) this.setHook(true);
  }

  begin(): void {
    this.lines = [];
  }

  push(level: number, text: string): void {
    if (this.debug) process.stderr.write(text);
    if (level > 1) return; // LIBBPF_DEBUG lines: only copied to stderr (debug.libbpf)
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

export function loadNative(): Native {
  if (nativeSingleton) return nativeSingleton;
  let lib: LibraryHandle;
  let libc: LibraryHandle;
  try {
    // A foreign call made with .async runs on koffi's own stack for it, 128 KiB by default;
    // bpf_object__load (CO-RE relocation, BTF) ran with 64 KiB here: 512 KiB leaves a margin.
    // Settable only before the first library is loaded (a second module registry, as in jest,
    // finds it set already).
    koffi.config({ ...koffi.config(), async_stack_size: 512 * 1024 });
  } catch {
    // already fixed for this process
  }
  try {
    lib = koffi.load('libbpf.so.1');
    libc = koffi.load('libc.so.6');
  } catch (err) {
    throw new NotSupportedError('libbpf', 'libbpf.so.1 (Debian/Ubuntu package libbpf1)', { cause: err });
  }
  // Unnamed prototypes: koffi's type names are process-global, and this module may be evaluated
  // more than once per process (jest module registries).
  const printFnType = koffi.proto('int', ['int', 'const char *', 'void *']);
  const setPrint = lib.func('libbpf_set_print', 'void *', [koffi.pointer(printFnType)]);
  // The hook (printCb, below) is only set or unset once both exist.
  const log = new LibbpfLogCapture((on) => setPrint(on ? printCb : null));
  const vsnprintf = libc.func('int vsnprintf(void *buf, size_t size, const char *fmt, void *ap)');
  const printBuf = Buffer.alloc(8192);
  // libbpf_print_fn_t gets a va_list; on x86-64 that is a pointer to __va_list_tag, which
  // vsnprintf accepts as-is. Registered for the whole process and never unregistered.
  const printCb = koffi.register((level: number, fmt: string, ap: Ptr): number => {
    const n = vsnprintf(printBuf, printBuf.length, fmt, ap) as number;
    log.push(level, printBuf.toString('utf8', 0, Math.max(0, Math.min(n, printBuf.length - 1))));
    return 0;
  }, koffi.pointer(printFnType));
  setPrint(printCb);

  nativeSingleton = {
    openFile: lib.func('void *bpf_object__open_file(const char *path, const void *opts)'),
    objectLoad: lib.func('int bpf_object__load(void *obj)'),
    objectClose: lib.func('void bpf_object__close(void *obj)'),
    findProgram: lib.func('void *bpf_object__find_program_by_name(const void *obj, const char *name)'),
    findMap: lib.func('void *bpf_object__find_map_by_name(const void *obj, const char *name)'),
    nextProgram: lib.func('void *bpf_object__next_program(const void *obj, void *prog)'),
    nextMap: lib.func('void *bpf_object__next_map(const void *obj, const void *map)'),
    mapName: lib.func('const char *bpf_map__name(const void *map)'),
    mapPinPath: lib.func('const char *bpf_map__pin_path(const void *map)'),
    mapMaxEntries: lib.func('uint32_t bpf_map__max_entries(const void *map)'),
    mapFlags: lib.func('uint32_t bpf_map__map_flags(const void *map)'),
    mapExtra: lib.func('uint64_t bpf_map__map_extra(const void *map)'),
    // opts: struct bpf_map_create_opts, built as bytes (pins.ts)
    mapCreate: lib.func(
      'int bpf_map_create(int type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const void *opts)',
    ),
    objPin: lib.func('int bpf_obj_pin(int fd, const char *path)'),
    objectBtf: lib.func('void *bpf_object__btf(const void *obj)'),
    programSetAutoload: lib.func('int bpf_program__set_autoload(void *prog, bool autoload)'),
    mapSetMaxEntries: lib.func('int bpf_map__set_max_entries(void *map, uint32_t max_entries)'),
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
    setsockopt: libc.func('int setsockopt(int fd, int level, int name, const int *value, uint32_t len)'),
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
    probeProgType: lib.func('int libbpf_probe_bpf_prog_type(int prog_type, const void *opts)'),
    probeHelper: lib.func('int libbpf_probe_bpf_helper(int prog_type, int helper_id, const void *opts)'),
    probeMapType: lib.func('int libbpf_probe_bpf_map_type(int map_type, const void *opts)'),
    objGetInfoByFd: lib.func('int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *len)'),
    pageSize: Number(libc.func('long sysconf(int name)')(SC_PAGESIZE)),
    // Pointers come back as BigInt; MAP_FAILED is 2^64 - 1.
    mmap: libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, intptr_t offset)'),
    munmap: libc.func('int munmap(void *addr, size_t length)'),
    strerror: libc.func('const char *strerror(int errnum)'),
    memcpy: libc.func('void *memcpy(void *dst, const void *src, size_t n)'),
    mallocTrim: libc.func('int malloc_trim(size_t pad)'),
    epollCreate1: libc.func('int epoll_create1(int flags)'),
    epollWait: libc.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)'),
    epollCtl: libc.func('int epoll_ctl(int epfd, int op, int fd, void *event)'),
    eventfd: libc.func('int eventfd(unsigned int initval, int flags)'),
    write: libc.func('intptr_t write(int fd, const void *buf, size_t count)'),
    close: libc.func('int close(int fd)'),
    log,
  };
  return nativeSingleton;
}
