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
 *   spans -> encodeTraceRequest (protobuf; JSON: toReadableSpan + otlp-transformer) -> sendWithRetry(transport.send)
 *     -> counters.
 */
import { errorMessage } from '../errors';
import type { SelfMetrics, Span } from '../model';
import { FailureReporter } from '../failure-reporter';
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
import { encodeTraceRequest } from './trace-encoder';
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

  constructor(
    private readonly config: OtlpExporterConfig,
    private readonly metrics: SelfMetrics,
    log: ReceiverLog,
    private readonly deps: OtlpTraceExporterDeps = {},
  ) {
    this.transport = deps.transport ?? createTransport(config);
    this.failures = new FailureReporter(log, deps.failureLogIntervalMs);
    this.retry = deps.retry ?? DEFAULT_RETRY_POLICY;
  }

  /** Delivers `spans` as one OTLP request (retried). Resolves when accounted for; never rejects. */
  export(spans: readonly Span[]): Promise<void> {
    if (spans.length === 0) return Promise.resolve();
    if (this.closed || this.aborter.signal.aborted) {
      countDropped(this.metrics, 'shutdown', spans.length);
      return Promise.resolve();
    }
    const p = this.deliver(spans).finally(() => this.inFlight.delete(p));
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

  private async deliver(spans: readonly Span[]): Promise<void> {
    let body: Uint8Array | undefined;
    try {
      const merger = this.deps.resources;
      const resourceOf = merger ? (s: Span) => merger.merge(s.resource) : (s: Span) => s.resource;
      // Protobuf (HTTP and gRPC) straight from the model; JSON through the SDK shape.
      body =
        this.config.protocol === 'http/json'
          ? serializeTraces(this.config.protocol, spans.map((s) => jsonShape().toReadableSpanWithResource(s, resourceOf(s))))
          : encodeTraceRequest(spans, resourceOf);
    } catch (err) {
      this.fail(`export: serializing ${spans.length} spans failed: ${errorMessage(err)}`, spans.length, 'export_failed');
      return;
    }
    if (!body) {
      this.fail(`export: serializing ${spans.length} spans produced no request`, spans.length, 'export_failed');
      return;
    }
    const payload = body;
    const outcome = await sendWithRetry(
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
    switch (outcome.kind) {
      case 'success':
        countExported(this.metrics, spans.length);
        this.failures.success();
        return;
      case 'failure':
        this.fail(outcome.result.kind === 'success' ? 'export failed' : outcome.result.error.message, spans.length, 'export_failed');
        return;
      case 'exhausted':
        this.fail(
          `${outcome.result.kind === 'success' ? 'export failed' : outcome.result.error.message} (gave up after ${outcome.attempts} attempts within ${this.retry.maxElapsedMs} ms)`,
          spans.length,
          'retry_exhausted',
        );
        return;
      case 'aborted':
        this.fail(`export: cancelled at shutdown after ${outcome.attempts} attempts`, spans.length, 'shutdown');
        return;
    }
  }

  private fail(message: string, spanCount: number, reason: DropReason): void {
    countExportFailure(this.metrics, 'traces');
    countDropped(this.metrics, reason, spanCount);
    this.failures.failure(message, spanCount);
  }
}
