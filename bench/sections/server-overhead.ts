/**
 * Overhead on a traced server (issue 15's table): saturated throughput (wrk) and latency at a fixed
 * half-saturation rate (bench/go/loadgen), alternating rounds without / with the agent. Go servers
 * get two agent arms per round, header injection at its default (auto) and off, so the cost of
 * injection shows as the difference. In a round with the agent, its CPU per exported span is
 * measured over each load (utime + stime from /proc, spans from its own counter), the server's own
 * CPU per request likewise (the uprobe traps and BPF programs run in its context), and ring-buffer
 * loss is checked. Hits per request of every agent program come from the kernel's BPF statistics.
 * Next to the saturated ratio (issue 15's target, which also measures wrk starved by the agent's
 * user space on its CPU), every fixed-rate run reads the server's own CPU per request: the service's
 * capacity apart from the load CPU's contention, and, in an arm with the agent pinned to the
 * server's CPU, the whole cost to the service's core (sections/capacity.ts).
 */
import { startAgent } from '../lib/agent';
import { countHits, hitFigures, programsNote, type Hits } from '../lib/hits';
import { loadgen, wrk, type LoadgenResult, type WrkResult } from '../lib/load';
import { busyShareSince, CLK_TCK, cpuBusy, cpuTicks, memory, sleep } from '../lib/procs';
import { fig, section, type Figure, type SectionResult } from '../lib/report';
import { pairedDifference, pairedRatio, round, spread } from '../lib/stats';
import { capacityFigures, type CapacityArm, type RateCpu } from './capacity';
import { alternate, startServer, stopServer, type BenchContext, type Server, type ServerKind } from './context';

const DRAIN_MS = 1600; // the batcher exports at most 1 s after a span; then its counter is final
const COUNT_REQUESTS = 2000;
const P99_TARGET_US = 50;
/** The low-rate run has no target (it explains the half-load figure): at most 3 s keeps the section short. */
const lowSeconds = (config: { seconds: number }) => Math.min(config.seconds, 3);

/** A saturated run and the CPU the server (and the service it calls) spent per request meanwhile. */
interface SatRun {
  sat: WrkResult;
  serverUsPerRequest: number;
  downstreamUsPerRequest?: number;
  /** Busy share of the server's CPU and of the load generator's CPU over the run (softirq included). */
  serverCpuBusy: number;
  loadCpuBusy: number;
}

interface WithoutRound extends SatRun {
  lat: LoadgenResult;
  /** The server's CPU over the fixed-rate run. */
  rateCpu: RateCpu;
  low?: LoadgenResult;
  lowCpu?: RateCpu;
}

interface AgentArm extends SatRun, CapacityArm {
  /** Fixed rate (every arm: latency from the injection-auto arm, capacity from each). */
  lat: LoadgenResult;
  /** At a rate the traced server sustains (only when the agent pushes its capacity below `rate`). */
  low?: LoadgenResult;
  lowCpu?: RateCpu;
  cpuUsPerSpanSat: number;
  cpuUsPerSpanRate: number;
  spansPerRequestSat: number;
  spansPerRequestRate: number;
  ringbufLost: number;
  rssKb: number;
  stopLine: string;
}

interface WithRound {
  on: AgentArm;
  /** Injection off (Go servers only). */
  off?: AgentArm;
  /** The agent pinned to the server's CPU (injection auto; unless SPANBRIDGE_BENCH_SERVER_CPU_ARM=0). */
  onServerCpu?: AgentArm;
}

const usPerReq = (t0: number, t1: number, n: number) => (((t1 - t0) / CLK_TCK) * 1e6) / Math.max(1, n);

async function saturated(ctx: BenchContext, server: Server): Promise<SatRun> {
  const f0 = cpuTicks(server.child.pid);
  const d0 = server.downstream ? cpuTicks(server.downstream.pid) : 0;
  const c0 = cpuBusy(ctx.config.serverCpu);
  const l0 = cpuBusy(ctx.config.loadCpu);
  const sat = await wrk(ctx.config, server.url, ctx.config.seconds);
  return {
    sat,
    serverCpuBusy: busyShareSince(c0, ctx.config.serverCpu),
    loadCpuBusy: busyShareSince(l0, ctx.config.loadCpu),
    serverUsPerRequest: usPerReq(f0, cpuTicks(server.child.pid), sat.requests),
    downstreamUsPerRequest: server.downstream ? usPerReq(d0, cpuTicks(server.downstream.pid), sat.requests) : undefined,
  };
}

/** The fixed-rate run (bench/go/loadgen, open loop) and the server's own CPU per request over it. */
async function atRate(ctx: BenchContext, server: Server, rate: number, seconds?: number): Promise<{ lat: LoadgenResult; cpu: RateCpu }> {
  const f0 = cpuTicks(server.child.pid);
  const c0 = cpuBusy(ctx.config.serverCpu);
  const l0 = cpuBusy(ctx.config.loadCpu);
  const lat = await loadgen(ctx.config, { addr: server.addr, path: server.path, rate, seconds });
  return {
    lat,
    cpu: {
      serverUsPerRequest: usPerReq(f0, cpuTicks(server.child.pid), lat.requests),
      serverCpuBusy: busyShareSince(c0, ctx.config.serverCpu),
      loadCpuBusy: busyShareSince(l0, ctx.config.loadCpu),
    },
  };
}

const SECTION_TITLES: Record<ServerKind, [id: string, title: string]> = {
  // The agent inherits the harness's environment: SPANBRIDGE_GO_SERVER_PATH=uprobes measures the
  // uprobe path for Go servers (go.server_path), else the default (syscall tracepoints).
  go: ['go', `Go net/http server (${process.env.SPANBRIDGE_GO_SERVER_PATH === 'uprobes' ? 'go.server_path uprobes' : 'default go.server_path: syscall tracepoints'})`],
  // SPANBRIDGE_GO_CLIENT_PATH=syscall likewise measures go.client_path syscall (one uprobe hit per call).
  gochain: ['gochain', `Go net/http server calling one downstream per request (bench/go/chain -> Go test server, front traced; go.server_path ${process.env.SPANBRIDGE_GO_SERVER_PATH || 'default'}, go.client_path ${process.env.SPANBRIDGE_GO_CLIENT_PATH || 'default'})`],
  node: ['sys', 'Node http server (syscall tracepoints)'],
  python: ['python', 'Python threaded http.server (ThreadingHTTPServer, syscall tracepoints)'],
};

/** Issue 15's throughput targets; Python has none there. */
const THROUGHPUT_TARGET: Record<ServerKind, number | undefined> = { go: 0.9, gochain: 0.8, node: 0.9, python: undefined };

interface ArmResult {
  arm: AgentArm;
  hits?: Hits;
  unavailable?: string;
  injectionLines: string[];
}

interface ArmOptions {
  readonly inject: 'auto' | 'off';
  /** Count hits per request (first round). */
  readonly count: boolean;
  /** Also run at the low rate (the injection-auto arm on the load CPU). */
  readonly low: boolean;
  /** Pin the agent here instead of the load CPU. */
  readonly cpu?: number;
}

/**
 * One run with a fresh agent: hits counted (first round), saturated, the fixed rate (latency and
 * the server's CPU per request), then the low rate when asked.
 */
async function agentArm(ctx: BenchContext, server: Server, rate: number, lowRate: number | undefined, o: ArmOptions): Promise<ArmResult> {
  const { config } = ctx;
  const { inject, count } = o;
  const agent = await startAgent(config, { pids: [server.child.pid], otlpEndpoint: ctx.sink.endpoint, injectHeaders: inject === 'off' ? 'off' : undefined, cpu: o.cpu });
  try {
    await loadgen(config, { addr: server.addr, path: server.path, rate: 1000, requests: 200, conns: 4 }); // warm the agent's path
    const hits = count
      ? await countHits(agent.pid, () => loadgen(config, { addr: server.addr, path: server.path, rate: 1000, requests: COUNT_REQUESTS, conns: 4 }), '1000 req/s, 4 keep-alive connections')
      : undefined;
    await loadgen(config, { addr: server.addr, path: server.path, rate, seconds: 1 });
    const measured = async <T>(load: () => Promise<T>) => {
      const m0 = await agent.metrics();
      const t0 = agent.cpuTicks();
      const result = await load();
      await sleep(DRAIN_MS);
      const m1 = await agent.metrics();
      const spans = m1.total('spanbridge_spans_exported_total') - m0.total('spanbridge_spans_exported_total');
      return { result, cpuUs: ((agent.cpuTicks() - t0) / CLK_TCK) * 1e6, spans, lost: m1.ringbufLost() - m0.ringbufLost() };
    };
    const sat = await measured(() => saturated(ctx, server));
    const lat = await measured(() => atRate(ctx, server, rate));
    const low = lowRate && o.low ? await atRate(ctx, server, lowRate, lowSeconds(config)) : undefined;
    const rssKb = memory(agent.pid).rssKb;
    const stderr = agent.stderr();
    let unavailable: string | undefined;
    if (lat.spans === 0) {
      const attached = stderr.split('\n').find((l) => l.includes(`attached pid ${server.child.pid}`) || l.includes(`${server.child.pid}`));
      unavailable = `no spans exported for ${sat.result.sat.requests} requests (agent: ${attached?.replace(/^\S+ \S+\s+/, '') ?? 'no attach line'})`;
    }
    const injectionLines = stderr.split('\n').filter((l) => l.includes('strategy: traceparent injection')).map((l) => l.replace(/^\S+ \S+\s+/, '').slice(0, 200));
    const arm: AgentArm = {
      ...sat.result,
      lat: lat.result.lat,
      rateCpu: lat.result.cpu,
      low: low?.lat,
      lowCpu: low?.cpu,
      cpuUsPerSpanSat: sat.cpuUs / sat.spans,
      cpuUsPerSpanRate: lat.cpuUs / lat.spans,
      agentUsPerRequestRate: lat.cpuUs / Math.max(1, lat.result.lat.requests),
      spansPerRequestSat: sat.spans / sat.result.sat.requests,
      spansPerRequestRate: lat.spans / lat.result.lat.requests,
      ringbufLost: sat.lost + lat.lost,
      rssKb,
      stopLine: (await agent.shutdown()).stopLine,
    };
    return { arm, hits, unavailable, injectionLines };
  } finally {
    await agent.stop('SIGKILL');
  }
}

export async function serverOverheadSection(ctx: BenchContext, kind: ServerKind): Promise<SectionResult> {
  const s = section(...SECTION_TITLES[kind]);
  const { config } = ctx;
  const injectionArms = kind === 'go' || kind === 'gochain';
  const server = await startServer(ctx, kind);
  try {
    await wrk(config, server.url, 2); // warm-up
    const calib = await wrk(config, server.url, 3);
    const rate = Math.max(100, Math.round(calib.rps / 2));
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
    let injectionLines: string[] = [];

    const rounds = await alternate(
      ctx,
      s.id,
      async (): Promise<WithoutRound> => {
        const sat = await saturated(ctx, server);
        const fixed = await atRate(ctx, server, rate);
        const low = lowRate ? await atRate(ctx, server, lowRate, lowSeconds(config)) : undefined;
        return { ...sat, lat: fixed.lat, rateCpu: fixed.cpu, low: low?.lat, lowCpu: low?.cpu };
      },
      async (i): Promise<WithRound> => {
        const on = await agentArm(ctx, server, rate, lowRate, { inject: 'auto', count: i === 0, low: true });
        if (i === 0) {
          hits = on.hits;
          unavailable = on.unavailable;
          injectionLines = on.injectionLines;
        }
        const round: WithRound = { on: on.arm };
        if (injectionArms) {
          ctx.log(`${s.id}: round ${i + 1}/${config.rounds} with agent, injection off`);
          const off = await agentArm(ctx, server, rate, lowRate, { inject: 'off', count: i === 0, low: false });
          if (i === 0) hitsOff = off.hits;
          round.off = off.arm;
        }
        if (config.serverCpuArm) {
          ctx.log(`${s.id}: round ${i + 1}/${config.rounds} with agent on the server's CPU ${config.serverCpu}`);
          round.onServerCpu = (await agentArm(ctx, server, rate, undefined, { inject: 'auto', count: false, low: false, cpu: config.serverCpu })).arm;
        }
        return round;
      },
    );
    s.raw.rounds = rounds;
    s.raw.hits = hits;
    s.raw.injectionLines = injectionLines;
    if (!injectionArms) {
      // Injection's share of the BPF time for the syscall path: one count in an agent of its own.
      try {
        const agent = await startAgent(config, { pids: [server.child.pid], otlpEndpoint: ctx.sink.endpoint, injectHeaders: 'off' });
        try {
          await loadgen(config, { addr: server.addr, path: server.path, rate: 1000, requests: 200, conns: 4 }); // warm
          hitsOff = await countHits(agent.pid, () => loadgen(config, { addr: server.addr, path: server.path, rate: 1000, requests: COUNT_REQUESTS, conns: 4 }), '1000 req/s, 4 keep-alive connections');
        } finally {
          await agent.stop('SIGKILL');
        }
      } catch (err) {
        ctx.log(`${s.id}: counting with injection off failed: ${(err as Error).message}`);
      }
    }
    s.raw.hitsInjectionOff = hitsOff;
    const na = unavailable;
    const figure = (f: Figure): Figure => (na ? { ...f, value: null, unavailable: na, target: f.target ? { ...f.target, met: null } : undefined } : f);
    const arms = ([['auto', '', 'injection auto'], ['off', '_inject_off', 'injection off']] as const).filter(([k]) => k === 'auto' || injectionArms);
    const armOf = (k: 'auto' | 'off') => rounds.with.map((r) => (k === 'auto' ? r.on : (r.off as AgentArm)));
    const tputTarget = THROUGHPUT_TARGET[kind];
    for (const [k, key, label] of arms) {
      const w = armOf(k);
      const tput = pairedRatio(rounds.without.map((r) => r.sat.rps), w.map((r) => r.sat.rps));
      if (k === 'auto') ctx.saturatedRps = { ...ctx.saturatedRps, [kind]: tput.without.median };
      const cpu = pairedDifference(rounds.without.map((r) => r.serverUsPerRequest), w.map((r) => r.serverUsPerRequest));
      s.figures.push(
        figure(fig({
          id: `${s.id}.throughput_ratio${key}`, label: `Saturated throughput, with / without agent (${label})`, value: tput.perRound.median, unit: 'ratio', rounds: tput.perRound.n, spread: tput.perRound,
          target: tputTarget !== undefined ? { text: `>= ${tputTarget.toFixed(2)}`, met: tput.perRound.median >= tputTarget } : undefined,
          detail: `per round pair; wrk -t1 -c${config.wrkConns}: ${round(tput.without.median)} req/s without (${round(tput.without.min)} .. ${round(tput.without.max)}), ${round(tput.with.median)} req/s with (${round(tput.with.min)} .. ${round(tput.with.max)}); ratio of the arms' medians ${round(tput.with.median / tput.without.median)}${tputTarget === undefined ? '; issue 15 sets no target for this server' : ''}`,
        })),
        figure(fig({
          id: `${s.id}.server_cpu_added${key}`, label: `Server CPU added per request, saturated (${label})`, value: cpu.perRound.median, unit: 'us', rounds: cpu.perRound.n, spread: cpu.perRound,
          detail: `utime+stime of the traced server / requests over each wrk run: ${round(cpu.without.median)} us without, ${round(cpu.with.median)} us with (uprobe traps and the agent's BPF programs run in its context)`,
        })),
      );
    }
    {
      const cap = capacityFigures({
        id: s.id, rate, config, without: rounds.without,
        arms: arms.map(([k, key, label]) => ({ key, label, rounds: armOf(k) })),
        onServerCpu: config.serverCpuArm ? rounds.with.map((r) => r.onServerCpu as AgentArm) : undefined,
        low: lowRate && rounds.without.every((r) => r.lowCpu) && rounds.with.every((r) => r.on.lowCpu)
          ? { rate: lowRate, without: rounds.without.map((r) => r.lowCpu as RateCpu), with: rounds.with.map((r) => r.on.lowCpu as RateCpu) }
          : undefined,
      });
      s.figures.push(...cap.figures.map(figure));
      s.notes.push(...cap.notes);
    }
    const on = armOf('auto');
    const added = (pick: (l: LoadgenResult) => number) => pairedDifference(rounds.without.map((r) => pick(r.lat)), on.map((r) => pick(r.lat as LoadgenResult)));
    const p50 = added((l) => l.correctedUs.p50);
    const p99 = added((l) => l.correctedUs.p99);
    const sp50 = added((l) => l.serviceUs.p50);
    const sp99 = added((l) => l.serviceUs.p99);
    s.figures.push(
      figure(fig({
        id: `${s.id}.p99_added`, label: `p99 latency added at half load, ${rate} req/s (from due time)`, value: p99.perRound.median, unit: 'us', rounds: p99.perRound.n, spread: p99.perRound,
        target: { text: `<= ${P99_TARGET_US} us`, met: p99.perRound.median <= P99_TARGET_US },
        detail: `half the saturated rate without the agent, injection auto; p99 ${round(p99.without.median)} us without (${round(p99.without.min)} .. ${round(p99.without.max)}), ${round(p99.with.median)} us with (${round(p99.with.min)} .. ${round(p99.with.max)}); coordinated-omission corrected`,
      })),
      figure(fig({
        id: `${s.id}.p50_added`, label: `p50 latency added at ${rate} req/s (from due time)`, value: p50.perRound.median, unit: 'us', rounds: p50.perRound.n, spread: p50.perRound,
        detail: `p50 ${round(p50.without.median)} us without, ${round(p50.with.median)} us with; coordinated-omission corrected (includes queueing and the generator's own delays)`,
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
    if (lowRate && on.every((r) => r.low) && rounds.without.every((r) => r.low)) {
      const addedLow = (pick: (l: LoadgenResult) => number) =>
        pairedDifference(rounds.without.map((r) => pick(r.low as LoadgenResult)), on.map((r) => pick(r.low as LoadgenResult)));
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
          detail: `p99 ${round(l99.without.median)} us without (${round(l99.without.min)} .. ${round(l99.without.max)}), ${round(l99.with.median)} us with (${round(l99.with.min)} .. ${round(l99.with.max)}); from due time; from send: +${round(ls99.perRound.median)} us; the target applies at half the server's own capacity (above)`,
        })),
      );
    }
    for (const [key, label, h] of [['', ', injection auto', hits], ['_inject_off', ', injection off', hitsOff]] as const) {
      if (h) s.figures.push(...hitFigures(s.id, key, label, h));
    }
    const floor = ctx.uprobeFloorUs ?? { value: 1.3, rounds: 0, source: 'REFERENCES.md (DeepFlow: ~1.3 us per uprobe hit)' };
    if (hits && (kind === 'go' || kind === 'gochain')) {
      s.figures.push(fig({
        id: `${s.id}.uprobe_floor`, label: 'Uprobe floor per request', value: hits.hitsPerRequest * floor.value, unit: 'us', rounds: floor.rounds,
        detail: `${round(hits.hitsPerRequest, 4)} uprobe hits/request counted (BPF stats) x ${round(floor.value)} us/hit (${floor.source}); agent BPF time ${round(hits.bpfNsPerHit)} ns/hit`,
      }));
    }
    const cpuRate = spread(on.map((r) => r.cpuUsPerSpanRate));
    const cpuSat = spread(on.map((r) => r.cpuUsPerSpanSat));
    const n = on.length;
    s.figures.push(
      figure(fig({ id: `${s.id}.cpu_per_span`, label: `Agent CPU per span at ${rate} req/s`, value: cpuRate.median, unit: 'us/span', rounds: n, spread: cpuRate, target: { text: '<= 10 us', met: cpuRate.median <= 10 }, detail: 'utime+stime of the agent over the load and a 1.6 s drain / spans exported' })),
      figure(fig({ id: `${s.id}.cpu_per_span_sat`, label: 'Agent CPU per span, saturated', value: cpuSat.median, unit: 'us/span', rounds: n, spread: cpuSat, target: { text: '<= 10 us', met: cpuSat.median <= 10 } })),
    );
    if (hits) s.notes.push(programsNote(hits));
    if (injectionLines.length > 0) s.notes.push(`Injection at the default (auto), as the agent's start-up report says: ${injectionLines.map((l) => `"${l}"`).join('; ')}.`);
    if (server.downstream) {
      const front = spread(rounds.without.map((r) => r.serverUsPerRequest));
      const down = spread(rounds.without.map((r) => r.downstreamUsPerRequest ?? 0));
      s.notes.push(
        `The downstream (Go test server, untraced) shares the server CPU: without the agent the front spends ${round(front.median)} us and the downstream ${round(down.median)} us of CPU per request ` +
          `(${round((100 * down.median) / (front.median + down.median))}% of the pair), so the throughput ratio is that of the pair; the front's own slowdown is its CPU per request, without / with the agent: ` +
          `${round(front.median / spread(on.map((r) => r.serverUsPerRequest)).median)} (injection auto)` +
          (injectionArms ? `, ${round(front.median / spread(armOf('off').map((r) => r.serverUsPerRequest)).median)} (injection off)` : '') + '.',
      );
    }
    for (const [k, , label] of arms) {
      const w = armOf(k);
      const spr = k === 'auto' ? spread(w.map((r) => r.spansPerRequestRate)) : undefined;
      const sps = spread(w.map((r) => r.spansPerRequestSat));
      const cpuOff = spread(w.map((r) => r.cpuUsPerSpanSat));
      s.notes.push(
        `${label}: spans exported per request ${spr ? `${round(spr.median, 4)} at the fixed rate (${round(spr.min, 4)} .. ${round(spr.max, 4)}), ` : ''}${round(sps.median, 4)} saturated (${round(sps.min, 4)} .. ${round(sps.max, 4)}); ` +
          `ring-buffer records lost over all rounds: ${w.reduce((a, r) => a + r.ringbufLost, 0)}` + (k === 'off' ? `; agent CPU per span saturated ${round(cpuOff.median)} us` : '') + '.',
      );
    }
    s.notes.push(
      `Agent RSS after each round: ${round(spread(on.map((r) => r.rssKb / 1024)).median)} MB median. Agent stop lines: ${on.map((r) => `"${r.stopLine}"`).slice(0, 2).join(', ')}${n > 2 ? ', ...' : ''}.`,
      `Load generator's own send lateness p99 (its timing noise): ${round(spread(rounds.without.map((r) => r.lat.lateP99Us)).median)} us without, ${round(spread(on.map((r) => r.lat?.lateP99Us ?? 0)).median)} us with the agent.`,
    );
    {
      // Which CPU limits the saturated runs: a server CPU below ~0.95 busy is waiting on the load
      // generator's CPU, which the agent's user space shares (bench/README.md, pinning).
      const b = (a: SatRun[], f: (r: SatRun) => number) => round(spread(a.map(f)).median, 2);
      s.notes.push(
        `CPU busy during the saturated runs (median; softirq included): server CPU ${b(rounds.without, (r) => r.serverCpuBusy)} without the agent, ${b(on, (r) => r.serverCpuBusy)} with; ` +
          `load-generator CPU (wrk, and the agent's user space with it) ${b(rounds.without, (r) => r.loadCpuBusy)} without, ${b(on, (r) => r.loadCpuBusy)} with.`,
      );
    }
    const unsent = on.reduce((a, r) => a + (r.lat?.unsent ?? 0), 0);
    if (unsent > 0) s.notes.push(`Fixed-rate runs with the agent left ${unsent} requests unsent at the end of their windows (over all rounds; without: ${rounds.without.reduce((a, r) => a + r.lat.unsent, 0)}); they count in the latency from due time with their lateness so far.`);
    const satWith = spread(on.map((r) => r.sat.rps)).median;
    if (satWith < rate) {
      s.notes.push(`With the agent the server saturates at ${round(satWith)} req/s, below the fixed rate of ${rate} req/s (half its saturated rate without the agent): requests queue, so latency from due time measures that queue; latency from send is the per-request view.`);
    }
    const all = [...rounds.without, ...on, ...(injectionArms ? armOf('off') : []), ...rounds.with.flatMap((r) => (r.onServerCpu ? [r.onServerCpu] : []))];
    const errs = all.reduce((a, r) => a + r.sat.errors + (r.lat?.errors ?? 0), 0);
    if (errs > 0) s.notes.push(`Request errors over all runs: ${errs}.`);
  } finally {
    await stopServer(server);
  }
  return s;
}
