/**
 * The small typed BPF API the rest of the agent sees. Only src/bpf/libbpf/ implements it with
 * koffi + libbpf; unit tests use test/fakes/fake-bpf.ts.
 *
 * Lifecycle (as libbpf-bootstrap): open -> set rodata -> choose autoload -> load -> attach ->
 * ring buffers -> poll -> close (links destroyed in reverse order of creation).
 */

export interface OpenOptions {
  /** Values for `const volatile` globals in .rodata, by variable name, set before load. */
  readonly rodata?: Readonly<Record<string, number | bigint | boolean | Buffer>>;
  /** Programs (by function name) not to load, e.g. because this kernel cannot run them. */
  readonly disablePrograms?: readonly string[];
  /**
   * Sizes that replace the compiled-in `max_entries` of maps, by map name, set before load (for a
   * ring buffer: its size in bytes, a power of two and a multiple of the page size).
   */
  readonly maxEntries?: Readonly<Record<string, number>>;
}

export interface UprobeTarget {
  /** Path of the ELF file as the agent can open it (e.g. /proc/<pid>/root/usr/bin/app). */
  readonly binaryPath: string;
  /** File offset of the probed instruction (not the virtual address). */
  readonly offset: number;
  /** Only fire for this process (host pid); -1 or undefined = every process mapping the file. */
  readonly pid?: number;
  /**
   * A uretprobe: fires when the function at `offset` returns. Never for Go code (goroutine stacks
   * move, and the kernel's return trampoline corrupts them); C functions only.
   */
  readonly retprobe?: boolean;
}

export interface BpfLink {
  /** What was attached, for logs and the attach table, e.g. "uprobe:/usr/bin/app+0x1234 pid=7". */
  readonly description: string;
  /**
   * Detaches. Idempotent. Returns at once: the kernel detach (which waits for RCU grace periods)
   * finishes in the background; the owning object's close() waits for it.
   */
  destroy(): void;
}

export interface BpfProgram {
  readonly name: string;
  attachUprobe(target: UprobeTarget): BpfLink;
  attachTracepoint(category: string, name: string): BpfLink;
  /**
   * Attaches a raw tracepoint program (arguments are the kernel's: e.g. the parent and child
   * task of sched_process_fork).
   */
  attachRawTracepoint(name: string): BpfLink;
  /**
   * Attaches a cgroup program (sock_ops, ...) to a cgroup v2 directory, e.g. the root of a
   * cgroup2 mount.
   */
  attachCgroup(cgroupPath: string): BpfLink;
  /**
   * Attaches an sk_msg program to a SOCKHASH/SOCKMAP of the same object (BPF_SK_MSG_VERDICT);
   * destroy() detaches it.
   */
  attachSkMsg(mapName: string): BpfLink;
}

export interface BpfMap {
  readonly name: string;
  readonly keySize: number;
  readonly valueSize: number;
  /** Creates or replaces. Throws SpanbridgeError ERR_BPF_MAP on failure. */
  update(key: Buffer, value: Buffer): void;
  /** Returns null when the key is absent. */
  lookup(key: Buffer): Buffer | null;
  /** Returns false when the key was absent. */
  delete(key: Buffer): boolean;
  /** For per-CPU maps: one value per possible CPU. */
  lookupPerCpu(key: Buffer): Buffer[] | null;
  /**
   * SOCKHASH/SOCKMAP only: puts the socket process `pid` has open as `fd` into the map, keyed by
   * its socket cookie (u64), and returns the cookie. `tcpNoDelay`: also turn Nagle off on it
   * (best effort: the socket is in the map either way).
   */
  insertSocketOf(pid: number, fd: number, options?: { readonly tcpNoDelay?: boolean }): bigint;
}

/**
 * Called once per ring-buffer record, on Node's main thread, with the record IN PLACE: its bytes
 * are `bytes[offset, offset + length)`, where `bytes` covers the ring's mapped memory (or, in
 * tests, a scratch buffer). No copy is made (src/bpf/libbpf/ring-mapping.ts).
 *
 * Lifetime: the bytes are valid only during the call. Once the handler returns, the reader hands
 * the record's space back to the kernel (consumer_pos), which may write the next records over it
 * at any moment. A handler (and anything it calls: decoders, the assemblers) must copy whatever
 * it keeps: strings, numbers and bigints read from the bytes are its own, but a view of them
 * (`subarray`, a Buffer over the same memory, an object that reads them lazily) must never outlive
 * the call. test/fakes/fake-bpf.ts delivers records the same way and overwrites each one after
 * its handler returns, so a view kept past the call shows up as garbage in tests.
 */
export type RecordHandler = (bytes: Buffer, offset: number, length: number) => void;

export interface RingBufferSource {
  /**
   * Starts delivering records. Waiting for data happens off the main thread; records are
   * consumed on the main thread, so Node's event loop is never blocked.
   */
  start(): void;
  /** Stops and frees the ring buffer manager. Idempotent. */
  close(): Promise<void>;
  /** Records delivered so far. */
  readonly delivered: number;
  /** Exceptions thrown by the record handler, caught and counted (never rethrown into libbpf). */
  readonly handlerErrors: number;
}

export interface CloseOptions {
  /**
   * Keep delivering records while the links are detached, then read every ring buffer empty
   * (handlers run synchronously once more) before freeing them: no record the programs wrote is
   * lost, including those below a program's wakeup threshold (bpf/common/ring_wakeup.h). Default false:
   * delivery stops at once.
   */
  readonly drain?: boolean;
}

export interface BpfObject {
  readonly path: string;
  /** Loads all programs that are not disabled. Throws ERR_BPF_LOAD with the verifier log. */
  load(): void;
  /**
   * load() off the main thread: the verifier's work (tenths of a second per object) runs on a
   * worker thread, so objects load concurrently and the event loop keeps running. Rejects as
   * load() throws. close() meanwhile waits for it.
   */
  loadAsync(): Promise<void>;
  program(name: string): BpfProgram;
  map(name: string): BpfMap;
  ringBuffer(mapName: string, onRecord: RecordHandler): RingBufferSource;
  /**
   * Stops record delivery at once (no handler runs after this call; with `drain`, only once the
   * links are gone and the rings are read empty), then destroys every link (reverse creation
   * order), ring buffers, then the object. Idempotent (the first call's options apply).
   */
  close(options?: CloseOptions): Promise<void>;
}

export interface BpfBackend {
  open(path: string, options?: OpenOptions): BpfObject;
  /** Number of possible CPUs (size of per-CPU map values). */
  possibleCpus(): number;
  /**
   * Hands the C heap's free pages back to the kernel (glibc's malloc_trim; a no-op where there is
   * none). Under load the malloc arenas of Node's threads and of libbpf grow and keep what they
   * freed, ~5 MB of the agent's resident memory at 3000 spans/s; the agent calls this periodically.
   */
  releaseFreeMemory?(): void;
}
