/**
 * Collects finished spans and hands them to the exporter in batches: when a batch is full
 * (`maxBatchSize` spans, or MAX_BATCH_BYTES of encoded spans for an exporter whose batches say
 * their size), or `scheduledDelayMs` after the first pending span, whichever comes first. A span
 * that finds the batcher idle (no export started within the last `scheduledDelayMs`: the first
 * span after start, or after a quiet spell) waits only IDLE_FLUSH_DELAY_MS, which gathers a burst:
 * the first traces reach the Collector right after start instead of one delay later, and a busy
 * agent still sends at most about one partial batch per `scheduledDelayMs`.
 *
 * Bounded twice: the spans held — waiting in the queue plus the batch being exported (and
 * retried) — are at most `maxQueueSize` spans and at most `maxQueueBytes` estimated bytes
 * (span-size.ts). A span that would exceed either is dropped and counted
 * (`spanbridge_spans_dropped_total{reason="queue_full"|"queue_memory"}`) — the producer, which
 * sits on the ring-buffer hot path, never waits and never throws. Exports run one at a time on a
 * promise chain, so while the Collector is down the batch being retried waits and the queue
 * fills up to its bounds, then drains in order when the Collector is back. Unsampled spans (W3C
 * sampled bit 0) are counted and never queued.
 *
 * The queue is a list of batches of at most `maxBatchSize` spans (and about MAX_BATCH_BYTES), made by the exporter
 * (`newBatch`): the OTLP exporter's batches encode each span as it is added (receiver/otlp/
 * trace-encoder.ts), so the queue holds bytes, not span objects; an exporter without `newBatch`
 * gets arrays of spans. Every batch but the last is full; an export takes the oldest whole.
 *
 * Timers are unref'd: a pending batch never keeps the process alive; the agent calls `shutdown()`
 * on SIGINT/SIGTERM to deliver what is pending, within a deadline.
 */
import { isSampled, type SelfMetrics, type Span } from './model';
import type { ReceiverLog } from './log';
import { countDropped, countUnsampled, type QueueState } from './self-metrics';
import { estimateSpanBytes } from './span-size';

/** The spans of one export request as the exporter wants them held: an array, or already encoded. */
export interface SpanBatch {
  readonly length: number;
  /** Encoded bytes held, for batches that encode as spans are added: closes a batch at MAX_BATCH_BYTES. */
  readonly byteLength?: number;
  /** Adds a span; throws (adding nothing) for a span the batch cannot hold, which is then dropped and counted. */
  push(span: Span): number;
  /** Frees what the batch holds when it will not be exported (shutdown). */
  discard?(): void;
  /**
   * For a batch that walks a span's attributes as it adds it (the OTLP exporter's): the last span
   * added's `estimateSpanBytes`, summed in that walk, and `undoLast` to take that span back out.
   * The batcher then checks its memory cap after the push instead of walking the span once more.
   */
  readonly lastEstimate?: number;
  undoLast?(): void;
}

/** Where batches go: `OtlpTraceExporter` (its exports never reject; anything that does is counted anyway). */
export interface SpanExporter {
  /** Sends a batch of spans (the batches of an exporter without `newBatch`). */
  export(spans: readonly Span[]): Promise<void>;
  /** An empty batch held the exporter's way (the OTLP exporter's: encoded as spans are added), sent by `exportBatch`. */
  newBatch?(): SpanBatch;
  /** Sends a batch `newBatch` made. */
  exportBatch?(batch: SpanBatch): Promise<void>;
  /** Stops retrying: the export in progress ends soon, its spans counted as dropped at shutdown. */
  abort?(): void;
  shutdown(): Promise<void>;
}

export interface SpanBatcherOptions {
  /** Spans per export request (default 512; clamped to `maxQueueSize`). */
  readonly maxBatchSize?: number;
  /** Longest a pending span waits for its batch to fill (default 1000 ms). */
  readonly scheduledDelayMs?: number;
  /** Spans held at most (queued + being exported); the overflow is dropped and counted (default 65536). */
  readonly maxQueueSize?: number;
  /** Estimated bytes held at most (queued + being exported): the memory cap (default 64 MiB). */
  readonly maxQueueBytes?: number;
  /** Default deadline for `shutdown()` (default 5000 ms). */
  readonly shutdownTimeoutMs?: number;
}

/*
 * 2048 spans per request, not the OTel SDK's 512: an export POST costs the agent ~150-250 us of CPU
 * whatever its size (undici, the event loop round trip; bench/results/2026-12-07-span-cpu-export.md),
 * ~0.4 us per span at 512 spans, paid on the load generator's CPU in the bench. 2048 Go server spans
 * are ~1 MB of OTLP; MAX_BATCH_BYTES keeps a request of large spans far below the Collector's
 * limits (gRPC 4 MiB by default, HTTP 20 MiB).
 */
export const BATCHER_DEFAULTS = {
  maxBatchSize: 2048,
  scheduledDelayMs: 1000,
  maxQueueSize: 65_536,
  maxQueueBytes: 64 * 1024 * 1024,
  shutdownTimeoutMs: 5000,
} as const satisfies Required<SpanBatcherOptions>;

/** A batch that encodes as spans are added closes at this many bytes (the span that crosses it included). */
export const MAX_BATCH_BYTES = 2 * 1024 * 1024;

/**
 * A batch with `undoLast` estimates its spans itself (one walk over a span's attributes, not two)
 * while at least this much of `maxQueueBytes` is free; closer to the cap (a Collector outage filling
 * the queue) each span is estimated before it is encoded, so spans over the cap are not encoded
 * only to be taken back out.
 */
export const ESTIMATE_AFTER_ROOM = 1024 * 1024;

/** How long a span that finds the batcher idle waits for others (at most `scheduledDelayMs`). */
export const IDLE_FLUSH_DELAY_MS = 20;

export class SpanBatcher {
  private readonly maxBatchSize: number;
  private readonly scheduledDelayMs: number;
  private readonly maxQueueSize: number;
  private readonly maxQueueBytes: number;
  private readonly shutdownTimeoutMs: number;

  /** Batches waiting for export, oldest first; all but the last are full. */
  private batches: SpanBatch[] = [];
  /** Estimated bytes of each batch's spans, parallel to `batches`. */
  private batchBytes: number[] = [];
  private queuedSpans = 0;
  private queuedBytes = 0;
  /** The batch being exported (and retried): still held, still counted against the bounds. */
  private inFlightSpans = 0;
  private inFlightBytes = 0;
  private peakBytes = 0;
  /** Spans ever queued / ever taken out of the queue: `forceFlush` waits for a position, not a count. */
  private queuedTotal = 0;
  private takenTotal = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Date.now() when the last export started (-Infinity: never). */
  private lastExportMs = -Infinity;
  /** The timer is the short one of an idle batcher (an export starting makes it moot). */
  private timerIsIdle = false;
  /** The tail of the export chain; every export job is appended to it, so they never overlap. */
  private tail: Promise<void> = Promise.resolve();
  private fullBatchJobPending = false;
  private stopped = false;
  /** When a span the exporter could not encode was last reported (-Infinity: never). */
  private lastEncodeWarnMs = -Infinity;
  private shutdownPromise: Promise<void> | undefined;

  constructor(
    private readonly exporter: SpanExporter,
    private readonly metrics: SelfMetrics,
    private readonly log: ReceiverLog,
    options: SpanBatcherOptions = {},
  ) {
    this.maxQueueSize = this.option(options, 'maxQueueSize');
    this.maxQueueBytes = this.option(options, 'maxQueueBytes', Number.MAX_SAFE_INTEGER);
    this.maxBatchSize = this.option(options, 'maxBatchSize');
    if (this.maxBatchSize > this.maxQueueSize) {
      log.warn(`batcher: maxBatchSize ${this.maxBatchSize} exceeds maxQueueSize ${this.maxQueueSize}; using ${this.maxQueueSize}`);
      this.maxBatchSize = this.maxQueueSize;
    }
    this.scheduledDelayMs = this.option(options, 'scheduledDelayMs');
    this.shutdownTimeoutMs = this.option(options, 'shutdownTimeoutMs');
  }

  /** Spans waiting for export (not counting the batch being exported). */
  get pendingCount(): number {
    return this.queuedSpans;
  }

  /** Spans and estimated bytes held now (queued + being exported), and the bounds. */
  queueState(): QueueState {
    return {
      spans: this.queuedSpans + this.inFlightSpans,
      bytes: this.queuedBytes + this.inFlightBytes,
      capacitySpans: this.maxQueueSize,
      capacityBytes: this.maxQueueBytes,
    };
  }

  /** The most estimated bytes ever held at once (never above `maxQueueBytes`). */
  get peakQueueBytes(): number {
    return this.peakBytes;
  }

  /** Hot path: O(1), never throws, never waits. */
  add(span: Span): void {
    if (this.stopped) {
      countDropped(this.metrics, 'shutdown');
      return;
    }
    if (!isSampled(span)) {
      countUnsampled(this.metrics);
      return;
    }
    if (this.queuedSpans + this.inFlightSpans >= this.maxQueueSize) {
      countDropped(this.metrics, 'queue_full');
      return;
    }
    const before = this.queuedBytes + this.inFlightBytes;
    let last = this.batches.length - 1;
    let batch = last >= 0 ? this.batches[last] : undefined;
    let bytes: number;
    if (batch !== undefined && batch.undoLast !== undefined && !this.isFull(batch) && this.maxQueueBytes - before >= ESTIMATE_AFTER_ROOM) {
      // The batch estimates the span as it adds it; one over the cap is taken back out.
      if (!this.pushed(batch, span)) return;
      bytes = batch.lastEstimate!;
      if (before + bytes > this.maxQueueBytes) {
        batch.undoLast();
        countDropped(this.metrics, 'queue_memory');
        return;
      }
    } else {
      bytes = estimateSpanBytes(span);
      if (before + bytes > this.maxQueueBytes) {
        countDropped(this.metrics, 'queue_memory');
        return;
      }
      if (batch === undefined || this.isFull(batch)) {
        batch = this.exporter.newBatch && this.exporter.exportBatch ? this.exporter.newBatch() : ([] as Span[]);
        this.batches.push(batch);
        this.batchBytes.push(0);
        last++;
      }
      if (!this.pushed(batch, span)) return;
    }
    const held = before + bytes;
    this.batchBytes[last] += bytes;
    this.queuedSpans++;
    this.queuedBytes += bytes;
    if (held > this.peakBytes) this.peakBytes = held;
    this.queuedTotal++;
    if (this.isFull(batch)) this.scheduleFullBatches();
    else this.armTimer();
  }

  /** Adds `span` to `batch`; false (the span dropped and counted) when the exporter cannot encode it. */
  private pushed(batch: SpanBatch, span: Span): boolean {
    try {
      batch.push(span);
      return true;
    } catch (err) {
      // A span the exporter cannot encode costs itself only, never its batch.
      countDropped(this.metrics, 'export_failed');
      this.warnUnencodable(err);
      return false;
    }
  }

  /** No span goes into `batch` any more: `maxBatchSize` spans, or MAX_BATCH_BYTES encoded. */
  private isFull(batch: SpanBatch): boolean {
    return batch.length >= this.maxBatchSize || (batch.byteLength !== undefined && batch.byteLength >= MAX_BATCH_BYTES);
  }

  /** A full batch waits (every batch but the last is full). */
  private hasFullBatch(): boolean {
    const n = this.batches.length;
    return n > 1 || (n === 1 && this.isFull(this.batches[0]!));
  }

  private warnUnencodable(err: unknown): void {
    const now = Date.now();
    if (now - this.lastEncodeWarnMs < 60_000) return;
    this.lastEncodeWarnMs = now;
    this.log.warn(`batcher: dropped a span the exporter cannot encode: ${String(err)} (reported at most once a minute; all counted as export_failed)`);
  }

  /** Exports every span added before this call; resolves when they are accounted for. */
  forceFlush(): Promise<void> {
    const upTo = this.queuedTotal;
    return this.enqueue(async () => {
      while (this.takenTotal < upTo) {
        if ((await this.exportBatch()) === 0) break;
      }
    });
  }

  /**
   * Stops accepting spans (later ones are counted as dropped, reason "shutdown"), flushes what is
   * pending and shuts the exporter down, all within `timeoutMs`. Spans still queued at the deadline
   * are counted as dropped. Never rejects; idempotent.
   */
  shutdown(timeoutMs: number = this.shutdownTimeoutMs): Promise<void> {
    this.shutdownPromise ??= this.doShutdown(timeoutMs);
    return this.shutdownPromise;
  }

  private async doShutdown(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.stopped = true;
    this.clearTimer();
    const flushed = await withDeadline(this.forceFlush(), timeoutMs);
    if (!flushed) {
      // The batch being retried ends now (its spans counted by the exporter, reason shutdown).
      this.exporter.abort?.();
      const lost = this.queuedSpans;
      for (const batch of this.batches) batch.discard?.();
      this.batches = [];
      this.batchBytes = [];
      this.queuedSpans = 0;
      this.queuedBytes = 0;
      if (lost > 0) {
        this.takenTotal += lost;
        countDropped(this.metrics, 'shutdown', lost);
      }
      this.log.warn(`batcher: shutdown deadline of ${timeoutMs} ms reached; dropped ${lost} queued spans`);
    }
    await withDeadline(
      this.exporter.shutdown().catch(() => {}),
      Math.max(0, deadline - Date.now()),
    );
  }

  private scheduleFullBatches(): void {
    if (this.fullBatchJobPending) return;
    this.fullBatchJobPending = true;
    void this.enqueue(async () => {
      while (this.hasFullBatch()) await this.exportBatch();
      // No await between the last check and this reset: an add() in between cannot be missed.
      this.fullBatchJobPending = false;
    });
  }

  private armTimer(): void {
    if (this.timer || this.stopped) return;
    const idle = Date.now() - this.lastExportMs >= this.scheduledDelayMs;
    this.timerIsIdle = idle;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.enqueue(async () => {
        if (this.queuedSpans > 0) await this.exportBatch();
        while (this.hasFullBatch()) await this.exportBatch();
      });
    }, idle ? Math.min(IDLE_FLUSH_DELAY_MS, this.scheduledDelayMs) : this.scheduledDelayMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Appends a job to the export chain; afterwards, leftover spans get a timer. */
  private enqueue(job: () => Promise<void>): Promise<void> {
    const run = this.tail.then(job).then(
      () => {
        if (this.queuedSpans > 0 && !this.hasFullBatch()) this.armTimer();
      },
      (err: unknown) => this.log.warn(`batcher: export job failed: ${String(err)}`),
    );
    this.tail = run;
    return run;
  }

  /** Takes the oldest batch (at most `maxBatchSize` spans) off the queue and exports it; returns how many spans it held. */
  private async exportBatch(): Promise<number> {
    let batch = this.batches.shift();
    let bytes = this.batchBytes.shift() ?? 0;
    // An empty batch is left only by a span that could not be added; the next one is taken.
    while (batch !== undefined && batch.length === 0 && this.batches.length > 0) {
      batch.discard?.();
      batch = this.batches.shift();
      bytes = this.batchBytes.shift() ?? 0;
    }
    if (batch === undefined || batch.length === 0) {
      batch?.discard?.();
      return 0;
    }
    this.takenTotal += batch.length;
    this.queuedSpans -= batch.length;
    this.lastExportMs = Date.now();
    // The batcher is busy now: spans left over wait the normal delay (armed after this job).
    if (this.timerIsIdle) this.clearTimer();
    this.queuedBytes -= bytes;
    const n = batch.length;
    this.inFlightSpans = n;
    this.inFlightBytes = bytes;
    try {
      if (Array.isArray(batch)) await this.exporter.export(batch as Span[]);
      else await this.exporter.exportBatch!(batch);
    } catch (err) {
      // The exporter contract says this does not happen; if it does, the spans are still accounted for.
      countDropped(this.metrics, 'export_failed', n);
      this.log.warn(`batcher: exporter rejected: ${String(err)}`);
    } finally {
      this.inFlightSpans = 0;
      this.inFlightBytes = 0;
    }
    return n;
  }

  private option(options: SpanBatcherOptions, key: keyof SpanBatcherOptions, max = 2 ** 31 - 1): number {
    const value = options[key];
    if (value === undefined) return BATCHER_DEFAULTS[key];
    if (Number.isInteger(value) && value > 0 && value <= max) return value;
    this.log.warn(`batcher: ignoring ${key}=${value}: expected a positive integer; using ${BATCHER_DEFAULTS[key]}`);
    return BATCHER_DEFAULTS[key];
  }
}

/** Resolves true when `p` settles within `ms`, false otherwise; the timer never holds the process. */
async function withDeadline(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([p.then(() => true as const), expired]);
  } finally {
    clearTimeout(timer);
  }
}
