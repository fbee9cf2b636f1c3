/**
 * The statistics every benchmark figure uses: median and percentiles (linear interpolation between
 * closest ranks), spread (min, quartiles, max), and the per-round comparison of alternating rounds.
 * Pure functions; unit-tested in test/unit/bench/stats.test.ts.
 */

/** The q-quantile (0..1) of values, interpolating linearly between closest ranks. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError('percentile of no values');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q} is not in 0..1`);
  const s = [...values].sort((a, b) => a - b);
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export function median(values: readonly number[]): number {
  return percentile(values, 0.5);
}

export interface Spread {
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly p25: number;
  readonly p75: number;
  readonly max: number;
}

export function spread(values: readonly number[]): Spread {
  return {
    n: values.length,
    median: median(values),
    min: Math.min(...values),
    p25: percentile(values, 0.25),
    p75: percentile(values, 0.75),
    max: Math.max(...values),
  };
}

/** Alternating rounds: round i of `without` is compared with round i of `with`. */
export interface Paired {
  readonly without: Spread;
  readonly with: Spread;
  /** Per-round with/without (ratio) or with-without (difference), summarised. */
  readonly perRound: Spread;
}

export function pairedRatio(without: readonly number[], withAgent: readonly number[]): Paired {
  return paired(without, withAgent, (a, b) => b / a);
}

export function pairedDifference(without: readonly number[], withAgent: readonly number[]): Paired {
  return paired(without, withAgent, (a, b) => b - a);
}

function paired(without: readonly number[], withAgent: readonly number[], f: (a: number, b: number) => number): Paired {
  const n = Math.min(without.length, withAgent.length);
  if (n === 0) throw new RangeError('no complete round');
  const per: number[] = [];
  for (let i = 0; i < n; i++) per.push(f(without[i], withAgent[i]));
  return { without: spread(without), with: spread(withAgent), perRound: spread(per) };
}

/**
 * True when a difference between two arms is within the noise: the median difference is no larger
 * than the range (max - min) of the baseline arm, or the arms' ranges overlap.
 */
export function withinNoise(p: Paired): boolean {
  const noise = p.without.max - p.without.min;
  const overlap = p.with.min <= p.without.max && p.without.min <= p.with.max;
  return Math.abs(p.with.median - p.without.median) <= noise || overlap;
}

/** Rounds a figure to a sensible number of significant digits for reports. */
export function round(v: number, digits = 3): number {
  if (!Number.isFinite(v) || v === 0) return v;
  const m = Math.pow(10, Math.max(0, digits - 1 - Math.floor(Math.log10(Math.abs(v)))));
  return Math.round(v * m) / m;
}
