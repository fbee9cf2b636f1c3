import { GoClientAdoption } from '../../../src/tracers/go-client-adoption';
import type { BpfLink } from '../../../src/bpf/types';

describe('GoClientAdoption', () => {
  const setup = () => {
    const counts = new Map<number, bigint>();
    const calls = new Map<number, bigint>();
    let now = 0;
    const links: { pid: number; destroyed: boolean }[] = [];
    const a = new GoClientAdoption(
      { unknownWrites: (pid) => counts.get(pid) ?? 0n, adoptCalls: (pid) => calls.get(pid) ?? 0n },
      () => now,
      30_000,
      256n,
    );
    const attachFor = (pid: number) => () => {
      const l = { pid, destroyed: false };
      links.push(l);
      return { destroy: () => void (l.destroyed = true) } as unknown as BpfLink;
    };
    return { a, counts, calls, links, attachFor, advance: (ms: number) => void (now += ms) };
  };

  it('writes ahead of their caller attach the probe like unknown connections, and keep it while they come within 256 calls', () => {
    const ahead = new Map<number, bigint>();
    const calls = new Map<number, bigint>();
    let now = 0;
    const links: boolean[] = [];
    const a = new GoClientAdoption(
      { unknownWrites: () => 0n, adoptCalls: (pid) => calls.get(pid) ?? 0n, aheadWrites: (pid) => ahead.get(pid) ?? 0n },
      () => now,
      30_000,
      256n,
    );
    ahead.set(7, 2n); // before the tracking: not growth
    a.track(7, () => {
      links.push(false);
      return { destroy: () => void (links[links.length - 1] = true) } as unknown as BpfLink;
    });
    now += 2000;
    expect(a.tick()).toEqual([]);
    ahead.set(7, 3n);
    now += 2000;
    expect(a.tick()).toEqual([{ pid: 7, adopting: true }]);
    // 200 calls (100 a second), one of them written ahead of its caller (named through the probe): still growth
    calls.set(7, 200n);
    ahead.set(7, 4n);
    now += 2000;
    expect(a.tick()).toEqual([]);
    calls.set(7, 400n);
    now += 2000;
    expect(a.tick()).toEqual([]); // 200 calls since the last one
    calls.set(7, 456n);
    now += 2000;
    expect(a.tick()).toEqual([{ pid: 7, adopting: false }]);
    expect(links).toEqual([true]);
  });

  it('a process calling faster than 200 a second gets no probe for writes ahead of their caller for a minute; unknown connections still bring it', () => {
    const ahead = new Map<number, bigint>();
    const unknown = new Map<number, bigint>();
    const calls = new Map<number, bigint>();
    let now = 0;
    const links: boolean[] = [];
    const a = new GoClientAdoption(
      { unknownWrites: (pid) => unknown.get(pid) ?? 0n, adoptCalls: (pid) => calls.get(pid) ?? 0n, aheadWrites: (pid) => ahead.get(pid) ?? 0n },
      () => now,
      30_000,
      256n,
    );
    a.track(7, () => {
      links.push(false);
      return { destroy: () => void (links[links.length - 1] = true) } as unknown as BpfLink;
    });
    ahead.set(7, 1n);
    now += 500;
    expect(a.tick()).toEqual([{ pid: 7, adopting: true }]);
    calls.set(7, 3000n); // 6,000 calls a second
    ahead.set(7, 2n);
    now += 500;
    expect(a.tick()).toEqual([{ pid: 7, adopting: false }]); // too fast: that write is no growth, 3,000 calls quiet
    ahead.set(7, 3n);
    now += 30_000;
    expect(a.tick()).toEqual([]); // within the minute
    unknown.set(7, 1n);
    now += 500;
    expect(a.tick()).toEqual([{ pid: 7, adopting: true }]);
    calls.set(7, 3300n);
    now += 500;
    expect(a.tick()).toEqual([{ pid: 7, adopting: false }]);
    ahead.set(7, 4n);
    now += 60_000;
    expect(a.tick()).toEqual([{ pid: 7, adopting: true }]); // the minute is over
    expect(links).toEqual([true, true, false]);
  });

  it('no probe while no write comes from an unknown connection and none was held at the attach', () => {
    const { a, links, attachFor, advance } = setup();
    expect(a.track(7, attachFor(7))).toBeUndefined();
    for (let i = 0; i < 10; i++) {
      advance(5000);
      expect(a.tick()).toEqual([]);
    }
    expect(links).toEqual([]);
    expect(a.adopting(7)).toBe(false);
  });

  it('attaches the probe when the count grows, keeps it while it grows, takes it away after 30 s still, and comes back', () => {
    const { a, counts, links, attachFor, advance } = setup();
    counts.set(7, 3n); // writes before the tracking started (a previous attach) are not growth
    a.track(7, attachFor(7));
    advance(5000);
    expect(a.tick()).toEqual([]);
    counts.set(7, 5n);
    advance(5000);
    expect(a.tick()).toEqual([{ pid: 7, adopting: true }]);
    expect(a.adopting(7)).toBe(true);
    counts.set(7, 6n);
    advance(5000);
    expect(a.tick()).toEqual([]);
    advance(25_000);
    expect(a.tick()).toEqual([]); // 25 s still
    advance(5000);
    expect(a.tick()).toEqual([{ pid: 7, adopting: false }]);
    expect(links).toEqual([{ pid: 7, destroyed: true }]);
    counts.set(7, 7n); // an idle old connection used again
    advance(5000);
    expect(a.tick()).toEqual([{ pid: 7, adopting: true }]);
    expect(links.map((l) => l.destroyed)).toEqual([true, false]);
  });

  it('a process holding client connections at the attach gets the probe at once; calls with no unknown write take it away before the time', () => {
    const { a, counts, calls, links, attachFor, advance } = setup();
    calls.set(9, 1000n); // calls of an earlier attach are not counted
    expect(a.track(9, attachFor(9), true)).toEqual({ pid: 9, adopting: true });
    expect(a.adopting(9)).toBe(true);
    calls.set(9, 1200n);
    advance(500);
    expect(a.tick()).toEqual([]); // 200 calls, below 256
    counts.set(9, 1n); // a connection the probe had not seen yet: the calls are counted from here
    calls.set(9, 1300n);
    advance(500);
    expect(a.tick()).toEqual([]);
    calls.set(9, 1555n);
    advance(500);
    expect(a.tick()).toEqual([]); // 255 since the growth
    calls.set(9, 1556n);
    advance(500);
    expect(a.tick()).toEqual([{ pid: 9, adopting: false }]);
    expect(links).toEqual([{ pid: 9, destroyed: true }]);
  });

  it('a slow caller keeps the probe between calls seconds apart (each connection adopted at its own next call)', () => {
    const { a, calls, attachFor, advance } = setup();
    a.track(4, attachFor(4), true);
    for (let i = 1; i <= 20; i++) {
      calls.set(4, BigInt(i));
      advance(1000);
      expect(a.tick()).toEqual([]);
    }
    expect(a.adopting(4)).toBe(true);
    advance(10_000);
    expect(a.tick()).toEqual([{ pid: 4, adopting: false }]); // 30 s without an unknown write
  });

  it('untrack takes the probe away; a failed attach is said and tried again at the next tick', () => {
    const { a, counts, links, attachFor, advance } = setup();
    let fail = true;
    a.track(8, () => {
      if (fail) throw new Error('process gone');
      return attachFor(8)();
    });
    counts.set(8, 1n);
    advance(5000);
    expect(a.tick()).toEqual([{ pid: 8, adopting: false, error: 'process gone' }]);
    fail = false;
    advance(5000);
    expect(a.tick()).toEqual([{ pid: 8, adopting: true }]);
    a.untrack(8);
    expect(links).toEqual([{ pid: 8, destroyed: true }]);
    expect(a.adopting(8)).toBe(false);
  });
});
