import { median, pairedDifference, pairedRatio, percentile, round, spread, withinNoise } from '../../../bench/lib/stats';

describe('bench statistics', () => {
  test('median of odd and even counts, order does not matter', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });

  test('percentiles interpolate between closest ranks', () => {
    const v = [10, 20, 30, 40, 50];
    expect(percentile(v, 0)).toBe(10);
    expect(percentile(v, 1)).toBe(50);
    expect(percentile(v, 0.25)).toBe(20);
    expect(percentile(v, 0.1)).toBeCloseTo(14);
    expect(percentile([1, 2], 0.99)).toBeCloseTo(1.99);
  });

  test('percentile rejects empty input and bad quantiles', () => {
    expect(() => percentile([], 0.5)).toThrow(RangeError);
    expect(() => percentile([1], 1.5)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });

  test('spread gives min, quartiles, max and count', () => {
    expect(spread([5, 1, 3, 2, 4])).toEqual({ n: 5, median: 3, min: 1, p25: 2, p75: 4, max: 5 });
  });

  test('paired rounds compare round i with round i', () => {
    const r = pairedRatio([100, 200, 100], [90, 200, 50]);
    expect(r.perRound.median).toBeCloseTo(0.9);
    expect(r.perRound.min).toBeCloseTo(0.5);
    expect(r.perRound.max).toBeCloseTo(1);
    const d = pairedDifference([10, 12], [15, 13, 99]);
    expect(d.perRound.n).toBe(2);
    expect(d.perRound.median).toBe(3);
    expect(() => pairedRatio([], [1])).toThrow(RangeError);
  });

  test('withinNoise: overlapping ranges or a shift inside the baseline range', () => {
    expect(withinNoise(pairedDifference([100, 104, 102], [103, 105, 101]))).toBe(true);
    expect(withinNoise(pairedDifference([100, 101, 100], [150, 151, 149]))).toBe(false);
  });

  test('round keeps significant digits, never integer digits', () => {
    expect(round(1234.567)).toBe(1235);
    expect(round(12.345)).toBe(12.3);
    expect(round(0.012345)).toBe(0.0123);
    expect(round(0)).toBe(0);
  });
});
