/**
 * Groups finished spans into traces for the live views (`--print-spans tree`, the web page).
 * A trace is finished when no new span arrived for it for `quietMs`. Bounded: at most
 * `maxTraces` open traces (the least recently active one is finished early, counted), at most
 * `maxSpansPerTrace` spans each (the rest counted and dropped), `recentLimit` finished traces
 * kept for the web page. Spans arriving for a trace already finished start a new group marked
 * `late`.
 */
import type { SelfMetrics } from '../metrics/counters';
import type { Span } from './span';
import { traceViewEvicted, traceViewSpansDropped } from '../metrics/catalogue';

export interface FinishedTrace {
  readonly traceId: string;
  readonly spans: readonly Span[];
  /** Wall-clock ms when it was finished. */
  readonly finishedAtMs: number;
  /** More spans of a trace that was already shown. */
  readonly late: boolean;
  /** Finished before its quiet period because too many traces were open. */
  readonly evicted: boolean;
  /** Spans of this trace dropped over maxSpansPerTrace. */
  readonly droppedSpans: number;
}

export interface TraceBufferOptions {
  readonly quietMs: number;
  readonly maxTraces: number;
  readonly maxSpansPerTrace?: number;
  readonly recentLimit?: number;
  readonly onFinished?: (trace: FinishedTrace) => void;
  readonly metrics?: SelfMetrics;
  readonly now?: () => number;
}

interface OpenTrace {
  spans: Span[];
  lastMs: number;
  late: boolean;
  dropped: number;
}

export class TraceBuffer {
  private readonly open = new Map<string, OpenTrace>();
  /** Recently finished trace ids (bounded), to mark late spans. */
  private readonly finishedIds = new Map<string, true>();
  private readonly recentTraces: FinishedTrace[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  evictions = 0;
  droppedSpans = 0;

  constructor(private readonly o: TraceBufferOptions) {
    this.now = o.now ?? Date.now;
  }

  get openTraces(): number {
    return this.open.size;
  }

  add(span: Span): void {
    const now = this.now();
    let t = this.open.get(span.traceId);
    if (t) {
      // Keep the map in least-recently-active order: re-insert on activity.
      this.open.delete(span.traceId);
    } else {
      t = { spans: [], lastMs: now, late: this.finishedIds.has(span.traceId), dropped: 0 };
    }
    t.lastMs = now;
    if (t.spans.length < (this.o.maxSpansPerTrace ?? 1000)) {
      t.spans.push(span);
    } else {
      t.dropped++;
      this.droppedSpans++;
      if (this.o.metrics) traceViewSpansDropped.add(this.o.metrics, {});
    }
    this.open.set(span.traceId, t);
    while (this.open.size > this.o.maxTraces) {
      const oldest = this.open.keys().next().value as string;
      this.evictions++;
      if (this.o.metrics) traceViewEvicted.add(this.o.metrics, {});
      this.finish(oldest, true);
    }
  }

  /** Finishes every trace quiet for `quietMs` (called by the timer; tests call it directly). */
  sweep(): void {
    const now = this.now();
    for (const [id, t] of this.open) {
      // Insertion order is activity order: the first still-active trace ends the scan.
      if (now - t.lastMs < this.o.quietMs) break;
      this.finish(id, false);
    }
  }

  /** Finishes everything still open (shutdown). */
  flush(): void {
    for (const id of [...this.open.keys()]) this.finish(id, false);
  }

  /** Finished traces, newest first. */
  recent(): readonly FinishedTrace[] {
    return [...this.recentTraces].reverse();
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sweep(), Math.max(50, Math.floor(this.o.quietMs / 4)));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private finish(id: string, evicted: boolean): void {
    const t = this.open.get(id);
    if (!t) return;
    this.open.delete(id);
    this.finishedIds.delete(id);
    this.finishedIds.set(id, true);
    while (this.finishedIds.size > Math.max(this.o.maxTraces, 1000)) this.finishedIds.delete(this.finishedIds.keys().next().value as string);
    const trace: FinishedTrace = { traceId: id, spans: t.spans, finishedAtMs: this.now(), late: t.late, evicted, droppedSpans: t.dropped };
    this.recentTraces.push(trace);
    while (this.recentTraces.length > (this.o.recentLimit ?? 100)) this.recentTraces.shift();
    this.o.onFinished?.(trace);
  }
}
