/**
 * Go client spans whose response body is still open when roundTrip returns wait here for their
 * end: a client span covers the whole exchange, and with a body the exchange ends when the body is
 * closed (after io.ReadAll, ReverseProxy's copy ...), which the kernel reports as a
 * RECORD_GO_HTTP_CLIENT_END with the span's id. A body never closed (leaked, or a stream kept
 * open) ends the span at its response head after `maxWaitMs`, marked
 * `spanbridge.response.body_closed=false`; so do spans over the `maxPending` bound and those
 * still waiting when the agent stops. Every such case is counted.
 */
import type { GoHttpClientEndRecord, GoHttpClientRecord } from '../events/go-http-client';
import type { SelfMetrics } from '../metrics/counters';
import { goClientEndsUnmatched, goClientSpansEndedAtHead } from '../metrics/catalogue';

export const GO_CLIENT_ENDED_EARLY = goClientSpansEndedAtHead.name;
export const GO_CLIENT_END_UNMATCHED = goClientEndsUnmatched.name;

export interface GoClientEndsOptions {
  /** Client spans waiting for their body to close, at most (default 4096). */
  readonly maxPending?: number;
  /** How long a span waits for its body to close (default 60 s). */
  readonly maxWaitMs?: number;
}

/** Called once per client record: its end (kernel monotonic ns) and whether the body was closed. */
export type EmitClientSpan = (rec: GoHttpClientRecord, endNs: bigint, bodyClosed: boolean) => void;

export class GoClientEnds {
  /** Insertion order = order of their response heads: the oldest is first. */
  private readonly pending = new Map<string, GoHttpClientRecord>();
  private readonly maxPending: number;
  private readonly maxWaitNs: bigint;

  constructor(
    private readonly emit: EmitClientSpan,
    private readonly metrics: SelfMetrics,
    opts: GoClientEndsOptions = {},
  ) {
    this.maxPending = opts.maxPending ?? 4096;
    this.maxWaitNs = BigInt(opts.maxWaitMs ?? 60_000) * 1_000_000n;
  }

  get size(): number {
    return this.pending.size;
  }

  /** A client record: emitted now, or kept until its body closes. */
  add(rec: GoHttpClientRecord): void {
    if (!rec.bodyOpen) {
      this.emit(rec, rec.endNs, true);
      return;
    }
    if (this.pending.size >= this.maxPending) {
      const [oldestKey, oldest] = this.pending.entries().next().value as [string, GoHttpClientRecord];
      this.pending.delete(oldestKey);
      this.endAtHead(oldest, 'overflow');
    }
    this.pending.set(`${rec.pid}:${rec.spanId}`, rec);
  }

  /** The body of a waiting span was closed: it ends now. */
  end(e: GoHttpClientEndRecord): void {
    const key = `${e.pid}:${e.spanId}`;
    const rec = this.pending.get(key);
    if (!rec) {
      goClientEndsUnmatched.add(this.metrics, {});
      return;
    }
    this.pending.delete(key);
    this.emit(rec, e.endNs > rec.endNs ? e.endNs : rec.endNs, true);
  }

  /** Ends the spans that waited longer than maxWaitMs (nowNs: kernel monotonic time). */
  sweep(nowNs: bigint): void {
    for (const [key, rec] of this.pending) {
      if (nowNs - rec.endNs < this.maxWaitNs) break; // the rest are newer
      this.pending.delete(key);
      this.endAtHead(rec, 'timeout');
    }
  }

  /** The agent stops (or process `pid` is gone): its waiting spans end at their response head. */
  flush(pid?: number): void {
    for (const [key, rec] of this.pending) {
      if (pid !== undefined && rec.pid !== pid) continue;
      this.pending.delete(key);
      this.endAtHead(rec, pid === undefined ? 'stop' : 'process_gone');
    }
  }

  private endAtHead(rec: GoHttpClientRecord, reason: 'overflow' | 'timeout' | 'stop' | 'process_gone'): void {
    goClientSpansEndedAtHead.add(this.metrics, { reason });
    this.emit(rec, rec.endNs, false);
  }
}
