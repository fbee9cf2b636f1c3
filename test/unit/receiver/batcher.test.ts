import { pipelineFromEnv } from '../../helpers/delivery';
import { ESTIMATE_AFTER_ROOM, IDLE_FLUSH_DELAY_MS, MAX_BATCH_BYTES, SpanBatcher, type SpanBatch, type SpanExporter } from '../../../receiver/batcher';

import { estimateSpanBytes } from '../../../receiver/span-size';
import { SPANS_DROPPED, SPANS_EXPORTED, SPANS_UNSAMPLED } from '../../../receiver/self-metrics';
import { SelfMetrics } from '../../../src/metrics/counters';
import type { Span } from '../../../src/spans/span';
import { decodeTraceRequest, flattenSpans } from './helpers/otlp-proto';
import { ok, recordingLog, startOtlpServer, type TestServer } from './helpers/otlp-server';
import { makeResource, makeSpan } from '../../fixtures/spans';

/** Records batches; `hold()` makes exports wait until `release()`. */
class FakeExporter implements SpanExporter {
  readonly batches: Span[][] = [];
  inFlight = 0;
  maxInFlight = 0;
  shutdowns = 0;
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  release(): void {
    this.open?.();
    this.gate = undefined;
  }
  async export(spans: readonly Span[]): Promise<void> {
    this.batches.push([...spans]);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await this.gate;
    } finally {
      this.inFlight--;
    }
  }
  aborts = 0;
  abort(): void {
    this.aborts++;
  }
  async shutdown(): Promise<void> {
    this.shutdowns++;
  }
  get sizes(): number[] {
    return this.batches.map((b) => b.length);
  }
}

const resource = makeResource('svc', 1);
const spans = (n: number, overrides: Partial<Span> = {}): Span[] =>
  Array.from({ length: n }, () => makeSpan(resource, overrides));
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('SpanBatcher', () => {
  let batcher: SpanBatcher | undefined;
  afterEach(async () => {
    await batcher?.shutdown(1000);
    batcher = undefined;
  });

  it('exports full batches as soon as maxBatchSize spans are pending', async () => {
    const exporter = new FakeExporter();
    const metrics = new SelfMetrics();
    batcher = new SpanBatcher(exporter, metrics, recordingLog(), { maxBatchSize: 3, scheduledDelayMs: 60_000 });
    const sent = spans(7);
    for (const s of sent) batcher.add(s);
    await settle();
    expect(exporter.sizes).toEqual([3, 3]);
    expect(exporter.batches.flat()).toEqual(sent.slice(0, 6)); // in order
    expect(batcher.pendingCount).toBe(1);
  });

  describe('batches that say their encoded size', () => {
    /** A batch of the exporter's own kind that reports `bytesPerSpan` encoded bytes per span. */
    class SizedBatch implements SpanBatch {
      readonly spans: Span[] = [];
      constructor(private readonly bytesPerSpan: number) {}
      get length(): number {
        return this.spans.length;
      }
      get byteLength(): number {
        return this.spans.length * this.bytesPerSpan;
      }
      push(span: Span): number {
        return this.spans.push(span);
      }
    }
    class SizedExporter extends FakeExporter {
      constructor(private readonly bytesPerSpan: number) {
        super();
      }
      newBatch(): SpanBatch {
        return new SizedBatch(this.bytesPerSpan);
      }
      exportBatch(batch: SpanBatch): Promise<void> {
        return this.export((batch as SizedBatch).spans);
      }
    }

    it('closes a batch at MAX_BATCH_BYTES before maxBatchSize spans and exports it at once', async () => {
      const exporter = new SizedExporter(MAX_BATCH_BYTES / 4);
      batcher = new SpanBatcher(exporter, new SelfMetrics(), recordingLog(), { maxBatchSize: 100, scheduledDelayMs: 60_000 });
      const sent = spans(9);
      for (const s of sent) batcher.add(s);
      await settle();
      // The span that reaches the cap is the batch's last: 4 spans of a quarter each.
      expect(exporter.sizes).toEqual([4, 4]);
      expect(exporter.batches.flat()).toEqual(sent.slice(0, 8));
      expect(batcher.pendingCount).toBe(1);
    });

    it('keeps counting spans when batches stay small', async () => {
      const exporter = new SizedExporter(100);
      batcher = new SpanBatcher(exporter, new SelfMetrics(), recordingLog(), { maxBatchSize: 3, scheduledDelayMs: 60_000 });
      for (const s of spans(7)) batcher.add(s);
      await settle();
      expect(exporter.sizes).toEqual([3, 3]);
      expect(batcher.pendingCount).toBe(1);
    });

    it('does not export a batch below both bounds before its delay', async () => {
      const exporter = new SizedExporter(MAX_BATCH_BYTES / 4 - 1);
      batcher = new SpanBatcher(exporter, new SelfMetrics(), recordingLog(), { maxBatchSize: 100, scheduledDelayMs: 60_000 });
      // Idle batcher: the first span arms the short idle flush; the export that follows makes it busy.
      batcher.add(spans(1)[0]!);
      await new Promise((r) => setTimeout(r, IDLE_FLUSH_DELAY_MS + 30));
      expect(exporter.sizes).toEqual([1]);
      for (const s of spans(4)) batcher.add(s);
      await settle();
      expect(exporter.sizes).toEqual([1]); // 4 spans, 4 bytes short of the cap: waits for the delay
      expect(batcher.pendingCount).toBe(4);
    });
  });

  it('exports a partial batch after scheduledDelayMs once an export ran within that delay', async () => {
    jest.useFakeTimers();
    try {
      const exporter = new FakeExporter();
      batcher = new SpanBatcher(exporter, new SelfMetrics(), recordingLog(), { maxBatchSize: 100, scheduledDelayMs: 100 });
      for (const s of spans(2)) batcher.add(s);
      await jest.advanceTimersByTimeAsync(IDLE_FLUSH_DELAY_MS);
      expect(exporter.sizes).toEqual([2]); // idle: the first spans go out at once
      // An export started 50 ms ago: the next span waits the whole delay.
      await jest.advanceTimersByTimeAsync(50 - IDLE_FLUSH_DELAY_MS);
      batcher.add(makeSpan(resource));
      await jest.advanceTimersByTimeAsync(99);
      expect(exporter.sizes).toEqual([2]);
      await jest.advanceTimersByTimeAsync(1);
      expect(exporter.sizes).toEqual([2, 1]);
      // Spans during the delay join the batch in progress.
      batcher.add(makeSpan(resource));
      await jest.advanceTimersByTimeAsync(60);
      batcher.add(makeSpan(resource));
      await jest.advanceTimersByTimeAsync(39);
      expect(exporter.sizes).toEqual([2, 1]);
      await jest.advanceTimersByTimeAsync(1);
      expect(exporter.sizes).toEqual([2, 1, 2]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('gives spans left over by a full batch the whole delay, even when the first span found the batcher idle', async () => {
    jest.useFakeTimers();
    try {
      const exporter = new FakeExporter();
      batcher = new SpanBatcher(exporter, new SelfMetrics(), recordingLog(), { maxBatchSize: 3, scheduledDelayMs: 1000 });
      for (const s of spans(4)) batcher.add(s);
      await jest.advanceTimersByTimeAsync(IDLE_FLUSH_DELAY_MS);
      expect(exporter.sizes).toEqual([3]);
      await jest.advanceTimersByTimeAsync(999 - IDLE_FLUSH_DELAY_MS);
      expect(exporter.sizes).toEqual([3]);
      await jest.advanceTimersByTimeAsync(1);
      expect(exporter.sizes).toEqual([3, 1]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('waits only IDLE_FLUSH_DELAY_MS for a span after a quiet spell, gathering a burst', async () => {
    jest.useFakeTimers();
    try {
      const exporter = new FakeExporter();
      batcher = new SpanBatcher(exporter, new SelfMetrics(), recordingLog(), { maxBatchSize: 100, scheduledDelayMs: 1000 });
      batcher.add(makeSpan(resource));
      await jest.advanceTimersByTimeAsync(IDLE_FLUSH_DELAY_MS);
      expect(exporter.sizes).toEqual([1]);
      await jest.advanceTimersByTimeAsync(5000);
      batcher.add(makeSpan(resource));
      await jest.advanceTimersByTimeAsync(IDLE_FLUSH_DELAY_MS - 1);
      batcher.add(makeSpan(resource));
      expect(exporter.sizes).toEqual([1]);
      await jest.advanceTimersByTimeAsync(1);
      expect(exporter.sizes).toEqual([1, 2]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('keeps its timers unref’d so a pending batch never holds the process open', () => {
    const spy = jest.spyOn(global, 'setTimeout');
    try {
      batcher = new SpanBatcher(new FakeExporter(), new SelfMetrics(), recordingLog(), { scheduledDelayMs: 60_000 });
      batcher.add(makeSpan(resource));
      const timers = spy.mock.results.map((r) => r.value as NodeJS.Timeout);
      expect(timers.length).toBeGreaterThan(0);
      for (const t of timers) expect(t.hasRef()).toBe(false);
    } finally {
      spy.mockRestore();
    }
  });

  it('runs one export at a time; the next full batch goes when the previous one is done', async () => {
    const exporter = new FakeExporter();
    exporter.hold();
    batcher = new SpanBatcher(exporter, new SelfMetrics(), recordingLog(), { maxBatchSize: 3, scheduledDelayMs: 60_000 });
    for (const s of spans(9)) batcher.add(s);
    await settle();
    expect(exporter.sizes).toEqual([3]);
    exporter.release();
    await settle();
    expect(exporter.sizes).toEqual([3, 3, 3]);
    expect(exporter.maxInFlight).toBe(1);
  });

  it('drops exactly the overflow of a full queue and counts it', async () => {
    const exporter = new FakeExporter();
    exporter.hold();
    const metrics = new SelfMetrics();
    batcher = new SpanBatcher(exporter, metrics, recordingLog(), {
      maxBatchSize: 4,
      maxQueueSize: 10,
      scheduledDelayMs: 60_000,
    });
    for (const s of spans(4)) batcher.add(s);
    await settle(); // the first 4 are taken out of the queue and are being exported
    expect(exporter.sizes).toEqual([4]);
    // The 4 being exported still count against the bound of 10: room for 6, so 7 overflow.
    for (const s of spans(13)) batcher.add(s);
    expect(metrics.get(SPANS_DROPPED, { reason: 'queue_full' })).toBe(7);
    expect(batcher.pendingCount).toBe(6);
    expect(batcher.queueState()).toMatchObject({ spans: 10, capacitySpans: 10 });
    exporter.release();
    await batcher.forceFlush();
    expect(exporter.batches.flat()).toHaveLength(10);
    expect(metrics.total(SPANS_DROPPED)).toBe(7);
    expect(batcher.queueState()).toMatchObject({ spans: 0, bytes: 0 });
  });

  it('a batch that estimates its spans as it adds them: the cap checked after the push, a span over it taken back out; near the cap, before', async () => {
    /** Estimates as the OTLP encoder's batch does (estimateSpanBytes of the span added), and undoes. */
    class EstimatingBatch implements SpanBatch {
      readonly spans: Span[] = [];
      lastEstimate = 0;
      undos = 0;
      pushes = 0;
      get length(): number {
        return this.spans.length;
      }
      push(span: Span): number {
        this.pushes++;
        this.lastEstimate = estimateSpanBytes(span);
        return this.spans.push(span);
      }
      undoLast(): void {
        this.undos++;
        this.spans.pop();
      }
    }
    const made: EstimatingBatch[] = [];
    class EstimatingExporter extends FakeExporter {
      newBatch(): SpanBatch {
        const b = new EstimatingBatch();
        made.push(b);
        return b;
      }
      exportBatch(batch: SpanBatch): Promise<void> {
        return this.export((batch as EstimatingBatch).spans);
      }
    }
    const exporter = new EstimatingExporter();
    const metrics = new SelfMetrics();
    const small = (): Span => makeSpan(resource, { attributes: { 'http.request.method': 'GET' } });
    const huge = (chars: number): Span => makeSpan(resource, { attributes: { 'http.request.method': 'GET', blob: 'x'.repeat(chars) } });
    const smallSize = estimateSpanBytes(small());
    const cap = ESTIMATE_AFTER_ROOM + 4 * smallSize;
    batcher = new SpanBatcher(exporter, metrics, recordingLog(), { maxBatchSize: 100, maxQueueBytes: cap, scheduledDelayMs: 60_000 });
    const first = small();
    batcher.add(first); // a new batch: estimated before
    const over = huge(ESTIMATE_AFTER_ROOM); // ~2 MiB estimated: over the cap
    batcher.add(over);
    expect(metrics.get(SPANS_DROPPED, { reason: 'queue_memory' })).toBe(1);
    expect(made[0]!.undos).toBe(1);
    const second = small();
    batcher.add(second);
    expect(batcher.queueState().bytes).toBe(2 * smallSize);
    // A span that fits is kept; then the room left is below ESTIMATE_AFTER_ROOM: estimated before, never pushed.
    const fits = huge(ESTIMATE_AFTER_ROOM / 2 - 200);
    batcher.add(fits);
    const held = batcher.queueState().bytes;
    expect(held).toBe(2 * smallSize + estimateSpanBytes(fits));
    expect(cap - held).toBeLessThan(ESTIMATE_AFTER_ROOM);
    const pushes = made[0]!.pushes;
    batcher.add(huge(ESTIMATE_AFTER_ROOM / 2));
    expect(made[0]!.pushes).toBe(pushes);
    expect(metrics.get(SPANS_DROPPED, { reason: 'queue_memory' })).toBe(2);
    await batcher.forceFlush();
    expect(exporter.batches.flat()).toEqual([first, second, fits]);
    expect(batcher.queueState()).toMatchObject({ spans: 0, bytes: 0 });
  });

  it('holds at most maxQueueBytes (estimated), in flight included; the overflow is dropped as queue_memory', async () => {
    const exporter = new FakeExporter();
    exporter.hold();
    const metrics = new SelfMetrics();
    const big = (): Span => makeSpan(resource, { attributes: { 'http.request.method': 'GET', blob: 'x'.repeat(1000) } });
    const size = estimateSpanBytes(big());
    batcher = new SpanBatcher(exporter, metrics, recordingLog(), {
      maxBatchSize: 2,
      maxQueueBytes: 5 * size + size / 2, // room for exactly 5
      scheduledDelayMs: 60_000,
    });
    for (let i = 0; i < 2; i++) batcher.add(big());
    await settle(); // 2 in flight
    for (let i = 0; i < 10; i++) batcher.add(big());
    expect(metrics.get(SPANS_DROPPED, { reason: 'queue_memory' })).toBe(7);
    expect(batcher.queueState()).toEqual({ spans: 5, bytes: 5 * size, capacitySpans: 65_536, capacityBytes: 5 * size + size / 2 });
    expect(batcher.peakQueueBytes).toBe(5 * size);
    exporter.release();
    await batcher.forceFlush();
    expect(exporter.batches.flat()).toHaveLength(5);
    // Drained: there is room again.
    batcher.add(big());
    expect(batcher.queueState().spans).toBe(1);
  });

  it('counts unsampled spans and never exports them (not a drop)', async () => {
    const exporter = new FakeExporter();
    const metrics = new SelfMetrics();
    batcher = new SpanBatcher(exporter, metrics, recordingLog(), { maxBatchSize: 2 });
    for (const s of spans(3, { traceFlags: 0x00 })) batcher.add(s);
    for (const s of spans(2, { traceFlags: 0x02 })) batcher.add(s); // bit 0 clear: unsampled
    batcher.add(makeSpan(resource, { traceFlags: 0x01 }));
    await batcher.forceFlush();
    expect(metrics.get(SPANS_UNSAMPLED)).toBe(5);
    expect(metrics.total(SPANS_DROPPED)).toBe(0);
    expect(exporter.sizes).toEqual([1]);
  });

  it('forceFlush exports everything added before it, in batches', async () => {
    const exporter = new FakeExporter();
    batcher = new SpanBatcher(exporter, new SelfMetrics(), recordingLog(), { maxBatchSize: 4, scheduledDelayMs: 60_000 });
    exporter.hold();
    for (const s of spans(4)) batcher.add(s); // export of 4 in flight (held)
    for (const s of spans(3)) batcher.add(s);
    const flushed = batcher.forceFlush();
    exporter.release();
    await flushed;
    expect(exporter.sizes).toEqual([4, 3]);
    expect(batcher.pendingCount).toBe(0);
  });

  it('shutdown gives up at its deadline, counting what is still queued, and refuses new spans', async () => {
    const exporter = new FakeExporter();
    exporter.hold(); // never released: a Collector that hangs
    const metrics = new SelfMetrics();
    const log = recordingLog();
    const b = new SpanBatcher(exporter, metrics, log, { maxBatchSize: 2, scheduledDelayMs: 60_000 });
    for (const s of spans(5)) b.add(s);
    await settle();
    const started = Date.now();
    await b.shutdown(150);
    expect(Date.now() - started).toBeLessThan(1000);
    // 2 in flight (the exporter accounts for them), 3 still queued at the deadline.
    expect(metrics.get(SPANS_DROPPED, { reason: 'shutdown' })).toBe(3);
    b.add(makeSpan(resource));
    expect(metrics.get(SPANS_DROPPED, { reason: 'shutdown' })).toBe(4);
    expect(log.warnings.join('\n')).toMatch(/shutdown deadline of 150 ms reached; dropped 3 queued spans/);
    expect(exporter.aborts).toBe(1); // the batch in flight is told to stop retrying
    exporter.release();
  });

  it('warns about unusable options and uses the defaults', () => {
    const log = recordingLog();
    batcher = new SpanBatcher(new FakeExporter(), new SelfMetrics(), log, {
      maxBatchSize: 0,
      scheduledDelayMs: 1.5,
      maxQueueSize: 100,
    });
    expect(log.warnings).toHaveLength(3); // maxBatchSize (bad), then 2048 > 100 clamped, scheduledDelayMs
  });
});

describe('createTraceExportPipeline (batcher + exporter against a real local HTTP server)', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('shutdown flushes pending spans to the endpoint and counts them exported', async () => {
    server = await startOtlpServer(ok);
    const metrics = new SelfMetrics();
    const log = recordingLog();
    const pipeline = pipelineFromEnv({
      metrics,
      log,
      env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: server.url },
      batch: { maxBatchSize: 512, scheduledDelayMs: 60_000 },
    });
    const sent = spans(5);
    for (const s of sent) pipeline.add(s);
    expect(server.requests).toHaveLength(0);
    await pipeline.shutdown();
    expect(server.requests).toHaveLength(1);
    const decoded = flattenSpans(decodeTraceRequest(server.requests[0].body));
    expect(decoded.map((s) => s.spanId)).toEqual(sent.map((s) => s.spanId));
    expect(metrics.get(SPANS_EXPORTED)).toBe(5);
    expect(log.warnings).toEqual([]);
  });

  it('batches by size and by time over HTTP', async () => {
    server = await startOtlpServer(ok);
    const metrics = new SelfMetrics();
    const pipeline = pipelineFromEnv({
      metrics,
      log: recordingLog(),
      env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: server.url },
      batch: { maxBatchSize: 3, scheduledDelayMs: 150 },
    });
    for (const s of spans(4)) pipeline.add(s);
    await server.waitForRequests(1);
    expect(flattenSpans(decodeTraceRequest(server.requests[0].body))).toHaveLength(3);
    const [, second] = await server.waitForRequests(2);
    expect(flattenSpans(decodeTraceRequest(second.body))).toHaveLength(1);
    await pipeline.shutdown();
    expect(metrics.get(SPANS_EXPORTED)).toBe(4);
  });

  it('warns about and ignores an unknown protocol (http/protobuf applies)', async () => {
    const log = recordingLog();
    const p = pipelineFromEnv({ metrics: new SelfMetrics(), log, env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift' } });
    await p.shutdown();
    expect(log.warnings).toEqual([expect.stringMatching(/ignoring OTEL_EXPORTER_OTLP_PROTOCOL "thrift"/)]);
  });

  it('a span the exporter cannot encode is dropped and counted alone; its batch still goes out', async () => {
    const metrics = new SelfMetrics();
    const log = recordingLog();
    const exported: Span[][] = [];
    /** Batches that refuse spans named 'bad', as an encoder refuses a span it cannot encode. */
    class Picky implements SpanBatch {
      readonly spans: Span[] = [];
      get length(): number {
        return this.spans.length;
      }
      push(span: Span): number {
        if (span.name === 'bad') throw new TypeError('cannot encode');
        return this.spans.push(span);
      }
    }
    const exporter: SpanExporter = {
      export: async () => {
        throw new Error('arrays are not expected here');
      },
      newBatch: () => new Picky(),
      exportBatch: async (b) => {
        exported.push((b as Picky).spans);
      },
      shutdown: async () => {},
    };
    const batcher = new SpanBatcher(exporter, metrics, log, { maxBatchSize: 2, scheduledDelayMs: 60_000 });
    const good = spans(3);
    batcher.add(good[0]);
    batcher.add(makeSpan(resource, { name: 'bad' }));
    batcher.add(good[1]);
    batcher.add(makeSpan(resource, { name: 'bad' }));
    batcher.add(good[2]);
    await batcher.forceFlush();
    expect(exported).toEqual([[good[0], good[1]], [good[2]]]);
    expect(metrics.get(SPANS_DROPPED, { reason: 'export_failed' })).toBe(2);
    expect(batcher.queueState().spans).toBe(0);
    expect(log.warnings.filter((w) => w.includes('cannot encode'))).toHaveLength(1);
    await batcher.shutdown(1000);
  });
});
