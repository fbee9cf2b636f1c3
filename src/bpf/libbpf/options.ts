/**
 * Options of the libbpf backend, shared by the backend factory and the ring buffers it creates.
 */

export type RingWaitMode = 'uv-poll' | 'worker';

export interface LibbpfBackendOptions {
  /**
   * How a ring buffer waits for data without blocking the event loop (records are consumed on
   * the main thread either way). Default 'uv-poll' (setting `ring_buffer.wait`).
   * - 'uv-poll' (default): libuv's own poll phase watches the ring buffer's epoll fd
   *   (koffi.node.poll). No thread, no timeout, wakes at once, closes at once. koffi calls this
   *   API not yet stable: the integration tests pin its behaviour for the koffi version we ship.
   *   If libuv reports a poll error, that ring buffer falls back to 'worker'.
   * - 'worker': epoll_wait (200 ms timeout) through koffi's async call on a libuv threadpool
   *   thread, which it holds for as long as the ring buffer runs. Not the default: each running
   *   ring buffer occupies one of libuv's pool threads (UV_THREADPOOL_SIZE, 4 by default), which
   *   fs, dns.lookup, zlib and crypto share, so four running ring buffers starve them.
   */
  readonly ringWait?: RingWaitMode;
  /** epoll_wait timeout in 'worker' mode; bounds how long close() can wait. Default 200 ms. */
  readonly waitTimeoutMs?: number;
  /** Longest a single consume turn may run on the main thread before yielding. Default 5 ms. */
  readonly consumeTurnMs?: number;
  /**
   * Every running ring buffer is also consumed on this period (one unref'd timer per backend),
   * whether or not the kernel woke us: programs that skip wakeups while little data waits
   * (bpf/common/ring_wakeup.h, `ring_wakeup_bytes`) rely on it, so no record waits longer than this.
   * Default 50 ms; 0 turns it off (then every program must wake user space itself).
   */
  readonly pollIntervalMs?: number;
  /**
   * Copy every libbpf message, debug level included, to stderr (setting `debug.libbpf`). The
   * libbpf print hook is process-wide, so this applies to every backend of the process.
   */
  readonly libbpfDebug?: boolean;
}

/** The options with every default applied (the process-wide libbpfDebug is not a per-backend setting). */
export type BackendConfig = Required<Omit<LibbpfBackendOptions, 'libbpfDebug'>>;

/** Default period of the backend's ring-buffer consume timer (LibbpfBackendOptions.pollIntervalMs). */
export const DEFAULT_POLL_INTERVAL_MS = 50;
