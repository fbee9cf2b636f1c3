import { GoClientAdoption, AHEAD_FAST_BACKOFF_MS } from '../../../src/tracers/go-client-adoption';
import type { BpfLink } from '../../../src/bpf/types';

describe('GoClientAdoption (the Go client roundTrip probe)', () => {
  const setup = (maxRate = 200) => {
    const unknown = new Map<number, bigint>();
    const calls = new Map<number, bigint>();
    let now = 0;
    const links: { pid: number; destroyed: boolean }[] = [];
    const a = new GoClientAdoption({ unknownWrites: (pid) => unknown.get(pid) ?? 0n, adoptCalls: (pid) => calls.get(pid) ?? 0n }, () => now, maxRate, 256n);
    const attachFor = (pid: number) => () => {
      const l = { pid, destroyed: false };
      links.push(l);
      return { destroy: () => void (l.destroyed = true) } as unknown as BpfLink;
    };
    /** `n` more calls of `pid` over `ms`, then the agent's look. */
    const step = (pid: number, n: number, ms = 500) => {
      calls.set(pid, (calls.get(pid) ?? 0n) + BigInt(n));
      now += ms;
      return a.tick();
    };
    return { a, unknown, calls, links, attachFor, step, advance: (ms: number) => void (now += ms) };
  };

  it('is attached with the process, before its first call (a write ahead of that call is named too)', () => {
    const { a, links, attachFor } = setup();
    expect(a.track(7, attachFor(7), () => false)).toEqual({ pid: 7, adopting: true });
    expect(a.adopting(7)).toBe(true);
    expect(links).toEqual([{ pid: 7, destroyed: false }]);
  });

  it('stays on a process calling at most 200 a second, however long no connection is unknown', () => {
    const { a, links, attachFor, step } = setup();
    a.track(7, attachFor(7), () => false);
    for (let i = 0; i < 200; i++) expect(step(7, 100)).toEqual([]); // 200 a second for 100 s: 20,000 calls, none unknown
    for (let i = 0; i < 100; i++) expect(step(7, 0, 5000)).toEqual([]); // idle
    expect(a.adopting(7)).toBe(true);
    expect(links).toEqual([{ pid: 7, destroyed: false }]);
  });

  it('goes from a process calling faster once 256 calls had no unknown write, and comes back a minute later to measure again', () => {
    const { a, links, attachFor, step, advance } = setup();
    a.track(7, attachFor(7), () => false);
    expect(step(7, 300)).toEqual([{ pid: 7, adopting: false }]); // 600 a second, 300 calls with no unknown write
    expect(a.adopting(7)).toBe(false);
    advance(AHEAD_FAST_BACKOFF_MS - 1000);
    expect(step(7, 20_000)).toEqual([]); // calls without the probe are not seen; still within the minute
    expect(step(7, 1000, 1000)).toEqual([{ pid: 7, adopting: true }]); // the minute is over
    expect(step(7, 20)).toEqual([]); // 40 a second now: kept
    expect(step(7, 20)).toEqual([]);
    expect(links.map((l) => l.destroyed)).toEqual([true, false]);
  });

  it('a fast process keeps it while connections are being adopted (unknown writes), and gets it back at once for one', () => {
    const { a, unknown, links, attachFor, step } = setup();
    a.track(9, attachFor(9), () => false);
    unknown.set(9, 1n); // a connection from before the attach, written at its first call (the probe adopts it)
    expect(step(9, 200)).toEqual([]); // fast; calls are counted from this look on
    expect(step(9, 255)).toEqual([]); // 255 since it
    expect(step(9, 1)).toEqual([{ pid: 9, adopting: false }]);
    unknown.set(9, 2n); // a held connection unused meanwhile, used again: unlinked, counted
    expect(step(9, 3000)).toEqual([{ pid: 9, adopting: true }]); // within the fast back-off, still
    expect(step(9, 3000)).toEqual([{ pid: 9, adopting: false }]);
    expect(links.map((l) => l.destroyed)).toEqual([true, true]);
  });

  it('with the limit 0 it is only for adoption: at once for held connections, else at an unknown write; gone after 256 calls without one', () => {
    const { a, unknown, links, attachFor, step } = setup(0);
    expect(a.track(4, attachFor(4), () => false)).toBeUndefined();
    expect(step(4, 100, 10_000)).toEqual([]); // calls (slowly), none from an unknown connection
    unknown.set(4, 1n);
    expect(step(4, 3)).toEqual([{ pid: 4, adopting: true }]);
    expect(step(4, 255, 30_000)).toEqual([]); // slow, but calls are what it costs: 255 since
    expect(step(4, 1, 30_000)).toEqual([{ pid: 4, adopting: false }]);
    expect(step(4, 0, 120_000)).toEqual([]); // no coming back to measure
    expect(a.track(5, attachFor(5), () => true)).toEqual({ pid: 5, adopting: true });
    expect(step(5, 256)).toEqual([{ pid: 5, adopting: false }]);
    expect(links.map((l) => [l.pid, l.destroyed])).toEqual([
      [4, true],
      [5, true],
    ]);
  });

  it('untrack takes the probe away; a failed attach is said and tried again at the next look', () => {
    const { a, links, attachFor, step } = setup();
    let fail = true;
    expect(
      a.track(
        8,
        () => {
          if (fail) throw new Error('process gone');
          return attachFor(8)();
        },
        () => false,
      ),
    ).toEqual({ pid: 8, adopting: false, error: 'process gone' });
    expect(step(8, 0)).toEqual([{ pid: 8, adopting: false, error: 'process gone' }]);
    fail = false;
    expect(step(8, 0)).toEqual([{ pid: 8, adopting: true }]);
    a.untrack(8);
    expect(links).toEqual([{ pid: 8, destroyed: true }]);
    expect(a.adopting(8)).toBe(false);
  });
});
