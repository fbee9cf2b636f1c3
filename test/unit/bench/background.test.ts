import { subtractBackground } from '../../../bench/lib/background';

describe('other processes subtracted from a BPF program count', () => {
  const tp = (name: string, runs: number, ns: number) => ({ name, type: 5, runs, ns });

  test("each program loses the idle windows' mean rate scaled to the load's duration", () => {
    // idle: 100 and 300 runs of sys_enter_read per 1000 ms -> 0.2 runs/ms; over a 2000 ms load, 400
    const idle = [
      { counts: [tp('sys_enter_read', 100, 10_000)], ms: 1000 },
      { counts: [tp('sys_enter_read', 300, 30_000)], ms: 1000 },
    ];
    const out = subtractBackground([tp('sys_enter_read', 2400, 500_000), { name: 'go_uprobe', type: 2, runs: 5000, ns: 1_000_000 }], idle, 2000);
    expect(out).toEqual([tp('sys_enter_read', 2000, 460_000), { name: 'go_uprobe', type: 2, runs: 5000, ns: 1_000_000 }]);
  });

  test('never below zero, and programs with nothing left are dropped', () => {
    const idle = [{ counts: [tp('sys_enter_write', 5000, 1e6)], ms: 1000 }];
    expect(subtractBackground([tp('sys_enter_write', 3000, 2e5)], idle, 1000)).toEqual([]);
  });

  test('windows of no length are ignored rather than dividing by zero or diluting the mean', () => {
    const idle = [{ counts: [tp('sys_enter_read', 10, 100)], ms: 0 }];
    expect(subtractBackground([tp('sys_enter_read', 50, 500)], idle, 1000)).toEqual([tp('sys_enter_read', 50, 500)]);
    const withValid = [...idle, { counts: [tp('sys_enter_read', 20, 200)], ms: 1000 }];
    expect(subtractBackground([tp('sys_enter_read', 50, 500)], withValid, 1000)).toEqual([tp('sys_enter_read', 30, 300)]);
  });
});
