/**
 * Overhead on a traced server (items 1-3 of issue 9): saturated throughput (wrk) and latency at a
 * fixed half-saturation rate (bench/go/loadgen), alternating rounds without / with the agent. In a
 * round with the agent, its CPU per exported span is measured over each load (utime + stime from
 * /proc, spans from its own counter), and ring-buffer loss is checked.
 */
import { startAgent, type Agent } from '../lib/agent';
import { agentProgStats, isUprobeProg, progDelta, withBpfStats } from '../lib/bpf-stats';
import { loadgen, wrk, type LoadgenResult, type WrkResult } from '../lib/load';
import { CLK_TCK, memory, sleep } from '../lib/procs';
import { fig, section, type Figure, type SectionResult } from '../lib/report';
import { pairedDifference, pairedRatio, round, spread } from '../lib/stats';
import { alternate, startServer, type BenchContext, type Server, type ServerKind } from './context';

const DRAIN_MS = 1600; // the batcher exports at most 1 s after a span; then its counter is final

interface WithRound {
  sat: WrkResult;
  lat: LoadgenResult;
  /** At a rate the traced server sustains (only when the agent pushes its capacity below `rate`). */
  low?: LoadgenResult;
  cpuUsPerSpanSat: number;
  cpuUsPerSpanRate: number;
  spansPerRequestSat: number;
  spansPerRequestRate: number;
  ringbufLost: number;
  rssKb: number;
  stopLine: string;
}

/** Runs `load` and returns the agent's CPU microseconds per exported span over it (after a drain). */
async function measured<T>(agent: Agent, load: () => Promise<T>): Promise<{ result: T; cpuUs: number; spans: number; lost: number }> {
  const m0 = await agent.metrics();
  const t0 = agent.cpuTicks();
  const result = await load();
  await sleep(DRAIN_MS);
  const m1 = await agent.metrics();
  const t1 = agent.cpuTicks();
  const spans = m1.total('spanbridge_spans_exported_total') - m0.total('spanbridge_spans_exported_total');
  return { result, cpuUs: ((t1 - t0) / CLK_TCK) * 1e6, spans, lost: m1.ringbufLost() - m0.ringbufLost() };
}

export interface Hits {
  /** Uprobe hits per request (the floor's multiplier). */
  hitsPerRequest: number;
  /** Agent BPF time per uprobe hit, ns. */
  bpfNsPerHit: number;
  /** Uprobe programs. */
  programs: unknown;
  /** Tracepoint and raw-tracepoint hits per request (syscall path, fork/exec). */
  tracepointHitsPerRequest: number;
  /** Every program of the agent (uprobes, tracepoints, sock_ops, sk_msg), per request. */
  bpfUsPerRequest: number;
  allPrograms: Array<{ name: string; type: number; runs: number; ns: number }>;
  requests: number;
}

const COUNT_REQUESTS = 2000;
const TRACEPOINT_TYPES = new Set([5, 17]);

/** Hits per request of every agent program, counted with the kernel's BPF statistics. */
async function countHits(ctx: BenchContext, agent: Agent, server: Server): Promise<Hits> {
  return withBpfStats(async () => {
    // Tracepoints fire for every process on the machine (other engineers' tests too): count an idle
    // window first and subtract it, scaled to the load's duration, so the figures are per request.
    const idle0 = agentProgStats(agent.pid);
    const idleStart = performance.now();
    await sleep(COUNT_REQUESTS);
    const idle = progDelta(idle0, agentProgStats(agent.pid));
    const idleMs = performance.now() - idleStart;
    const before = agentProgStats(agent.pid);
    const loadStart = performance.now();
    const r = await loadgen(ctx.config, { addr: server.addr, path: server.path, rate: 1000, requests: COUNT_REQUESTS, conns: 4 });
    const scale = (performance.now() - loadStart) / idleMs;
    const bg = new Map(idle.map((x) => [x.name, x]));
    const all = progDelta(before, agentProgStats(agent.pid))
      .map((x) => ({ ...x, runs: Math.max(0, x.runs - Math.round((bg.get(x.name)?.runs ?? 0) * scale)), ns: Math.max(0, x.ns - (bg.get(x.name)?.ns ?? 0) * scale) }))
      .filter((x) => x.runs > 0);
    const d = all.filter(isUprobeProg);
    const runs = d.reduce((a, x) => a + x.runs, 0);
    const tp = all.filter((x) => TRACEPOINT_TYPES.has(x.type)).reduce((a, x) => a + x.runs, 0);
    return {
      hitsPerRequest: runs / r.requests,
      bpfNsPerHit: runs > 0 ? d.reduce((a, x) => a + x.ns, 0) / runs : 0,
      programs: d,
      tracepointHitsPerRequest: tp / r.requests,
      bpfUsPerRequest: all.reduce((a, x) => a + x.ns, 0) / r.requests / 1000,
      allPrograms: all,
      requests: r.requests,
    };
  });
}

/** The same count with header injection off, in an agent of its own (outside the measured rounds). */
async function countHitsInjectionOff(ctx: BenchContext, server: Server): Promise<Hits> {
  const agent = await startAgent(ctx.config, { pids: [server.child.pid], otlpEndpoint: ctx.sink.endpoint, injectHeaders: 'off' });
  try {
    await loadgen(ctx.config, { addr: server.addr, path: server.path, rate: 1000, requests: 200, conns: 4 }); // warm
    return await countHits(ctx, agent, server);
  } finally {
    await agent.stop('SIGKILL');
  }
}

const SECTION_TITLES: Record<ServerKind, [id: string, title: string]> = {
  // The agent inherits the harness's environment: SPANBRIDGE_GO_SERVER_PATH=syscall measures the
  // syscall path for Go servers (go.server_path), else the default.
  go: ['go', process.env.SPANBRIDGE_GO_SERVER_PATH === 'syscall' ? 'Go net/http server (go.server_path syscall: syscall tracepoints)' : 'Go net/http server (uprobes)'],
  // go.client_path likewise (SPANBRIDGE_GO_CLIENT_PATH=syscall: one uprobe hit per client call).
  gochain: ['gochain', `Go server calling one downstream per request (go.server_path ${process.env.SPANBRIDGE_GO_SERVER_PATH ?? 'default'}, go.client_path ${process.env.SPANBRIDGE_GO_CLIENT_PATH ?? 'default'})`],
  node: ['sys', 'Node http server (syscall tracepoints)'],
  python: ['python', 'Python threaded http.server (syscall tracepoints)'],
};

export async function serverOverheadSection(ctx: BenchContext, kind: ServerKind): Promise<SectionResult> {
  const s = section(...SECTION_TITLES[kind]);
  const { config } = ctx;
  const server = await startServer(ctx, kind);
  try {
    await wrk(config, server.url, 2); // warm-up
    const calib = await wrk(config, server.url, 3);
    const rate = Math.max(100, Math.round(calib.rps / 2));
    s.raw.calibration = { saturatedRps: calib.rps, fixedRate: rate };
    ctx.log(`${s.id}: saturated at ${Math.round(calib.rps)} req/s without the agent; fixed rate ${rate} req/s`);
    // If the agent pushes the server's capacity below that rate, latency there is queueing; so also
    // measure at half the saturated rate WITH the agent, which both arms sustain.
    const probe = await startAgent(config, { pids: [server.child.pid], otlpEndpoint: ctx.sink.endpoint });
    const calibWith = await wrk(config, server.url, 3).finally(() => probe.shutdown());
    const lowRate = calibWith.rps < calib.rps * 0.9 ? Math.max(100, Math.round(calibWith.rps / 2)) : undefined;
    s.raw.calibration = { saturatedRps: calib.rps, fixedRate: rate, saturatedWithAgentRps: calibWith.rps, lowRate };
    if (lowRate) ctx.log(`${s.id}: saturated at ${Math.round(calibWith.rps)} req/s with the agent; also measuring latency at ${lowRate} req/s`);
    let hits: Hits | undefined;
    let hitsOff: Hits | undefined;
    let unavailable: string | undefined;

    const rounds = await alternate(
      ctx,
      s.id,
      async () => ({
        sat: await wrk(config, server.url, config.seconds),
        lat: await loadgen(config, { addr: server.addr, path: server.path, rate }),
        low: lowRate ? await loadgen(config, { addr: server.addr, path: server.path, rate: lowRate }) : undefined,
      }),
      async (i): Promise<WithRound> => {
        const agent = await startAgent(config, { pids: [server.child.pid], otlpEndpoint: ctx.sink.endpoint });
        try {
          if (i === 0) hits = await countHits(ctx, agent, server);
          await loadgen(config, { addr: server.addr, path: server.path, rate, seconds: 1 }); // warm the agent's path
          const sat = await measured(agent, () => wrk(config, server.url, config.seconds));
          const lat = await measured(agent, () => loadgen(config, { addr: server.addr, path: server.path, rate }));
          const low = lowRate ? await loadgen(config, { addr: server.addr, path: server.path, rate: lowRate }) : undefined;
          const rssKb = memory(agent.pid).rssKb;
          if (i === 0 && lat.spans === 0) {
            const attached = agent.stderr().split('\n').find((l) => l.includes(`attached pid ${server.child.pid}`) || l.includes(`${server.child.pid}`));
            unavailable = `no spans exported for ${lat.result.requests} requests (agent: ${attached?.replace(/^\S+ \S+\s+/, '') ?? 'no attach line'})`;
          }
          return {
            sat: sat.result,
            lat: lat.result,
            low,
            cpuUsPerSpanSat: sat.cpuUs / sat.spans,
            cpuUsPerSpanRate: lat.cpuUs / lat.spans,
            spansPerRequestSat: sat.spans / sat.result.requests,
            spansPerRequestRate: lat.spans / lat.result.requests,
            ringbufLost: sat.lost + lat.lost,
            rssKb,
            stopLine: (await agent.shutdown()).stopLine,
          };
        } finally {
          await agent.stop('SIGKILL');
        }
      },
    );
    s.raw.rounds = rounds;
    s.raw.hits = hits;
    try {
      hitsOff = await countHitsInjectionOff(ctx, server);
      s.raw.hitsInjectionOff = hitsOff;
    } catch (err) {
      ctx.log(`${s.id}: counting with injection off failed: ${(err as Error).message}`);
    }
    const n = rounds.with.length;
    const floor = ctx.uprobeFloorUs ?? { value: 1.3, rounds: 0, source: 'REFERENCES.md (DeepFlow: ~1.3 us per uprobe hit)' };
    const tput = pairedRatio(rounds.without.map((r) => r.sat.rps), rounds.with.map((r) => r.sat.rps));
    const added = (pick: (l: LoadgenResult) => number) => pairedDifference(rounds.without.map((r) => pick(r.lat)), rounds.with.map((r) => pick(r.lat)));
    const p50 = added((l) => l.correctedUs.p50);
    const p99 = added((l) => l.correctedUs.p99);
    const sp50 = added((l) => l.serviceUs.p50);
    const sp99 = added((l) => l.serviceUs.p99);
    ctx.saturatedRps = { ...ctx.saturatedRps, [kind]: tput.without.median };
    const addedLow = (pick: (l: LoadgenResult) => number) =>
      pairedDifference(rounds.without.map((r) => pick(r.low as LoadgenResult)), rounds.with.map((r) => pick(r.low as LoadgenResult)));
    const na = unavailable;
    const figure = (f: Figure): Figure => (na ? { ...f, value: null, unavailable: na, target: f.target ? { ...f.target, met: null } : undefined } : f);

    const floorUs = hits ? hits.hitsPerRequest * floor.value : undefined;
    const latTarget = kind === 'go' && floorUs !== undefined ? { text: `<= 2x floor = ${round(2 * floorUs)} us`, met: p99.perRound.median <= 2 * floorUs } : undefined;
    s.figures.push(
      figure(fig({
        id: `${s.id}.throughput_ratio`, label: 'Saturated throughput, with / without agent', value: tput.perRound.median, unit: 'ratio', rounds: tput.perRound.n, spread: tput.perRound,
        target: kind === 'gochain' ? { text: '>= 0.80', met: tput.perRound.median >= 0.8 } : { text: '>= 0.90', met: tput.perRound.median >= 0.9 },
        detail: `per round pair; wrk -t1 -c${config.wrkConns}: ${round(tput.without.median)} req/s without (${round(tput.without.min)} .. ${round(tput.without.max)}), ${round(tput.with.median)} req/s with (${round(tput.with.min)} .. ${round(tput.with.max)}); ratio of the arms' medians ${round(tput.with.median / tput.without.median)}`,
      })),
      figure(fig({
        id: `${s.id}.p50_added`, label: `p50 latency added at ${rate} req/s (from due time)`, value: p50.perRound.median, unit: 'us', rounds: p50.perRound.n, spread: p50.perRound,
        detail: `p50 ${round(p50.without.median)} us without, ${round(p50.with.median)} us with; coordinated-omission corrected (includes queueing and the generator's own delays)`,
      })),
      figure(fig({
        id: `${s.id}.p99_added`, label: `p99 latency added at ${rate} req/s (from due time)`, value: p99.perRound.median, unit: 'us', rounds: p99.perRound.n, spread: p99.perRound,
        target: latTarget,
        detail: `p99 ${round(p99.without.median)} us without (${round(p99.without.min)} .. ${round(p99.without.max)}), ${round(p99.with.median)} us with (${round(p99.with.min)} .. ${round(p99.with.max)})`,
      })),
      figure(fig({
        id: `${s.id}.p50_added_service`, label: `p50 latency added at ${rate} req/s (from send)`, value: sp50.perRound.median, unit: 'us', rounds: sp50.perRound.n, spread: sp50.perRound,
        detail: `p50 ${round(sp50.without.median)} us without, ${round(sp50.with.median)} us with; from the actual write of the request (the generator's lateness excluded)`,
      })),
      figure(fig({
        id: `${s.id}.p99_added_service`, label: `p99 latency added at ${rate} req/s (from send)`, value: sp99.perRound.median, unit: 'us', rounds: sp99.perRound.n, spread: sp99.perRound,
        detail: `p99 ${round(sp99.without.median)} us without (${round(sp99.without.min)} .. ${round(sp99.without.max)}), ${round(sp99.with.median)} us with (${round(sp99.with.min)} .. ${round(sp99.with.max)})`,
      })),
    );
    if (lowRate && rounds.with.every((r) => r.low) && rounds.without.every((r) => r.low)) {
      const l50 = addedLow((l) => l.correctedUs.p50);
      const l99 = addedLow((l) => l.correctedUs.p99);
      const ls99 = addedLow((l) => l.serviceUs.p99);
      s.figures.push(
        figure(fig({
          id: `${s.id}.p50_added_low`, label: `p50 latency added at ${lowRate} req/s (half the saturated rate with the agent)`, value: l50.perRound.median, unit: 'us', rounds: l50.perRound.n, spread: l50.perRound,
          detail: `p50 ${round(l50.without.median)} us without, ${round(l50.with.median)} us with; from due time`,
        })),
        figure(fig({
          id: `${s.id}.p99_added_low`, label: `p99 latency added at ${lowRate} req/s (half the saturated rate with the agent)`, value: l99.perRound.median, unit: 'us', rounds: l99.perRound.n, spread: l99.perRound,
          target: floorUs !== undefined && kind === 'go' ? { text: `<= 2x floor = ${round(2 * floorUs)} us`, met: l99.perRound.median <= 2 * floorUs } : undefined,
          detail: `p99 ${round(l99.without.median)} us without (${round(l99.without.min)} .. ${round(l99.without.max)}), ${round(l99.with.median)} us with (${round(l99.with.min)} .. ${round(l99.with.max)}); from due time; from send: +${round(ls99.perRound.median)} us`,
        })),
      );
    }
    for (const [label, h] of [['on (auto)', hits], ['off', hitsOff]] as const) {
      if (!h) continue;
      const key = label === 'off' ? '_inject_off' : '';
      s.figures.push(
        fig({ id: `${s.id}.uprobe_hits${key}`, label: `Uprobe hits per request, injection ${label}`, value: h.hitsPerRequest, unit: 'hits', rounds: 1, detail: `BPF run-time statistics over ${h.requests} requests at 1000 req/s (4 keep-alive connections)` }),
        fig({ id: `${s.id}.tracepoint_hits${key}`, label: `Tracepoint hits per request, injection ${label}`, value: h.tracepointHitsPerRequest, unit: 'hits', rounds: 1, detail: 'syscall tracepoints and raw tracepoints of the agent; minus an idle window of the same length (other processes fire them too)' }),
        fig({ id: `${s.id}.bpf_us_per_request${key}`, label: `Agent BPF time per request, injection ${label}`, value: h.bpfUsPerRequest, unit: 'us', rounds: 1, detail: 'every program of the agent (run_time_ns, idle window subtracted), excluding the uprobe trap itself' }),
      );
    }
    if (hits && floorUs !== undefined && kind === 'go') {
      s.figures.push(fig({
        id: `${s.id}.uprobe_floor`, label: 'Uprobe floor per request', value: floorUs, unit: 'us', rounds: floor.rounds,
        detail: `${round(hits.hitsPerRequest, 4)} uprobe hits/request counted (BPF stats; loadgen sends Host + User-Agent: ServeHTTP entry + 1 RET + 3 readContinuedLineSlice RETs) x ${round(floor.value)} us/hit (${floor.source}); agent BPF time ${round(hits.bpfNsPerHit)} ns/hit`,
      }));
    }
    const cpuRate = spread(rounds.with.map((r) => r.cpuUsPerSpanRate));
    const cpuSat = spread(rounds.with.map((r) => r.cpuUsPerSpanSat));
    s.figures.push(
      figure(fig({ id: `${s.id}.cpu_per_span`, label: `Agent CPU per span at ${rate} req/s`, value: cpuRate.median, unit: 'us/span', rounds: n, spread: cpuRate, target: { text: '<= 10 us', met: cpuRate.median <= 10 }, detail: 'utime+stime of the agent over the load and a 1.6 s drain / spans exported' })),
      figure(fig({ id: `${s.id}.cpu_per_span_sat`, label: 'Agent CPU per span, saturated', value: cpuSat.median, unit: 'us/span', rounds: n, spread: cpuSat, target: { text: '<= 10 us', met: cpuSat.median <= 10 } })),
    );
    if (hits) {
      const progs = [...hits.allPrograms].sort((a, b) => b.ns - a.ns);
      s.notes.push(`Agent BPF programs per request (BPF stats, ${hits.requests} requests): ${progs.map((p) => `${p.name} ${round(p.runs / hits!.requests, 3)} hits x ${round(p.ns / p.runs)} ns`).join(', ')}.`);
    }
    const spr = spread(rounds.with.map((r) => r.spansPerRequestRate));
    const sps = spread(rounds.with.map((r) => r.spansPerRequestSat));
    const lost = rounds.with.reduce((a, r) => a + r.ringbufLost, 0);
    s.notes.push(
      `Spans exported per request: ${round(spr.median, 4)} at the fixed rate (${round(spr.min, 4)} .. ${round(spr.max, 4)}), ${round(sps.median, 4)} saturated (${round(sps.min, 4)} .. ${round(sps.max, 4)}); ring-buffer records lost over all rounds: ${lost}.`,
      `Agent RSS after each round: ${round(spread(rounds.with.map((r) => r.rssKb / 1024)).median)} MB median. Agent stop lines: ${rounds.with.map((r) => `"${r.stopLine}"`).slice(0, 2).join(', ')}${n > 2 ? ', ...' : ''}.`,
      `Load generator's own send lateness p99 (its timing noise): ${round(spread(rounds.without.map((r) => r.lat.lateP99Us)).median)} us without, ${round(spread(rounds.with.map((r) => r.lat.lateP99Us)).median)} us with the agent.`,
    );
    const unsent = rounds.with.reduce((a, r) => a + r.lat.unsent, 0);
    if (unsent > 0) s.notes.push(`Fixed-rate runs with the agent left ${unsent} requests unsent at the end of their windows (over all rounds; without: ${rounds.without.reduce((a, r) => a + r.lat.unsent, 0)}); they count in the latency from due time with their lateness so far.`);
    if (tput.with.median < rate) {
      s.notes.push(`With the agent the server saturates at ${round(tput.with.median)} req/s, below the fixed rate of ${rate} req/s (half its saturated rate without the agent): requests queue, so latency from due time measures that queue; latency from send is the per-request view.`);
    }
    const errs = [...rounds.without, ...rounds.with].reduce((a, r) => a + r.sat.errors + r.lat.errors, 0);
    if (errs > 0) s.notes.push(`Request errors over all runs: ${errs}.`);
  } finally {
    await server.child.stop();
    for (const o of server.others ?? []) await o.stop();
  }
  return s;
}
