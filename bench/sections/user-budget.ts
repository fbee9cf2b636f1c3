/**
 * The user-space budget a saturated-throughput target leaves on this machine (issue 15: a target
 * may stay missed only if a measurement shows it out of reach for reasons outside the agent).
 * Sections `budget` (Go net/http server) and `budgetnode` (Node's http server).
 *
 * In this bench the server has one CPU and the load generator (wrk) the other, and any agent's user
 * space (it reads the ring, builds and exports spans) can only run beside one of them: here, as in
 * every other section, beside wrk. How much throughput that costs is a property of the machine and
 * of the CPU an agent's user space spends per request, whatever the agent: this section measures
 * the curve. Arms per round, each saturated with wrk:
 *   without      nothing attached;
 *   reader(b)    the minimal capture (bench/bpf/min_capture.bpf.c, as in capture-floor.ts) with its
 *                reader spending b us of CPU per ring record (2 records per request), for each b of
 *                BUSY_US_PER_RECORD: the same kernel side every time, only the user space's CPU per
 *                request on the load CPU moves;
 *   agent        the agent at its defaults, the point to set against the curve.
 * From the curve: the CPU per request at which the ratio falls to 0.90 (the target for Go and
 * Node servers), the ratio at the issue's own user-space target (10 us per span, one span per request),
 * and the curve's ratio at the agent's own CPU per request against the agent's measured ratio (the
 * agent's kernel side, beyond the minimal capture's, is what separates them).
 */
import { startAgent } from '../lib/agent';
import { budgetAt, ratioAt, startCaptureReader, type CurvePoint } from '../lib/capture';
import { wrk } from '../lib/load';
import { sleep } from '../lib/procs';
import { fig, section, type SectionResult } from '../lib/report';
import { median, pairedRatio, round } from '../lib/stats';
import { saturated, type Sat } from './capture-floor';
import { startServer, stopServer, type BenchContext } from './context';
import { DETACH_SETTLE_MS, FLOOR_TRACEPOINTS, type FloorServer } from './tp-floor';

/** Busy work per ring record of the reader arms, us of CPU (0: the plain reader). */
export const BUSY_US_PER_RECORD = [0, 0.5, 1, 2, 5] as const;

/** The user-space target, us of CPU per span (one span per request here). */
const TARGET_US_PER_SPAN = 10;
/** The saturated-ratio target for these servers. */
const TARGET_RATIO = 0.9;

interface ReaderRound {
  sat: Sat;
  /** Records the reader consumed over its life, and the requests it saw (warm-up included). */
  records: number;
  requests: number;
  drops: number;
}

export async function userBudgetSection(ctx: BenchContext, kind: FloorServer = 'go'): Promise<SectionResult> {
  const id = kind === 'go' ? 'budget' : 'budget_node';
  const what = kind === 'go' ? 'Go net/http server' : 'Node http server';
  const s = section(id, `User-space budget (${what}: saturated ratio against the CPU a user space spends per request beside the load generator)`);
  const { config } = ctx;
  const server = await startServer(ctx, kind);
  const without: Sat[] = [];
  const readers: ReaderRound[][] = BUSY_US_PER_RECORD.map(() => []);
  const agent: Sat[] = [];
  try {
    await wrk(config, server.url, 1); // warm the server
    for (let i = 0; i < config.rounds; i++) {
      ctx.log(`${id}: round ${i + 1}/${config.rounds} without`);
      without.push(await saturated(ctx, server));
      for (const [k, busy] of BUSY_US_PER_RECORD.entries()) {
        ctx.log(`${id}: round ${i + 1}/${config.rounds} reader at ${busy} us per record`);
        const r = await startCaptureReader(config, server.child.pid, busy, FLOOR_TRACEPOINTS);
        let sat: Sat | undefined;
        let warm = 0;
        try {
          warm = (await wrk(config, server.url, 1)).requests; // the reader's path warm
          await sleep(200);
          sat = await saturated(ctx, server, r.cpuTicks);
        } finally {
          const { records, drops } = await r.stop();
          await sleep(DETACH_SETTLE_MS); // its programs may run on briefly (see Floor.detach)
          if (sat) readers[k].push({ sat, records, requests: warm + sat.requests, drops });
        }
      }
      ctx.log(`${id}: round ${i + 1}/${config.rounds} with agent`);
      const a = await startAgent(config, { pids: [server.child.pid], otlpEndpoint: ctx.sink.endpoint });
      try {
        await wrk(config, server.url, 1);
        await sleep(200);
        agent.push(await saturated(ctx, server, a.cpuTicks));
      } finally {
        await a.shutdown();
        await sleep(DETACH_SETTLE_MS);
      }
    }
  } finally {
    await stopServer(server);
  }
  s.raw.rounds = { without, readers, agent, busyUsPerRecord: BUSY_US_PER_RECORD };
  const n = without.length;
  const rps = (a: readonly Sat[]) => a.map((x) => x.rps);
  const ratio = (a: readonly Sat[]) => pairedRatio(rps(without), rps(a)).perRound;
  // The harness's own CPU per request beyond the plain reader arm's: what the agent's export adds
  // to the OTLP sink, which runs on the load CPU too.
  const harnessBase = median(readers[0].map((r) => r.sat.harnessUs));
  const userUs = (a: readonly Sat[], withHarness: boolean) => median(a.map((x) => (x.userUs ?? 0) + (withHarness ? Math.max(0, x.harnessUs - harnessBase) : 0)));
  const points: CurvePoint[] = [];
  for (const [k, busy] of BUSY_US_PER_RECORD.entries()) {
    const rs = readers[k];
    if (rs.length === 0) continue;
    const sats = rs.map((r) => r.sat);
    const sp = ratio(sats);
    const us = userUs(sats, false);
    points.push({ us, ratio: sp.median });
    const perReq = median(rs.map((r) => r.records / Math.max(1, r.requests)));
    s.figures.push(
      fig({
        id: `${id}.tput_reader_${String(busy).replace('.', '_')}`,
        label: `Saturated throughput, minimal capture + a reader spending ${round(us, 2)} us/request on the load CPU / nothing`,
        value: sp.median,
        unit: 'ratio',
        rounds: sats.length,
        spread: sp,
        detail: `busy work ${busy} us per record; ${round(perReq, 2)} records/request (over the reader's life), ${rs.reduce((x, r) => x + r.drops, 0)} ring drops; ${round(median(rps(sats)))} req/s against ${round(median(rps(without)))}; server CPU ${round(median(sats.map((x) => x.cpuUs)), 3)} us/request (${round(median(without.map((x) => x.cpuUs)), 3)} without); load CPU ${round(median(sats.map((x) => x.loadCpu)), 2)} busy (${round(median(without.map((x) => x.loadCpu)), 2)} without)`,
      }),
    );
  }
  const curve = points.map((p) => `${round(p.us, 2)} us -> ${round(p.ratio, 3)}`).join(', ');
  const budget = budgetAt(points, TARGET_RATIO);
  const atTarget = ratioAt(points, TARGET_US_PER_SPAN);
  const agentUs = agent.length ? userUs(agent, true) : undefined;
  const agentRatio = agent.length ? ratio(agent) : undefined;
  const predicted = agentUs !== undefined ? ratioAt(points, agentUs) : undefined;
  s.figures.push(
    fig({
      id: `${id}.budget_us`,
      label: `User-space CPU per request (on the load CPU) at which the saturated ratio falls to ${TARGET_RATIO}`,
      value: budget ?? null,
      unit: 'us/request',
      rounds: n,
      unavailable: budget === undefined ? `the sweep does not cross ${TARGET_RATIO} (${curve})` : undefined,
      detail: `linear between the two reader arms around ${TARGET_RATIO}; the curve (reader CPU per request -> ratio, medians): ${curve}; the issue's own user-space target is ${TARGET_US_PER_SPAN} us per span`,
    }),
    fig({
      id: `${id}.ratio_at_target_us`,
      label: `Saturated ratio the curve gives at the issue's user-space target (${TARGET_US_PER_SPAN} us per span, one span per request)`,
      value: atTarget ?? null,
      unit: 'ratio',
      rounds: n,
      unavailable: atTarget === undefined ? 'too few reader arms' : undefined,
      detail: 'what any agent meeting the CPU-per-span target exactly would show in this bench (read off the curve; beyond its last point, from the last segment\'s line)',
    }),
  );
  if (agentRatio && agentUs !== undefined) {
    s.figures.push(
      fig({
        id: `${id}.tput_agent`,
        label: 'Saturated throughput, the agent (defaults) / nothing',
        value: agentRatio.median,
        unit: 'ratio',
        rounds: agent.length,
        spread: agentRatio,
        detail: `the agent's CPU ${round(agentUs, 2)} us/request on the load CPU (its process + what its export adds to the harness's OTLP sink); the curve gives ${predicted === undefined ? 'n/a' : round(predicted, 3)} at that CPU: the difference is the agent's kernel side beyond the minimal capture's (on the server's CPU); server CPU ${round(median(agent.map((x) => x.cpuUs)), 3)} us/request`,
      }),
    );
  }
  return s;
}
