/**
 * One BPF ring buffer map, read on Node's main thread without blocking it.
 *
 * The ring is mapped into this process and read in JavaScript (RingMapping, ring-mapping.ts): no
 * C->JS callback per record, as libbpf's ring_buffer__consume would need. Waiting for data is done
 * by libuv's own poll phase on an epoll fd that holds the map's fd ('uv-poll', default) or by
 * epoll_wait on a libuv worker thread through koffi's async call ('worker'); records are read in
 * time-bounded turns (default 5 ms), so a flood of records cannot starve timers and I/O, and each
 * record reaches the handler in place (the ring's memory, valid during the call only: RecordHandler). Programs may skip the wakeup while little data waits
 * (bpf/common/ring_wakeup.h), so the backend's RingPoller also gives every running ring a turn
 * each period, and a draining close reads the ring empty once the object's links are gone.
 *
 * One path: libbpf's ring_buffer__new maps the ring with the very mmap calls RingMapping makes
 * (ringbuf.c, ring_buffer__add), so where ours fail libbpf's would too; there is nothing to fall
 * back to, and the failure is an ERR_BPF_MAP error with the errno.
 */
import koffi, { type node as koffiNode } from 'koffi';
import type { RecordHandler, RingBufferSource } from '../types';
import { bpfError, errnoText } from './errors';
import type { Native } from './native';
import type { BackendConfig, RingWaitMode } from './options';
import type { RingPoller } from './ring-poller';
import { RingMapping } from './ring-mapping';

const EPOLL_CTL_ADD = 1;
const EPOLLIN = 0x001;
const EPOLL_CLOEXEC = 0o2000000;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const EPOLL_EVENT_SIZE = 12; // struct epoll_event is packed on x86-64
/** epoll data of the wake-up eventfd; the ring's own entry has 0. */
const WAKE_FD_DATA = 0xffffffff;

export class LibbpfRingBuffer implements RingBufferSource {
  delivered = 0;
  /** Records delivered by the periodic consume (the kernel had not woken us for them). */
  deliveredByPoll = 0;
  /** Records delivered by the final read-out of a draining close. */
  deliveredAtClose = 0;
  /** Handler exceptions caught (and counted, never rethrown into the read loop). */
  handlerErrors = 0;
  lastHandlerError: unknown = undefined;
  /** epoll_wait failures (other than EINTR) and malformed ring headers. */
  waitErrors = 0;
  /** Longest single consume turn on the main thread, in ms (what this module can block the loop). */
  maxTurnMs = 0;

  private readonly ring: RingMapping;
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
    n.log.begin();
    this.ring = RingMapping.map(n, name, mapFd);
    const epollFd = n.epollCreate1(EPOLL_CLOEXEC) as number;
    const ev = Buffer.alloc(EPOLL_EVENT_SIZE); // epoll_event {u32 events; u64 data} packed
    ev.writeUInt32LE(EPOLLIN, 0);
    const added = epollFd < 0 ? -1 : (n.epollCtl(epollFd, EPOLL_CTL_ADD, mapFd, ev) as number);
    if (added < 0) {
      const errno = koffi.errno();
      if (epollFd >= 0) n.close(epollFd);
      this.ring.unmap(n);
      throw bpfError(n, 'ERR_BPF_MAP', `ring buffer ${name}: epoll: ${errnoText(n, errno)}`, { errno });
    }
    this.epollFd = epollFd;
    this.events = koffi.alloc('uint8_t', EPOLL_EVENT_SIZE * 2) as bigint;
    this.wakeFd = n.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) as number;
    if (this.wakeFd >= 0) {
      ev.writeUInt32LE(WAKE_FD_DATA, 4); // never a ring's entry
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
    if (!this.started || !this.ring.mapped || this.consuming || this.state === 'closing' || this.state === 'closed') return;
    this.consuming = true;
    this.readingOut = true;
    const turnStart = performance.now();
    try {
      if (this.ring.read(this.onSample) === 'malformed') this.waitErrors++;
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
    if (this.state !== 'running' || !this.ring.mapped || this.consuming) return;
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

  /**
   * The read loop's sink: one record in place in the ring (valid during the handler's call only).
   * Returns false to end the read after this record (it counts as consumed).
   */
  private readonly onSample = (bytes: Buffer, offset: number, length: number): boolean => {
    this.delivered++;
    if (this.readingOut) this.deliveredAtClose++;
    try {
      this.onRecord(bytes, offset, length);
    } catch (err) {
      this.handlerErrors++;
      this.lastHandlerError = err;
    }
    if (this.readingOut) return true;
    if (this.state !== 'running') {
      this.turnOver = true;
      return false; // stop this read (the record is accounted for)
    }
    if ((++this.turnCount & 31) === 0 && performance.now() > this.turnDeadline) {
      this.turnOver = true;
      return false; // the record is consumed; we yield to the event loop
    }
    return true;
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
    if (!this.ring.mapped) return false;
    this.consuming = true;
    this.turnOver = false;
    this.turnCount = 0;
    const turnStart = performance.now();
    this.turnDeadline = turnStart + this.cfg.consumeTurnMs;
    let end = 'empty';
    try {
      end = this.ring.read(this.onSample);
    } finally {
      this.consuming = false;
      this.maxTurnMs = Math.max(this.maxTurnMs, performance.now() - turnStart);
    }
    if (this.state !== 'running') {
      this.finishCloseIfIdle();
      return false;
    }
    if (end === 'malformed') this.waitErrors++;
    return this.turnOver;
  }

  /** A consume turn after a wake-up (or in 'worker' mode), then wait again (or yield and continue). */
  private drain(): void {
    if (this.state !== 'running' || !this.ring.mapped) return;
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
    if (this.state !== 'closing' || this.waiting || this.consuming || !this.ring.mapped) return;
    this.uvPoll?.close(); // before its fd is closed
    this.uvPoll = undefined;
    this.ring.unmap(this.n); // no read is running (consuming) and none can start (state)
    this.n.close(this.epollFd);
    if (this.wakeFd >= 0) this.n.close(this.wakeFd);
    koffi.free(this.events);
    this.state = 'closed';
    this.resolveClosed?.();
  }
}
