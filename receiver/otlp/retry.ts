/**
 * Retry per the OTLP specification: a retryable outcome (HTTP 429/502/503/504, gRPC UNAVAILABLE
 * and friends, connection errors, an attempt's timeout) is tried again after a delay — the
 * server's `Retry-After` / `RetryInfo` when it gave one, otherwise exponential backoff with
 * jitter — until it succeeds, fails permanently, or `maxElapsedMs` since the first attempt would
 * be exceeded. Only the policy lives here; the transport classifies, the exporter counts.
 *
 * Jitter: each backoff delay is scaled by a random factor in [1 - jitter, 1 + jitter], so agents
 * restarted together do not retry in lockstep against a recovering Collector.
 */
import { OtlpExportError, type SendResult } from './transport';

export interface RetryPolicy {
  /** First backoff delay (default 1000 ms). */
  readonly initialBackoffMs: number;
  /** Cap on a backoff delay (default 5000 ms); `Retry-After` is honoured beyond it. */
  readonly maxBackoffMs: number;
  /** Growth factor between delays (default 2). */
  readonly multiplier: number;
  /** Relative jitter in [0, 1] (default 0.2). */
  readonly jitter: number;
  /** Give up when the next attempt would start later than this after the first (default 300 s). */
  readonly maxElapsedMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  initialBackoffMs: 1000,
  maxBackoffMs: 5000,
  multiplier: 2,
  jitter: 0.2,
  maxElapsedMs: 300_000,
});

export interface RetryHooks {
  /** Called before each attempt (1-based). */
  onAttempt?(attempt: number): void;
  /** Called when a retryable outcome will be retried after `delayMs`. */
  onRetry?(attempt: number, delayMs: number, result: SendResult): void;
  /** Cancels waiting and further attempts (shutdown). */
  readonly signal?: AbortSignal;
  /** Test seams. */
  readonly now?: () => number;
  readonly random?: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export type RetryOutcome =
  | { readonly kind: 'success'; readonly attempts: number }
  /** A permanent failure (not retryable). */
  | { readonly kind: 'failure'; readonly attempts: number; readonly result: SendResult }
  /** Still retryable when `maxElapsedMs` ran out. */
  | { readonly kind: 'exhausted'; readonly attempts: number; readonly result: SendResult }
  /** The signal fired. */
  | { readonly kind: 'aborted'; readonly attempts: number; readonly result?: SendResult };

/** The n-th backoff delay (n >= 1), before jitter. */
export function backoffDelayMs(policy: RetryPolicy, n: number): number {
  return Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** (n - 1));
}

/** `delay` scaled by a factor in [1 - jitter, 1 + jitter]; `random` in [0, 1). */
export function withJitter(delayMs: number, jitter: number, random: number): number {
  return Math.max(0, Math.round(delayMs * (1 - jitter + 2 * jitter * random)));
}

/**
 * Runs `attempt(timeoutMs)` until done. Each attempt gets `timeoutMs`, shortened so that it ends
 * within `maxElapsedMs`. Never rejects (an `attempt` that throws counts as a permanent failure).
 */
export async function sendWithRetry(
  attempt: (timeoutMs: number, signal?: AbortSignal) => Promise<SendResult>,
  timeoutMs: number,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
): Promise<RetryOutcome> {
  const now = hooks.now ?? Date.now;
  const random = hooks.random ?? Math.random;
  const sleep = hooks.sleep ?? abortableSleep;
  const start = now();
  for (let n = 1; ; n++) {
    if (hooks.signal?.aborted) return { kind: 'aborted', attempts: n - 1 };
    hooks.onAttempt?.(n);
    const remaining = policy.maxElapsedMs - (now() - start);
    let result: SendResult;
    try {
      result = await attempt(Math.max(1, Math.min(timeoutMs, remaining)), hooks.signal);
    } catch (err) {
      const error = new OtlpExportError(`export: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      return { kind: 'failure', attempts: n, result: { kind: 'failure', error } };
    }
    if (result.kind === 'success') return { kind: 'success', attempts: n };
    if (hooks.signal?.aborted) return { kind: 'aborted', attempts: n, result };
    if (result.kind === 'failure') return { kind: 'failure', attempts: n, result };
    const delay = result.retryAfterMs ?? withJitter(backoffDelayMs(policy, n), policy.jitter, random());
    if (now() - start + delay >= policy.maxElapsedMs) return { kind: 'exhausted', attempts: n, result };
    hooks.onRetry?.(n, delay, result);
    await sleep(delay, hooks.signal);
  }
}

/** Resolves after `ms`, or at once when `signal` fires; the timer never holds the process open. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal?.addEventListener('abort', done, { once: true });
  });
}
