/**
 * Sends one batch of spans to the OTLP traces endpoint and accounts for it.
 *
 * `export()` never rejects and never throws: a Collector that is down, slow or rejecting costs the
 * batch (counted as `spanbridge_spans_dropped_total{reason="export_failed"}` plus one
 * `spanbridge_export_failures_total`) and a rate-limited warning, never the agent. It exports the
 * spans it is given; filtering unsampled spans is the batcher's job (before they take queue room).
 *
 * Layering, so that a later stage can add retry and other protocols without touching callers:
 *   spans -> toReadableSpan -> ProtobufTraceSerializer -> Transport.send -> SendResult -> counters.
 * A retry policy will wrap `transport.send` using `SendResult.kind`/`retryAfterMs`, within the
 * same `timeoutMs` budget.
 */
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { errorMessage } from '../../src/errors';
import type { SelfMetrics } from '../../src/metrics/counters';
import type { Span } from '../../src/spans/span';
import { FailureReporter } from '../failure-reporter';
import type { ReceiverLog } from '../log';
import { countDropped, countExported, countExportFailure } from '../self-metrics';
import type { OtlpTraceExporterConfig } from './config';
import { toReadableSpan } from './to-readable-span';
import { HttpTransport, type Transport } from './transport';

export interface OtlpTraceExporterDeps {
  /** Replaces the HTTP transport (tests, or a future gRPC transport). */
  readonly transport?: Transport;
  /** Minimum interval between two failure warnings. */
  readonly failureLogIntervalMs?: number;
}

export class OtlpTraceExporter {
  private readonly transport: Transport;
  private readonly failures: FailureReporter;
  private closed?: Promise<void>;
  /** Exports in flight, so shutdown can let them finish before closing connections. */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly config: OtlpTraceExporterConfig,
    private readonly metrics: SelfMetrics,
    log: ReceiverLog,
    deps: OtlpTraceExporterDeps = {},
  ) {
    this.transport = deps.transport ?? new HttpTransport({ url: config.endpoint, headers: config.headers });
    this.failures = new FailureReporter(log, deps.failureLogIntervalMs);
  }

  /** Delivers `spans` as one OTLP request. Resolves when accounted for; never rejects. */
  export(spans: readonly Span[]): Promise<void> {
    if (spans.length === 0) return Promise.resolve();
    if (this.closed) {
      countDropped(this.metrics, 'shutdown', spans.length);
      return Promise.resolve();
    }
    const p = this.deliver(spans).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    return p;
  }

  /** Waits for exports in flight (each bounded by the timeout), then closes connections. Idempotent. */
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
      body = ProtobufTraceSerializer.serializeRequest(spans.map(toReadableSpan));
    } catch (err) {
      this.fail(`export: serializing ${spans.length} spans failed: ${errorMessage(err)}`, spans.length);
      return;
    }
    if (!body) {
      this.fail(`export: serializing ${spans.length} spans produced no request`, spans.length);
      return;
    }
    let message: string;
    try {
      const result = await this.transport.send(body, this.config.timeoutMs);
      if (result.kind === 'success') {
        countExported(this.metrics, spans.length);
        this.failures.success();
        return;
      }
      message = result.error.message;
    } catch (err) {
      // Transports classify instead of throwing; this only guards the "never rejects" contract.
      message = `export: ${errorMessage(err)}`;
    }
    this.fail(message, spans.length);
  }

  private fail(message: string, spanCount: number): void {
    countExportFailure(this.metrics);
    countDropped(this.metrics, 'export_failed', spanCount);
    this.failures.failure(message, spanCount);
  }
}
