/**
 * Sends one batch of spans to the OTLP traces endpoint, retrying per the OTLP specification, and
 * accounts for it.
 *
 * `export()` never rejects and never throws: a Collector that is down is retried (backoff,
 * Retry-After) for up to the policy's maximum elapsed time while the batcher keeps queueing; a
 * batch that cannot be delivered costs its spans (`spanbridge_spans_dropped_total` with reason
 * `export_failed`, `retry_exhausted` or `shutdown`, plus one `spanbridge_export_failures_total`)
 * and a rate-limited warning, never the agent. Every attempt and every retry is counted.
 *
 * Layering:
 *   protobuf (HTTP and gRPC): spans -> TraceBatch (`newBatch`: each span encoded as the batcher
 *     adds it) -> finishInPlace() -> sendWithRetry(transport.send) -> release -> counters;
 *   JSON: spans (an array) -> toReadableSpan + otlp-transformer -> the same.
 */
import { errorMessage } from '../errors';
import type { Resource, SelfMetrics, Span } from '../model';
import { FailureReporter } from '../failure-reporter';
import type { SpanBatch } from '../batcher';
import type { ReceiverLog } from '../log';
import type { ResourceMerger } from '../resource-merge';
import {
  countDropped,
  countExportAttempt,
  countExported,
  countExportFailure,
  countExportRetry,
  type DropReason,
} from '../self-metrics';
import type { OtlpExporterConfig } from './config';
import { createTransport } from './create-transport';
import { DEFAULT_RETRY_POLICY, sendWithRetry, type RetryHooks, type RetryPolicy } from './retry';
import { serializeTraces } from './serializers';
import { encodeTraceRequest, TraceBatch } from './trace-encoder';
import type * as ToReadable from './to-readable-span';
import type { Transport } from './transport';

export interface OtlpTraceExporterDeps {
  /** Replaces the transport the configuration asks for (tests). */
  readonly transport?: Transport;
  /** Minimum interval between two failure warnings. */
  readonly failureLogIntervalMs?: number;
  readonly retry?: RetryPolicy;
  /** Fills the agent's OTEL_RESOURCE_ATTRIBUTES into every span's resource. */
  readonly resources?: ResourceMerger;
  /** Test seams for the retry loop (sleep, random, now). */
  readonly retryHooks?: Pick<RetryHooks, 'sleep' | 'random' | 'now'>;
}

function noop(): void {}

/** The SDK span shape, for OTLP/JSON only: loaded on first use. */
function jsonShape(): typeof ToReadable {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./to-readable-span') as typeof ToReadable;
}

export class OtlpTraceExporter {
  private readonly transport: Transport;
  private readonly failures: FailureReporter;
  private readonly retry: RetryPolicy;
  private readonly aborter = new AbortController();
  private closed?: Promise<void>;
  /** Exports in flight, so shutdown can let them finish before closing connections. */
  private readonly inFlight = new Set<Promise<void>>();
  private readonly resourceOf: (span: Span) => Resource;

  constructor(
    private readonly config: OtlpExporterConfig,
    private readonly metrics: SelfMetrics,
    log: ReceiverLog,
    private readonly deps: OtlpTraceExporterDeps = {},
  ) {
    this.transport = deps.transport ?? createTransport(config);
    this.failures = new FailureReporter(log, deps.failureLogIntervalMs);
    this.retry = deps.retry ?? DEFAULT_RETRY_POLICY;
    const merger = deps.resources;
    this.resourceOf = merger ? (s: Span) => merger.merge(s.resource) : (s: Span) => s.resource;
  }

  /**
   * An empty batch for the batcher: protobuf batches encode each span as it is pushed (the queue
   * then holds bytes); OTLP/JSON goes through the SDK shape at export, so it holds the spans.
   */
  newBatch(): SpanBatch {
    return this.config.protocol === 'http/json' ? ([] as Span[]) : new TraceBatch(this.resourceOf);
  }

  /** Delivers a batch `newBatch` made. */
  exportBatch(batch: SpanBatch): Promise<void> {
    if (batch instanceof TraceBatch || Array.isArray(batch)) return this.export(batch);
    countDropped(this.metrics, 'export_failed', batch.length);
    return Promise.resolve();
  }

  /** Delivers `batch` as one OTLP request (retried). Resolves when accounted for; never rejects. */
  export(batch: readonly Span[] | TraceBatch): Promise<void> {
    if (batch.length === 0) {
      if (batch instanceof TraceBatch) batch.discard();
      return Promise.resolve();
    }
    if (this.closed || this.aborter.signal.aborted) {
      countDropped(this.metrics, 'shutdown', batch.length);
      if (batch instanceof TraceBatch) batch.discard();
      return Promise.resolve();
    }
    const p = this.deliver(batch).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    return p;
  }

  /** Cancels retry waits and attempts in progress; their spans are counted as dropped (shutdown). */
  abort(): void {
    this.aborter.abort();
  }

  /** Waits for exports in flight (each bounded by the retry policy or `abort`), then closes connections. Idempotent. */
  shutdown(): Promise<void> {
    this.closed ??= (async () => {
      await Promise.all(this.inFlight);
      await this.transport.close().catch(() => {});
    })();
    return this.closed;
  }

  private async deliver(batch: readonly Span[] | TraceBatch): Promise<void> {
    const count = batch.length;
    let body: Uint8Array | undefined;
    /** Gives the request's buffer back to the encoder's pool once no attempt can read it any more. */
    let release = noop;
    try {
      const resourceOf = this.resourceOf;
      // Protobuf (HTTP and gRPC) straight from the model (already encoded when the batcher made
      // the batch); JSON through the SDK shape.
      if (batch instanceof TraceBatch) ({ body, release } = batch.finishInPlace());
      else if (this.config.protocol === 'http/json') body = serializeTraces(this.config.protocol, batch.map((s) => jsonShape().toReadableSpanWithResource(s, resourceOf(s))));
      else body = encodeTraceRequest(batch, resourceOf);
    } catch (err) {
      this.fail(`export: serializing ${count} spans failed: ${errorMessage(err)}`, count, 'export_failed');
      return;
    }
    if (!body) {
      release();
      this.fail(`export: serializing ${count} spans produced no request`, count, 'export_failed');
      return;
    }
    const payload = body;
    let outcome: Awaited<ReturnType<typeof sendWithRetry>>;
    try {
      outcome = await sendWithRetry(
        (timeoutMs, signal) => {
          countExportAttempt(this.metrics, 'traces');
          return this.transport.send(payload, timeoutMs, signal);
        },
        this.config.timeoutMs,
        this.retry,
        {
          ...this.deps.retryHooks,
          signal: this.aborter.signal,
          onRetry: () => countExportRetry(this.metrics, 'traces'),
        },
      );
    } finally {
      // Every attempt has ended: the transports keep nothing of the body past their answer (undici
      // destroys the socket of an attempt it abandons; gRPC frames a copy).
      release();
    }
    switch (outcome.kind) {
      case 'success':
        countExported(this.metrics, count);
        this.failures.success();
        return;
      case 'failure':
        this.fail(outcome.result.kind === 'success' ? 'export failed' : outcome.result.error.message, count, 'export_failed');
        return;
      case 'exhausted':
        this.fail(
          `${outcome.result.kind === 'success' ? 'export failed' : outcome.result.error.message} (gave up after ${outcome.attempts} attempts within ${this.retry.maxElapsedMs} ms)`,
          count,
          'retry_exhausted',
        );
        return;
      case 'aborted':
        this.fail(`export: cancelled at shutdown after ${outcome.attempts} attempts`, count, 'shutdown');
        return;
    }
  }

  private fail(message: string, spanCount: number, reason: DropReason): void {
    countExportFailure(this.metrics, 'traces');
    countDropped(this.metrics, reason, spanCount);
    this.failures.failure(message, spanCount);
  }
}
