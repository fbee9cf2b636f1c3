/**
 * Time in one place. BPF stamps CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns); spans need Unix
 * time. Node's process.hrtime.bigint() reads the same CLOCK_MONOTONIC, so the offset between the
 * two clocks is sampled here and applied to every kernel timestamp. It is re-sampled periodically
 * so wall-clock adjustments (NTP) are followed; durations are never affected.
 */
export interface Clock {
  /** Converts a kernel monotonic timestamp (ns) to Unix epoch nanoseconds. */
  toUnixNano(monotonicNs: bigint): bigint;
  /** Current kernel monotonic time (ns). */
  nowMonotonic(): bigint;
}

function sampleOffset(): bigint {
  // performance.timeOrigin + now() has microsecond resolution; take the sample whose
  // monotonic read is bracketed most tightly.
  let best = 0n;
  let bestSpread = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 5; i++) {
    const before = process.hrtime.bigint();
    const wallMs = performance.timeOrigin + performance.now();
    const after = process.hrtime.bigint();
    const spread = Number(after - before);
    if (spread < bestSpread) {
      bestSpread = spread;
      const mono = before + (after - before) / 2n;
      best = BigInt(Math.round(wallMs * 1e6)) - mono;
    }
  }
  return best;
}

export class SystemClock implements Clock {
  private offsetNs: bigint;
  private sampledAt: bigint;
  private readonly resyncEveryNs: bigint;

  constructor(resyncEveryMs = 60_000) {
    this.offsetNs = sampleOffset();
    this.sampledAt = process.hrtime.bigint();
    this.resyncEveryNs = BigInt(resyncEveryMs) * 1_000_000n;
  }

  toUnixNano(monotonicNs: bigint): bigint {
    // The timestamp itself says when to re-sample (kernel records are converted within moments of
    // their stamp, on the same clock): no clock read per call, twice per span on the hot path.
    // A stamp far ahead of the last sample (or a stale one far behind it) checks the clock.
    const since = monotonicNs - this.sampledAt;
    if (since > this.resyncEveryNs || since < -this.resyncEveryNs) {
      const now = process.hrtime.bigint();
      if (now - this.sampledAt > this.resyncEveryNs) {
        this.offsetNs = sampleOffset();
        this.sampledAt = now;
      }
    }
    return monotonicNs + this.offsetNs;
  }

  nowMonotonic(): bigint {
    return process.hrtime.bigint();
  }
}

/** A clock with a fixed offset, for tests. */
export class FixedClock implements Clock {
  constructor(
    private readonly offsetNs: bigint,
    private monotonic = 0n,
  ) {}

  toUnixNano(monotonicNs: bigint): bigint {
    return monotonicNs + this.offsetNs;
  }

  nowMonotonic(): bigint {
    return this.monotonic;
  }

  advance(ns: bigint): void {
    this.monotonic += ns;
  }
}
