/**
 * Turns a stream of export outcomes into a few log lines. When the Collector is down every batch
 * fails; one warning per batch would flood the agent's log for as long as the outage lasts. So:
 * the first failure is logged at once, later ones are summarised at most once per `intervalMs`
 * (count and latest error), and the first success after failures is logged as a recovery.
 */
import type { ReceiverLog } from './log';

export const DEFAULT_FAILURE_LOG_INTERVAL_MS = 60_000;

export class FailureReporter {
  /** When the last warning line was written; -Infinity = never. */
  private lastWarnAt = -Infinity;
  /** Failures since the last warning line (not yet reported). */
  private unreported = 0;
  /** Failures since the last success. */
  private sinceSuccess = 0;
  private lastError = '';

  constructor(
    private readonly log: ReceiverLog,
    private readonly intervalMs: number = DEFAULT_FAILURE_LOG_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** `droppedSpans`: what the failure cost, when it cost spans (metrics exports do not). */
  failure(message: string, droppedSpans?: number): void {
    this.sinceSuccess++;
    this.unreported++;
    this.lastError = message;
    const t = this.now();
    if (t - this.lastWarnAt < this.intervalMs) return;
    const more = this.unreported > 1 ? ` (${this.unreported} failed exports since the last report)` : '';
    const cost = droppedSpans === undefined ? '' : `; dropped ${droppedSpans} spans`;
    this.log.warn(`${message}${cost}${more}; further failures are reported at most every ${Math.round(this.intervalMs / 1000)} s`);
    this.lastWarnAt = t;
    this.unreported = 0;
  }

  success(): void {
    if (this.sinceSuccess === 0) return;
    const tail = this.unreported > 0 ? `; last error: ${this.lastError}` : '';
    this.log.info(`export recovered after ${this.sinceSuccess} failed exports${tail}`);
    this.sinceSuccess = 0;
    this.unreported = 0;
    this.lastWarnAt = -Infinity;
  }
}
