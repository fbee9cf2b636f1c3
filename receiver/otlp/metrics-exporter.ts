/**
 * Periodic OTLP metrics export: every `intervalMs`, the producer's current ResourceMetrics
 * (cumulative RED histograms + self-metrics) are sent as one request, retried per the OTLP spec
 * within the interval. Cumulative temporality makes a lost export harmless: the next one carries
 * the totals. So there is no queue: an export still running when the next tick comes makes that
 * tick skip. Never throws; failures are counted (`spanbridge_export_failures_total{signal="metrics"}`)
 * and reported at a limited rate.
 */
import { errorMessage } from '../errors';
import type { SelfMetrics } from '../model';
import { FailureReporter } from '../failure-reporter';
import type { ReceiverLog } from '../log';
import { countExportAttempt, countExportFailure, countExportRetry } from '../self-metrics';
import type { OtlpExporterConfig } from './config';
import { createTransport } from './create-transport';
import type { ResourceMetrics } from './metric-types';
import { DEFAULT_RETRY_POLICY, sendWithRetry, type RetryPolicy } from './retry';
import { serializeMetrics } from './serializers';
import type { Transport } from './transport';

export const DEFAULT_METRIC_EXPORT_INTERVAL_MS = 60_000;

export interface OtlpMetricsExporterDeps {
  readonly transport?: Transport;
  readonly retry?: RetryPolicy;
  readonly failureLogIntervalMs?: number;
}

export class OtlpMetricsExporter {
  private readonly transport: Transport;
  private readonly failures: FailureReporter;
  private readonly retry: RetryPolicy;
  private readonly aborter = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly config: OtlpExporterConfig,
    private readonly metrics: SelfMetrics,
    log: ReceiverLog,
    private readonly produce: () => ResourceMetrics[],
    private readonly intervalMs: number = DEFAULT_METRIC_EXPORT_INTERVAL_MS,
    deps: OtlpMetricsExporterDeps = {},
  ) {
    this.transport = deps.transport ?? createTransport(config);
    this.failures = new FailureReporter(log, deps.failureLogIntervalMs);
    const policy = deps.retry ?? DEFAULT_RETRY_POLICY;
    // Retrying past the next tick is pointless: that export carries newer totals.
    this.retry = { ...policy, maxElapsedMs: Math.min(policy.maxElapsedMs, intervalMs) };
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.exportNow(), this.intervalMs);
    this.timer.unref();
  }

  /** Exports the current values now, unless an export is running (then waits for that one). */
  exportNow(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.running ??= this.exportOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stops the timer, sends the final values (within `timeoutMs`), closes the connection. */
  async shutdown(timeoutMs = 5000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const final = (this.running ?? Promise.resolve()).then(() => this.exportNow());
    const deadline = setTimeout(() => this.aborter.abort(), timeoutMs);
    deadline.unref();
    await final;
    clearTimeout(deadline);
    this.closed = true;
    await this.transport.close().catch(() => {});
  }

  private async exportOnce(): Promise<void> {
    let body: Uint8Array | undefined;
    try {
      body = serializeMetrics(this.config.protocol, this.produce());
    } catch (err) {
      this.fail(`metrics export: serializing failed: ${errorMessage(err)}`);
      return;
    }
    if (!body) return; // nothing to export
    const payload = body;
    const outcome = await sendWithRetry(
      (timeoutMs, signal) => {
        countExportAttempt(this.metrics, 'metrics');
        return this.transport.send(payload, timeoutMs, signal);
      },
      this.config.timeoutMs,
      this.retry,
      { signal: this.aborter.signal, onRetry: () => countExportRetry(this.metrics, 'metrics') },
    );
    if (outcome.kind === 'success') {
      this.failures.success();
      return;
    }
    const why = outcome.kind === 'aborted' ? 'cancelled at shutdown' : outcome.result.kind === 'success' ? 'failed' : outcome.result.error.message;
    this.fail(`metrics export: ${why}`);
  }

  private fail(message: string): void {
    countExportFailure(this.metrics, 'metrics');
    this.failures.failure(message);
  }
}
