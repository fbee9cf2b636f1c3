import { SystemClock } from '../../../src/time/clock';

describe('SystemClock', () => {
  it('converts the kernel monotonic clock (same as process.hrtime) to Unix time', () => {
    const clock = new SystemClock();
    const mono = process.hrtime.bigint();
    const unixMs = Number(clock.toUnixNano(mono) / 1_000_000n);
    expect(Math.abs(unixMs - Date.now())).toBeLessThan(50);
  });

  it('preserves nanosecond differences exactly', () => {
    const clock = new SystemClock();
    expect(clock.toUnixNano(1_000_000_123n) - clock.toUnixNano(1_000_000_000n)).toBe(123n);
  });
});
