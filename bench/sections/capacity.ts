/**
 * The service's capacity beside the saturated ratio (issue 15's target). On this 2-core machine the
 * saturated ratio puts the agent's user space on wrk's CPU: with the agent the server idles waiting
 * for a starved wrk (bench/results/2026-12-07-server-cpu-profile.md), so that ratio mixes the cost
 * to the service with the load generator's contention. These figures read the service apart from
 * that, at one fixed rate both arms sustain (half the saturated rate without the agent, the p99
 * arm's open-loop run):
 * - capacity ratio: the server's CPU per request (utime+stime from /proc over the run / requests
 *   answered; the BPF programs and uprobe traps run in its syscalls and count) without / with the
 *   agent on the load CPU: the requests per CPU-second the service keeps when the agent's user
 *   space runs on another core;
 * - with the agent pinned to the server's CPU: the server's CPU without / (the server's + the
 *   agent's CPU per request) with, the whole cost to the service's core; and the saturated ratio
 *   when that core is the limit and wrk has a CPU to itself.
 * Information: no target is judged on them.
 */
import type { BenchConfig } from '../lib/config';
import type { LoadgenResult, WrkResult } from '../lib/load';
import { fig, type Figure } from '../lib/report';
import { pairedDifference, pairedRatio, round, spread, type Spread } from '../lib/stats';

/** The server's CPU over a fixed-rate run, and how busy both CPUs were (softirq included). */
export interface RateCpu {
  readonly serverUsPerRequest: number;
  readonly serverCpuBusy: number;
  readonly loadCpuBusy: number;
}

/** What an agent arm measured at the fixed rate (and saturated). */
export interface CapacityArm {
  sat: WrkResult;
  lat: LoadgenResult;
  rateCpu: RateCpu;
  /** The agent's utime+stime over the fixed-rate run and its drain, per span and per request. */
  cpuUsPerSpanRate: number;
  agentUsPerRequestRate: number;
  serverCpuBusy: number;
  loadCpuBusy: number;
  ringbufLost: number;
}

export interface CapacityInput {
  readonly id: string;
  readonly rate: number;
  readonly config: BenchConfig;
  /** serverUsPerRequest: the server's CPU per request over the saturated (wrk) run. */
  readonly without: ReadonlyArray<{ readonly sat: WrkResult; readonly lat: LoadgenResult; readonly rateCpu: RateCpu; readonly serverCpuBusy: number; readonly serverUsPerRequest: number }>;
  /** The agent on the load CPU: injection auto ('' key), and off for Go ('_inject_off'). */
  readonly arms: ReadonlyArray<{ readonly key: string; readonly label: string; readonly rounds: readonly CapacityArm[] }>;
  /** The agent on the server's CPU (injection auto), when that arm ran. */
  readonly onServerCpu?: readonly CapacityArm[];
  /** The low-rate runs (half the saturated rate with the agent, injection auto), when the agent
   * pushed the saturated rate below 0.9 of the one without: a rate the agent's arm sustains even
   * when its load generator, sharing a CPU with the agent, falls behind at the fixed rate. */
  readonly low?: { readonly rate: number; readonly without: readonly RateCpu[]; readonly with: readonly RateCpu[] };
}

/** Per round i: f(without[i], with[i]), summarised. */
function perRound(a: readonly number[], b: readonly number[], f: (x: number, y: number) => number): Spread {
  const n = Math.min(a.length, b.length);
  return spread(Array.from({ length: n }, (_, i) => f(a[i], b[i])));
}

const med = (xs: readonly number[]) => spread(xs).median;

/** Rounds whose fixed rate was not sustained (achieved below 97% of it, or requests left unsent). */
function unsustained(rate: number, rounds: readonly CapacityArm[]): string | undefined {
  const bad = rounds.filter((r) => r.lat.achievedRate < rate * 0.97 || r.lat.unsent > 0);
  if (bad.length === 0) return undefined;
  return (
    `${bad.length} of ${rounds.length} rounds did not sustain ${rate} req/s (achieved ${bad.map((r) => `${round(r.lat.achievedRate)} req/s, server CPU ${round(r.rateCpu.serverCpuBusy, 2)} busy`).join('; ')}): ` +
    'either the server saturated (its CPU near 1 busy) or the load generator fell behind (it shares its CPU with the agent); either way that server served fewer requests per wake-up than without, which raises its CPU per request'
  );
}

export function capacityFigures(c: CapacityInput): { figures: Figure[]; notes: string[] } {
  const { id, rate, config } = c;
  const figures: Figure[] = [];
  const notes: string[] = [];
  const w0 = c.without.map((r) => r.rateCpu.serverUsPerRequest);
  const busy0 = round(med(c.without.map((r) => r.rateCpu.serverCpuBusy)), 2);
  const sat0 = med(c.without.map((r) => r.serverUsPerRequest));
  for (const arm of c.arms) {
    const w1 = arm.rounds.map((r) => r.rateCpu.serverUsPerRequest);
    const cap = perRound(w0, w1, (a, b) => a / b);
    const added = pairedDifference(w0, w1);
    const agentSpan = spread(arm.rounds.map((r) => r.cpuUsPerSpanRate));
    const agentReq = med(arm.rounds.map((r) => r.agentUsPerRequestRate));
    const unsus = unsustained(rate, arm.rounds);
    // Below saturation the server pays for more wake-ups per request than saturated, so the same
    // added cost is a smaller share of its work: the projection says what the ratio would be on
    // the saturated work if the added cost did not depend on the load.
    const projected = sat0 / (sat0 + added.perRound.median);
    figures.push(
      fig({
        id: `${id}.capacity_ratio${arm.key}`, label: `Service capacity at ${rate} req/s: its CPU per request, without / with agent (${arm.label}; information, no target)`,
        value: cap.median, unit: 'ratio', rounds: cap.n, spread: cap,
        detail: `per round pair; the server's utime+stime / requests answered over each open-loop run (bench/go/loadgen, ${config.rateConns} connections): ${round(added.without.median)} us without (${round(added.without.min)} .. ${round(added.without.max)}), ` +
          `${round(added.with.median)} us with (${round(added.with.min)} .. ${round(added.with.max)}), the agent's BPF programs and traps included; the agent's own CPU, on CPU ${config.loadCpu} and not in this ratio: ${round(agentSpan.median)} us per span (${round(agentSpan.min)} .. ${round(agentSpan.max)}), ${round(agentReq)} us per request; ` +
          `server CPU busy ${busy0} without, ${round(med(arm.rounds.map((r) => r.rateCpu.serverCpuBusy)), 2)} with${unsus ? `; ${unsus}` : ''}; ` +
          `saturated the server spends ${round(sat0)} us per request without the agent (fewer wake-ups), so the added ${round(added.perRound.median)} us is ${round(projected, 3)} of capacity kept on that work, if it does not depend on the load`,
      }),
      fig({
        id: `${id}.server_cpu_added_rate${arm.key}`, label: `Server CPU added per request at ${rate} req/s (${arm.label})`, value: added.perRound.median, unit: 'us', rounds: added.perRound.n, spread: added.perRound,
        detail: `the capacity ratio's two readings as a difference: what the agent costs the service per request on its own core, the agent's user space elsewhere`,
      }),
    );
  }
  if (c.low) {
    const a = c.low.without.map((r) => r.serverUsPerRequest);
    const b = c.low.with.map((r) => r.serverUsPerRequest);
    const cap = perRound(a, b, (x, y) => x / y);
    const added = pairedDifference(a, b);
    figures.push(fig({
      id: `${id}.capacity_ratio_low`, label: `Service capacity at ${c.low.rate} req/s (half the saturated rate with the agent): its CPU per request, without / with agent (injection auto; information, no target)`,
      value: cap.median, unit: 'ratio', rounds: cap.n, spread: cap,
      detail: `per round pair, the low-rate runs (at most 3 s): ${round(added.without.median)} us without, ${round(added.with.median)} us with (+${round(added.perRound.median)} us per request); a rate the agent's arm sustains when its load generator falls behind at ${rate} req/s, with still more wake-ups per request`,
    }));
  }
  const shared = c.onServerCpu;
  if (shared && shared.length > 0) {
    const server = shared.map((r) => r.rateCpu.serverUsPerRequest);
    const total = shared.map((r) => r.rateCpu.serverUsPerRequest + r.agentUsPerRequestRate);
    const cap = perRound(w0, total, (a, b) => a / b);
    const tput = pairedRatio(c.without.map((r) => r.sat.rps), shared.map((r) => r.sat.rps));
    const agentSpan = spread(shared.map((r) => r.cpuUsPerSpanRate));
    const unsus = unsustained(rate, shared);
    figures.push(
      fig({
        id: `${id}.capacity_ratio_server_cpu`, label: `Service capacity at ${rate} req/s with the agent on the server's CPU: server CPU per request without / server + agent CPU per request with (information, no target)`,
        value: cap.median, unit: 'ratio', rounds: cap.n, spread: cap,
        detail: `per round pair; the agent pinned to CPU ${config.serverCpu} with the server, injection auto: server ${round(med(server))} us + agent ${round(med(shared.map((r) => r.agentUsPerRequestRate)))} us per request ` +
          `(${round(agentSpan.median)} us per span; its CPU over the run and a 1.6 s drain) against ${round(med(w0))} us without; server CPU busy ${busy0} without, ${round(med(shared.map((r) => r.rateCpu.serverCpuBusy)), 2)} with${unsus ? `; ${unsus}` : ''}`,
      }),
      fig({
        id: `${id}.throughput_ratio_server_cpu`, label: `Saturated throughput with the agent on the server's CPU, with / without (information, no target)`,
        value: tput.perRound.median, unit: 'ratio', rounds: tput.perRound.n, spread: tput.perRound,
        detail: `per round pair; wrk -t1 -c${config.wrkConns} alone on CPU ${config.loadCpu}, the server and the agent on CPU ${config.serverCpu}: ${round(tput.without.median)} req/s without, ${round(tput.with.median)} req/s with; ` +
          `server CPU busy ${round(med(c.without.map((r) => r.serverCpuBusy)), 2)} without, ${round(med(shared.map((r) => r.serverCpuBusy)), 2)} with; load CPU busy ${round(med(shared.map((r) => r.loadCpuBusy)), 2)} with`,
      }),
    );
    const lost = shared.reduce((a, r) => a + r.ringbufLost, 0);
    notes.push(
      `Agent on the server's CPU: ring-buffer records lost over all rounds ${lost}` +
        (lost > 0 ? ' (the agent, sharing the core, fell behind, most likely in the saturated run: records it lost are spans it did not pay for, so those figures flatter it).' : '.'),
    );
  }
  notes.push(
    `How to read the ratios: the saturated ratio (issue 15's target) is wrk's throughput with the agent's user space on wrk's CPU (${config.loadCpu}), so it mixes the cost to the service with the load generator starved of CPU (the CPU busy shares below say how much the server waited). ` +
      `The capacity ratio is the service's own: its CPU per request at ${rate} req/s, a rate both arms serve below saturation, without / with the agent — the requests per CPU-second it keeps while the agent's user space runs on another core. ` +
      (shared && shared.length > 0
        ? `The arms with the agent on the server's CPU (${config.serverCpu}) charge the agent's CPU per request to the service: the whole cost to the service's core at that rate, and the saturated ratio when that core is the limit and wrk has its own CPU.`
        : 'The arm with the agent on the server\'s CPU did not run (SPANBRIDGE_BENCH_SERVER_CPU_ARM=0).'),
  );
  return { figures, notes };
}
