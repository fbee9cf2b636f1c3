/**
 * Other processes' share of a BPF program count: tracepoints fire for every process on the machine,
 * so a count over a load holds their hits too. Their rate is taken from idle windows (no load) and
 * subtracted, scaled to the load's duration. Pure; unit-tested in test/unit/bench/background.test.ts.
 */

export interface ProgCount {
  readonly name: string;
  readonly type: number;
  readonly runs: number;
  readonly ns: number;
}

export interface IdleWindow {
  readonly counts: readonly ProgCount[];
  readonly ms: number;
}

/**
 * `raw` minus, per program, the mean rate (runs and ns per ms) of the idle windows times `loadMs`;
 * never below zero; programs left with no run are dropped.
 */
export function subtractBackground(raw: readonly ProgCount[], idle: readonly IdleWindow[], loadMs: number): ProgCount[] {
  const rate = new Map<string, { runs: number; ns: number }>();
  const windows = idle.filter((w) => w.ms > 0);
  for (const w of windows) {
    for (const x of w.counts) {
      const r = rate.get(x.name) ?? { runs: 0, ns: 0 };
      rate.set(x.name, { runs: r.runs + x.runs / w.ms / windows.length, ns: r.ns + x.ns / w.ms / windows.length });
    }
  }
  return raw
    .map((x) => ({ ...x, runs: Math.max(0, x.runs - Math.round((rate.get(x.name)?.runs ?? 0) * loadMs)), ns: Math.max(0, x.ns - (rate.get(x.name)?.ns ?? 0) * loadMs) }))
    .filter((x) => x.runs > 0);
}
