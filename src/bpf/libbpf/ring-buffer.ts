/**
 * One libbpf ring_buffer for one map, consumed on Node's main thread without blocking it.
 *
 * Waiting for data is done by libuv's own poll phase on the ring buffer's epoll fd ('uv-poll',
 * default) or by epoll_wait on a libuv worker thread through koffi's async call ('worker');
 * records are consumed with ring_buffer__consume in time-bounded turns (default 5 ms), so a flood
 * of records cannot starve timers and I/O, and each record is copied out before the callback
 * returns. Programs may skip the wakeup while little data waits (bpf/common/ring_wakeup.h), so the
 * backend's RingPoller also gives every running ring a turn each period, and a draining close
 * reads the ring empty once the object's links are gone.
 */
import koffi, { type node as koffiNode } from 'koffi';
import type { RecordHandler, RingBufferSource } from '../types';
import { bpfError, errnoText, pointerErrno } from './errors';
import type { Native, Ptr } from './native';
import type { BackendConfig, RingWaitMode } from './options';
import type { RingPoller } from './ring-poller';

const EPOLL_CTL_ADD = 1;
const EPOLLIN = 0x001;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const EPOLL_EVENT_SIZE = 12; // struct epoll_event is packed on x86-64

/**
 * One libbpf ring_buffer manager for one map. States: created -> running (start) -> stopping ->
 * closing -> closed. Invariants: ring_buffer__consume only runs on the main thread and never
 * while the manager is being freed; ring_buffer__free only runs when no epoll_wait is in flight.
 * Records are consumed when the kernel wakes us (epoll: libuv poll or a worker's epoll_wait),
 * on the backend's poll period (RingPoller), and once more at a draining close.
 */
export class LibbpfRingBuffer implements RingBufferSource {
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
    private readonly cfg: BackendConfig,
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
