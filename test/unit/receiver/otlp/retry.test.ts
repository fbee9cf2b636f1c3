import { backoffDelayMs, sendWithRetry, withJitter, type RetryPolicy } from '../../../../receiver/otlp/retry';
import { OtlpExportError, type SendResult } from '../../../../receiver/otlp/transport';

const policy: RetryPolicy = { initialBackoffMs: 1000, maxBackoffMs: 5000, multiplier: 2, jitter: 0.2, maxElapsedMs: 30_000 };
const retryable = (retryAfterMs?: number): SendResult => ({
  kind: 'retryable',
  error: new OtlpExportError('HTTP 503'),
  ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
});
const failure: SendResult = { kind: 'failure', error: new OtlpExportError('HTTP 400') };
const success: SendResult = { kind: 'success' };

/** A virtual clock: sleeping advances it, attempts take `attemptMs`. */
function harness(results: SendResult[], attemptMs = 0, random = 0.5) {
  let t = 0;
  const sleeps: number[] = [];
  const timeouts: number[] = [];
  const attempt = async (timeoutMs: number): Promise<SendResult> => {
    timeouts.push(timeoutMs);
    t += attemptMs;
    return results.shift() ?? success;
  };
  const hooks = {
    now: () => t,
    random: () => random,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
  };
  return { attempt, hooks, sleeps, timeouts };
}

describe('retry policy', () => {
  it('backs off exponentially up to the cap', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelayMs(policy, n))).toEqual([1000, 2000, 4000, 5000, 5000]);
  });

  it('jitters within [1 - j, 1 + j]', () => {
    expect(withJitter(1000, 0.2, 0)).toBe(800);
    expect(withJitter(1000, 0.2, 0.5)).toBe(1000);
    expect(withJitter(1000, 0.2, 0.9999)).toBe(1200);
    expect(withJitter(1000, 0, 0.3)).toBe(1000);
  });

  it('retries retryable outcomes until success, counting attempts', async () => {
    const h = harness([retryable(), retryable(), retryable()]);
    const retries: number[] = [];
    const outcome = await sendWithRetry(h.attempt, 10_000, policy, { ...h.hooks, onRetry: (n) => retries.push(n) });
    expect(outcome).toEqual({ kind: 'success', attempts: 4 });
    expect(h.sleeps).toEqual([1000, 2000, 4000]);
    expect(retries).toEqual([1, 2, 3]);
  });

  it('honours Retry-After instead of the backoff', async () => {
    const h = harness([retryable(7000), retryable()]);
    await sendWithRetry(h.attempt, 10_000, policy, h.hooks);
    expect(h.sleeps).toEqual([7000, 2000]);
  });

  it('does not retry a permanent failure', async () => {
    const h = harness([failure]);
    const outcome = await sendWithRetry(h.attempt, 10_000, policy, h.hooks);
    expect(outcome.kind).toBe('failure');
    expect(outcome.attempts).toBe(1);
    expect(h.sleeps).toEqual([]);
  });

  it('gives up when the next attempt would start past the maximum elapsed time', async () => {
    const h = harness(Array.from({ length: 100 }, () => retryable()), 0, 0.5);
    const outcome = await sendWithRetry(h.attempt, 10_000, { ...policy, maxElapsedMs: 12_000 }, h.hooks);
    // 1000 + 2000 + 4000 = 7000 elapsed; the next delay (5000) would reach 12000: exhausted.
    expect(outcome).toMatchObject({ kind: 'exhausted', attempts: 4 });
    expect(h.sleeps).toEqual([1000, 2000, 4000]);
  });

  it('gives up at once when Retry-After points past the maximum elapsed time', async () => {
    const h = harness([retryable(60_000)]);
    const outcome = await sendWithRetry(h.attempt, 10_000, policy, h.hooks);
    expect(outcome).toMatchObject({ kind: 'exhausted', attempts: 1 });
  });

  it('shortens the last attempt timeout to what is left of the budget', async () => {
    const h = harness([retryable(), retryable()], 3000);
    await sendWithRetry(h.attempt, 10_000, { ...policy, maxElapsedMs: 11_000 }, h.hooks);
    // t=0: 10000 (capped by timeout); t=4000: 7000 left; t=9000: 2000 left.
    expect(h.timeouts).toEqual([10_000, 7000, 2000]);
  });

  it('stops when the signal fires, while waiting', async () => {
    const abort = new AbortController();
    const outcome = await sendWithRetry(async () => retryable(), 1000, { ...policy, initialBackoffMs: 60_000, maxBackoffMs: 60_000, maxElapsedMs: 600_000 }, {
      signal: abort.signal,
      onRetry: () => setTimeout(() => abort.abort(), 10),
    });
    expect(outcome.kind).toBe('aborted');
    expect(outcome.attempts).toBe(1);
  });

  it('turns an attempt that throws into a permanent failure (never rejects)', async () => {
    const outcome = await sendWithRetry(async () => {
      throw new Error('boom');
    }, 1000, policy);
    expect(outcome.kind).toBe('failure');
    expect(outcome.kind === 'failure' && outcome.result.kind === 'failure' && outcome.result.error.message).toMatch(/boom/);
  });
});
