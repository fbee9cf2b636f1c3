/**
 * The minimal capture's reader process (bench/capture-reader.ts) from the harness's side, and the
 * arithmetic that splits a saturated throughput gap between the server's CPU and the load
 * generator's (bench/sections/capture-floor.ts).
 */
import path from 'node:path';
import type { BenchConfig } from './config';
import { cpuTicks, spawnPinned, waitFor } from './procs';
import { median } from './stats';

export interface CaptureReader {
  readonly pid: number;
  cpuTicks(): number;
  /** SIGTERM; the records it consumed and the records the ring had no room for. */
  stop(): Promise<{ records: number; drops: number }>;
}

/** build/bench/min_capture.bpf.o (make bench-bpf). */
export function captureObjectPath(config: BenchConfig): string {
  return path.join(config.binDir, '..', 'min_capture.bpf.o');
}

/**
 * Starts the reader pinned to the load CPU (as the agent): it selects `pid`, attaches the capture
 * programs to `tracepoints` and spends `busyUs` of CPU on every record (0: discards at once).
 */
export async function startCaptureReader(config: BenchConfig, pid: number, busyUs: number, tracepoints: readonly string[]): Promise<CaptureReader> {
  const script = path.join(__dirname, '..', 'capture-reader.js');
  const child = spawnPinned(config.loadCpu, process.execPath, [script, captureObjectPath(config), String(pid), String(busyUs), ...tracepoints]);
  try {
    await waitFor('capture reader ready', () => {
      if (child.proc.exitCode !== null) throw new Error(`capture reader exited with ${child.proc.exitCode}:\n${child.stderr()}`);
      return child.stdout().includes('"ready":true');
    }, 20_000, 20);
  } catch (err) {
    await child.stop('SIGKILL');
    throw err;
  }
  return {
    pid: child.pid,
    cpuTicks: () => cpuTicks(child.pid),
    async stop() {
      await child.stop('SIGTERM', 15_000);
      const last = child.stdout().trim().split('\n').pop() ?? '';
      try {
        const r = JSON.parse(last) as { records?: number; drops?: number };
        if (typeof r.records === 'number') return { records: r.records, drops: r.drops ?? -1 };
      } catch {
        /* reported below */
      }
      throw new Error(`capture reader: no final line: ${last}\n${child.stderr().slice(-2000)}`);
    },
  };
}

/**
 * Busy work per record that makes the capture's reader cost the load CPU what the agent's user space
 * costs it: (the agent's CPU per request - the plain reader's) / records per request, never < 0.
 */
export function busyPerRecordUs(agentUsPerRequest: number, readerUsPerRequest: number, recordsPerRequest: number): number {
  if (!(recordsPerRequest > 0)) return 0;
  return Math.max(0, (agentUsPerRequest - readerUsPerRequest) / recordsPerRequest);
}

/** Saturated throughput ratios (arm / nothing) of one round pair. */
export interface RoundRatios {
  readonly floor: number;
  readonly capture: number;
  readonly captureBusy: number;
  readonly agent: number;
}

/**
 * The gap between the dispatch floor's ratio and the agent's, split (per round, then the median of
 * each part): `capture` = floor - minimal capture (what any syscall-layer capture adds to the
 * dispatch: its BPF, on the server's CPU, plus a reader that does nothing); `userSpace` = minimal
 * capture - the same capture with a reader costing the load CPU what the agent does (the agent's
 * user space, on the load generator's CPU); `agentBpf` = that - the agent (the rest: the agent's
 * kernel side beyond the minimal capture, on the server's CPU). The three add up to the gap.
 */
export function splitGap(rounds: readonly RoundRatios[]): { gap: number; capture: number; userSpace: number; agentBpf: number } {
  const m = (f: (r: RoundRatios) => number) => median(rounds.map(f));
  return {
    gap: m((r) => r.floor - r.agent),
    capture: m((r) => r.floor - r.capture),
    userSpace: m((r) => r.capture - r.captureBusy),
    agentBpf: m((r) => r.captureBusy - r.agent),
  };
}

/** A point of the user-space budget curve: CPU per request on the load CPU -> saturated ratio. */
export interface CurvePoint {
  readonly us: number;
  readonly ratio: number;
}

/**
 * The CPU per request at which the curve (points in any order, sorted here by CPU) first falls to
 * `ratio`, linearly between the two points around it; undefined when no segment crosses it (every
 * point above: the budget is beyond the sweep; every point below: even the cheapest reader misses).
 */
export function budgetAt(points: readonly CurvePoint[], ratio: number): number | undefined {
  const p = [...points].sort((a, b) => a.us - b.us);
  for (let i = 1; i < p.length; i++) {
    const a = p[i - 1];
    const b = p[i];
    if (a.ratio >= ratio && b.ratio <= ratio) return a.ratio === b.ratio ? a.us : a.us + ((a.ratio - ratio) / (a.ratio - b.ratio)) * (b.us - a.us);
  }
  return undefined;
}

/** The curve's ratio at `us` of CPU per request: linear between the points around it, or from the
 * nearest segment's line outside the sweep (never below 0). */
export function ratioAt(points: readonly CurvePoint[], us: number): number | undefined {
  const p = [...points].sort((a, b) => a.us - b.us);
  if (p.length < 2) return p[0]?.ratio;
  let i = 1;
  while (i < p.length - 1 && p[i].us < us) i++;
  const a = p[i - 1];
  const b = p[i];
  if (b.us === a.us) return (a.ratio + b.ratio) / 2;
  return Math.max(0, a.ratio + ((us - a.us) / (b.us - a.us)) * (b.ratio - a.ratio));
}
