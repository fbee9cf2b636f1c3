/**
 * What any syscall-layer HTTP tracer must at least pay here, and how the agent compares (issue 15:
 * a target may stay missed only if a measurement shows it out of reach for reasons outside the
 * agent). Sections `capfloor` (Go net/http server) and `capfloornode` (Node's http server). Arms per
 * round on one server, each saturated with wrk and then driven at half load (half the saturated
 * rate without anything attached, open loop, bench/go/loadgen):
 *   without  nothing attached;
 *   floor    empty programs on the agent's 17 syscall tracepoints (tp-floor.ts: the dispatch);
 *   capture  the minimal capture (bench/bpf/min_capture.bpf.c: on the same tracepoints the
 *            selected-process lookup, 256 bytes of every read into a ring record, 128 bytes of
 *            every write into another) with a reader on the load CPU that discards the records
 *            (bench/capture-reader.ts, the agent's ring path);
 *   agent    the agent at its defaults, its user space on the load CPU;
 *   busy     the minimal capture with a reader that spends, per record, the CPU that makes it cost
 *            the load CPU what the agent's user space cost it in this round's agent arm (calibrated
 *            busy work): the agent's user space without the agent's kernel side.
 * The floor-to-agent gap in saturated throughput then splits into the capture's own (server CPU),
 * the agent-sized user space (load CPU) and the agent's kernel side beyond the minimal capture
 * (server CPU) (lib/capture.ts, splitGap). The half-load run gives each arm's p99 added and how busy
 * each CPU was: at a rate near an arm's own saturation p99 is queueing, not per-request cost.
 */
import { agentProgStats, progDelta, withBpfStats, type ProgStats } from '../lib/bpf-stats';
import { busyPerRecordUs, splitGap, startCaptureReader, type CaptureReader } from '../lib/capture';
import { loadgen, wrk } from '../lib/load';
import { startAgent, type Agent } from '../lib/agent';
import { busyShareSince, CLK_TCK, cpuBusy, cpuTicks, sleep } from '../lib/procs';
import { fig, section, type Figure, type SectionResult } from '../lib/report';
import { median, pairedDifference, pairedRatio, round, type Spread } from '../lib/stats';
import { startServer, stopServer, type BenchContext, type Server } from './context';
import { DETACH_SETTLE_MS, Floor, FLOOR_TRACEPOINTS, type FloorServer } from './tp-floor';

/** In this order: the busy arm is calibrated on the same round's agent and capture arms. */
const ARMS = ['without', 'agent', 'floor', 'capture', 'busy'] as const;
type Arm = (typeof ARMS)[number];

/** A saturated run: req/s, the server's CPU per request, both CPUs' busy shares, and the CPU per
 * request of the arm's user-space process (reader or agent) when it has one. */
export interface Sat {
  rps: number;
  requests: number;
  cpuUs: number;
  /** The server's own CPU time over the run's wall time: below ~1, it waited (for wrk) or lost its CPU to others. */
  serverShare: number;
  serverCpu: number;
  loadCpu: number;
  userUs?: number;
  /** The harness's own CPU per request (the agent's OTLP sink runs in it). */
  harnessUs: number;
}

/** The half-load run: latencies from each request's due time (us) and the CPUs' busy shares. */
interface Half {
  rate: number;
  achieved: number;
  unsent: number;
  p50: number;
  p99: number;
  serviceP99: number;
  lateP99: number;
  cpuUs: number;
  serverCpu: number;
  loadCpu: number;
  /** The arm's user-space process (reader or agent): its CPU per request over the run. */
  userUs?: number;
}

interface ArmRound {
  sat: Sat;
  half: Half;
  /** Minimal capture arms: records per request over the reader's life, ring drops, busy work per record. */
  recordsPerRequest?: number;
  drops?: number;
  busyUs?: number;
  /** without and agent: at the low rate (half the agent's saturated rate in round 1), a rate both sustain. */
  low?: Half;
}

/** Whatever an arm attaches, with its user-space process's CPU ticks when it has one. */
interface Attached {
  pid?: number;
  ticks?: () => number;
  stop(): Promise<void>;
}

export async function captureFloorSection(ctx: BenchContext, kind: FloorServer = 'go'): Promise<SectionResult> {
  const id = kind === 'go' ? 'capfloor' : 'capfloor_node';
  const what = kind === 'go' ? 'Go net/http server' : 'Node http server';
  const s = section(id, `Minimal capture vs the agent (${what}: nothing / dispatch floor / minimal capture / the agent / minimal capture + agent-sized user space)`);
  const { config } = ctx;
  const server = await startServer(ctx, kind);
  const floor = Floor.open(Floor.path(config.binDir));
  const rounds = Object.fromEntries(ARMS.map((a) => [a, [] as ArmRound[]])) as Record<Arm, ArmRound[]>;
  let halfRate = 0;
  let lowRate = 0;
  const bpf: BpfPerRequest = {};
  try {
    await wrk(config, server.url, 1); // warm the server
    for (let i = 0; i < config.rounds; i++) {
      for (const arm of ARMS) {
        ctx.log(`${id}: round ${i + 1}/${config.rounds} ${arm}`);
        let requests = 0;
        let records: number | undefined;
        let drops: number | undefined;
        let busyUs: number | undefined;
        const reader = async (busy: number): Promise<Attached> => {
          const r: CaptureReader = await startCaptureReader(config, server.child.pid, busy, FLOOR_TRACEPOINTS);
          busyUs = busy;
          return {
            pid: r.pid,
            ticks: r.cpuTicks,
            async stop() {
              ({ records, drops } = await r.stop());
              await sleep(DETACH_SETTLE_MS); // its programs may run on briefly (see Floor.detach)
            },
          };
        };
        let attached: Attached | undefined;
        if (arm === 'floor') {
          await floor.attach();
          attached = { stop: () => floor.detach() };
        } else if (arm === 'capture') {
          attached = await reader(0);
        } else if (arm === 'busy') {
          // The agent's load-CPU cost per request: its process, and what its export adds to the
          // harness (the OTLP sink) over the plain capture arm's harness CPU.
          const ag = rounds.agent[i]?.sat;
          const plain = rounds.capture[i];
          const agentUs = ag?.userUs !== undefined && plain ? ag.userUs + Math.max(0, ag.harnessUs - plain.sat.harnessUs) : undefined;
          attached = await reader(agentUs !== undefined && plain?.sat.userUs !== undefined ? busyPerRecordUs(agentUs, plain.sat.userUs, plain.recordsPerRequest ?? 0) : 0);
        } else if (arm === 'agent') {
          const agent: Agent = await startAgent(config, { pids: [server.child.pid], otlpEndpoint: ctx.sink.endpoint });
          attached = {
            pid: agent.pid,
            ticks: agent.cpuTicks,
            async stop() {
              await agent.shutdown();
              await sleep(DETACH_SETTLE_MS); // its programs may run on briefly (see Floor.detach)
            },
          };
        }
        try {
          const warm = await wrk(config, server.url, 1); // the arm's path warm
          requests += warm.requests;
          await sleep(200);
          if (i === 0 && attached?.pid !== undefined && (arm === 'capture' || arm === 'agent')) {
            const p = await progsPerRequest(ctx, server, attached.pid);
            requests += p.requests;
            bpf[arm] = p;
          }
          const sat = await saturated(ctx, server, attached?.ticks);
          requests += sat.requests;
          if (i === 0 && arm === 'without') halfRate = Math.max(1, Math.round(sat.rps / 2));
          const half = await halfLoad(ctx, server, halfRate, attached?.ticks);
          requests += half.achieved * Math.min(config.seconds, 5);
          if (i === 0 && arm === 'agent') lowRate = Math.max(1, Math.round(sat.rps / 2));
          const low = arm === 'agent' ? await halfLoad(ctx, server, lowRate, attached?.ticks) : undefined;
          rounds[arm].push({ sat, half, busyUs, low });
        } finally {
          await attached?.stop();
        }
        const last = rounds[arm][rounds[arm].length - 1];
        if (last && records !== undefined) {
          last.recordsPerRequest = records / Math.max(1, requests);
          last.drops = drops;
        }
      }
      ctx.log(`${id}: round ${i + 1}/${config.rounds} without, at the low rate`);
      rounds.without[i].low = await halfLoad(ctx, server, lowRate);
    }
  } finally {
    await floor.close();
    await stopServer(server);
  }
  s.raw.rounds = rounds;
  s.raw.halfRate = halfRate;
  s.raw.lowRate = lowRate;
  s.raw.bpf = bpf;
  s.figures.push(...figures(id, what, rounds, { half: halfRate, low: lowRate }, bpf));
  return s;
}

export async function saturated(ctx: BenchContext, server: Server, userTicks?: () => number): Promise<Sat> {
  const { config } = ctx;
  const t0 = cpuTicks(server.child.pid);
  const u0 = userTicks?.();
  const c0 = cpuBusy(config.serverCpu);
  const l0 = cpuBusy(config.loadCpu);
  const h0 = process.cpuUsage();
  const w0 = performance.now();
  const r = await wrk(config, server.url, config.seconds);
  const wall = (performance.now() - w0) / 1000;
  const h = process.cpuUsage(h0);
  const perReq = (ticks: number) => ((ticks / CLK_TCK) * 1e6) / Math.max(1, r.requests);
  const serverTicks = cpuTicks(server.child.pid) - t0;
  return {
    rps: r.rps,
    requests: r.requests,
    cpuUs: perReq(serverTicks),
    serverShare: serverTicks / CLK_TCK / wall,
    harnessUs: (h.user + h.system) / Math.max(1, r.requests),
    serverCpu: busyShareSince(c0, config.serverCpu),
    loadCpu: busyShareSince(l0, config.loadCpu),
    userUs: u0 !== undefined && userTicks ? perReq(userTicks() - u0) : undefined,
  };
}

async function halfLoad(ctx: BenchContext, server: Server, rate: number, userTicks?: () => number): Promise<Half> {
  const { config } = ctx;
  const t0 = cpuTicks(server.child.pid);
  const c0 = cpuBusy(config.serverCpu);
  const l0 = cpuBusy(config.loadCpu);
  const u0 = userTicks?.();
  const r = await loadgen(config, { addr: server.addr, path: server.path, rate, seconds: Math.min(config.seconds, 5) });
  const u = u0 !== undefined && userTicks ? userTicks() - u0 : undefined;
  return {
    rate,
    achieved: r.achievedRate,
    unsent: r.unsent,
    p50: r.correctedUs.p50,
    p99: r.correctedUs.p99,
    serviceP99: r.serviceUs.p99,
    lateP99: r.lateP99Us,
    cpuUs: (((cpuTicks(server.child.pid) - t0) / CLK_TCK) * 1e6) / Math.max(1, r.requests),
    serverCpu: busyShareSince(c0, config.serverCpu),
    loadCpu: busyShareSince(l0, config.loadCpu),
    userUs: u !== undefined ? (((u / CLK_TCK) * 1e6) / Math.max(1, r.requests)) : undefined,
  };
}

/**
 * The arm's BPF programs' run time and runs per request (BPF statistics; the programs of process
 * `pid`, so other tracers' programs do not count). Other processes' syscalls on these tracepoints
 * run the programs too (stopping at the lookup): their rate over 1 s without load, just before, is
 * subtracted from the 1 s wrk run (`idleShare`: the part subtracted, the figure's noise).
 */
async function progsPerRequest(ctx: BenchContext, server: Server, pid: number): Promise<BpfCount> {
  return withBpfStats(async () => {
    const s0: ProgStats[] = agentProgStats(pid);
    const t0 = performance.now();
    await sleep(1000);
    const s1 = agentProgStats(pid);
    const t1 = performance.now();
    const r = await wrk(ctx.config, server.url, 1);
    const s2 = agentProgStats(pid);
    const scale = (performance.now() - t1) / (t1 - t0);
    const idle = progDelta(s0, s1);
    const load = progDelta(s1, s2);
    const sum = (d: typeof load, k: 'runs' | 'ns') => d.reduce((a, x) => a + x[k], 0);
    const per = (k: 'runs' | 'ns') => Math.max(0, sum(load, k) - sum(idle, k) * scale) / Math.max(1, r.requests);
    return { requests: r.requests, usPerRequest: per('ns') / 1000, runsPerRequest: per('runs'), idleShare: (sum(idle, 'ns') * scale) / Math.max(1, sum(load, 'ns')), programs: load };
  });
}

interface BpfCount {
  requests: number;
  usPerRequest: number;
  runsPerRequest: number;
  idleShare: number;
  programs: unknown;
}

const LABEL: Record<Exclude<Arm, 'without'>, string> = {
  floor: "empty programs on the agent's syscall tracepoints (dispatch floor)",
  capture: 'minimal capture, reader discarding',
  busy: 'minimal capture, reader costing the load CPU what the agent does',
  agent: 'the agent (defaults)',
};

type BpfPerRequest = Partial<Record<Arm, BpfCount>>;

function figures(id: string, what: string, rounds: Record<Arm, ArmRound[]>, rates: { half: number; low: number }, bpf: BpfPerRequest): Figure[] {
  const n = rounds.without.length;
  const m = (a: readonly number[]) => round(median(a), 2);
  const sat = (a: Arm, f: (x: Sat) => number) => rounds[a].map((r) => f(r.sat));
  const half = (a: Arm, f: (x: Half) => number) => rounds[a].map((r) => f(r.half));
  const cpu = (a: Arm) => sat(a, (x) => x.cpuUs);
  const work = median(cpu('without'));
  const added = (a: Arm) => pairedDifference(cpu('without'), cpu(a)).perRound;
  const tput = (a: Arm) => pairedRatio(sat('without', (x) => x.rps), sat(a, (x) => x.rps)).perRound;
  const p99 = (a: Arm) => pairedDifference(half('without', (x) => x.p99), half(a, (x) => x.p99)).perRound;
  const kept = (us: number) => round(work / (work + us));
  const busy = (a: Arm) => `the server's own CPU share ${m(sat(a, (x) => x.serverShare))} of its CPU (that CPU ${m(sat(a, (x) => x.serverCpu))} busy), load CPU ${m(sat(a, (x) => x.loadCpu))} busy`;
  const user = (a: Arm) => {
    const u = rounds[a].map((r) => r.sat.userUs).filter((v): v is number => v !== undefined);
    return u.length ? `${a === 'agent' ? 'agent' : 'reader'} CPU ${m(u)} us/request on the load CPU, the harness (OTLP sink) ${m(sat(a, (x) => x.harnessUs))}` : '';
  };
  const records = (a: Arm) => {
    const r = rounds[a].map((x) => x.recordsPerRequest).filter((v): v is number => v !== undefined);
    const d = rounds[a].map((x) => x.drops ?? 0).reduce((x, y) => x + y, 0);
    return r.length ? `${m(r)} records/request, ${d} ring drops` : '';
  };
  const bpfText = (a: Arm) => (bpf[a] ? `its BPF programs ${round(bpf[a]!.usPerRequest, 2)} us/request over ${round(bpf[a]!.runsPerRequest, 1)} runs (BPF statistics, round 1, other processes' runs subtracted)` : '');
  const join = (...parts: string[]) => parts.filter(Boolean).join('; ');
  const out: Figure[] = [];
  const spreadFig = (fid: string, label: string, sp: Spread, unit: string, detail: string) => out.push(fig({ id: fid, label, value: sp.median, unit, rounds: n, spread: sp, detail }));

  // Server CPU per request (robust to other processes taking the CPUs).
  out.push(fig({ id: `${id}.work_us`, label: `Server CPU per request, nothing attached (${what}, saturated)`, value: work, unit: 'us/request', rounds: n, detail: join(`${m(sat('without', (x) => x.rps))} req/s`, busy('without')) }));
  for (const a of ['floor', 'capture', 'busy', 'agent'] as const) {
    const sp = added(a);
    spreadFig(`${id}.added_${a}_us`, `Added server CPU per request: ${LABEL[a]}`, sp, 'us/request', join(`capacity kept ${kept(sp.median)}`, bpfText(a), `${m(sat(a, (x) => x.rps))} req/s`, busy(a), user(a), records(a)));
  }
  const diff = (a: Arm, b: Arm) => pairedDifference(cpu(a), cpu(b)).perRound;
  const dilution = diff('capture', 'busy');
  const beyond = diff('busy', 'agent');
  spreadFig(`${id}.server_cpu_load_contention_us`, "Server CPU per request the load CPU's contention adds (busy reader - plain reader, same BPF)", dilution, 'us/request', "the server's own syscalls, not BPF: with the load CPU shared, wrk sends fewer requests per wake-up and the server handles fewer per epoll round, so it pays more wake-ups and reads per request (paired by round)");
  spreadFig(`${id}.agent_beyond_capture_us`, "The agent's added server CPU beyond the minimal capture's, at the same load-CPU contention (agent - busy reader)", beyond, 'us/request', join("the agent's kernel side on the server's CPU: its BPF programs beyond the lookup and the two copies (BPF statistics above), sk_msg header injection, its per-connection uprobe and work (paired by round)", bpf.agent && bpf.capture ? `BPF statistics alone: ${round(bpf.agent.usPerRequest - bpf.capture.usPerRequest, 2)} us/request more than the capture's` : ''));
  for (const a of ['capture', 'agent'] as const) {
    const b = bpf[a];
    out.push(fig({ id: `${id}.bpf_${a}_us`, label: `BPF program time per request: ${LABEL[a]} (BPF statistics)`, value: b?.usPerRequest ?? null, unit: 'us/request', rounds: 1, unavailable: b ? undefined : 'not counted', detail: b ? `round 1, a 1 s saturated wrk run; ${round(b.runsPerRequest, 1)} program runs per request; other processes' runs (their rate over 1 s idle just before) subtracted: ${round(b.idleShare * 100, 1)}% of the time counted; the kernel's statistics time the programs' bodies, not the tracepoint dispatch (the floor arm's added CPU)` : undefined }));
  }
  out.push(fig({ id: `${id}.kept_capture`, label: 'Capacity a CPU-bound server keeps with the minimal capture (work / (work + added))', value: kept(added('capture').median), unit: 'ratio', rounds: n, detail: `the most any tracer that copies requests and responses at the syscall layer keeps on this machine; the dispatch floor alone keeps ${kept(added('floor').median)}, the agent ${kept(added('agent').median)}` }));

  // Saturated throughput and the split of the floor-to-agent gap.
  for (const a of ['floor', 'capture', 'busy', 'agent'] as const) {
    const extra = a === 'busy' ? `busy work ${m(rounds.busy.map((r) => r.busyUs ?? 0))} us per record, calibrated per round so the reader's CPU per request matches that round's agent arm (its process + what its export adds to the harness)` : '';
    spreadFig(`${id}.tput_${a}`, `Saturated throughput, ${LABEL[a]} / nothing (wrk, paired rounds)`, tput(a), 'ratio', join(extra, busy(a), user(a), records(a)));
  }
  const split = splitGap(
    Array.from({ length: n }, (_, i) => {
      const r = (a: Arm) => rounds[a][i].sat.rps / rounds.without[i].sat.rps;
      return { floor: r('floor'), capture: r('capture'), captureBusy: r('busy'), agent: r('agent') };
    }),
  );
  const gapFig = (suffix: string, label: string, v: number, detail: string) => out.push(fig({ id: `${id}.gap${suffix}`, label, value: v, unit: 'ratio points', rounds: n, detail }));
  gapFig('', 'Saturated ratio gap, dispatch floor - agent', split.gap, 'split below into three parts, each the median of its per-round value (per round they add up to the gap)');
  gapFig('_capture', 'of it: the minimal capture (floor - capture)', split.capture, "what copying 256 + 128 bytes into two ring records, and reading them, costs any syscall-layer tracer here: server CPU (BPF) plus the plain reader's share of the load CPU");
  gapFig('_user_space', "of it: user space at the agent's CPU per request, on the load CPU (capture - capture with busy reader)", split.userSpace, "the same BPF; the reader spends what the agent spent per request: wrk loses the load CPU to it (and the server pays for it too: server_cpu_load_contention_us)");
  gapFig('_agent_bpf', "of it: the agent's kernel side beyond the minimal capture (capture with busy reader - agent)", split.agentBpf, `server CPU: the agent adds ${round(beyond.median, 2)} us/request more than the minimal capture at the same load-CPU contention (agent_beyond_capture_us)`);

  // p99 at half load, and at a rate the agent sustains.
  out.push(fig({ id: `${id}.p99_without`, label: `p99 at half load, nothing attached (${rates.half} req/s, open loop from due times)`, value: median(half('without', (x) => x.p99)), unit: 'us', rounds: n, detail: join(`p50 ${m(half('without', (x) => x.p50))} us`, halfBusy(rounds.without.map((r) => r.half))) }));
  for (const a of ['floor', 'capture', 'busy', 'agent'] as const) {
    const p50 = pairedDifference(half('without', (x) => x.p50), half(a, (x) => x.p50)).perRound.median;
    const userUs = rounds[a].map((r) => r.sat.userUs).filter((v): v is number => v !== undefined);
    // Records are read every 50 ms (or once 64 KiB wait): each read is a burst of user-space CPU on
    // the load generator's CPU, which the generator waits behind.
    const burst = userUs.length ? `its user space reads every 50 ms: ~${round((rates.half * 0.05 * median(userUs)) / 1000, 1)} ms of load-CPU work per read at this rate (at its saturated CPU per request)` : '';
    spreadFig(`${id}.p99_added_${a}`, `p99 added at half load: ${LABEL[a]}`, p99(a), 'us', join(`p99 ${m(half(a, (x) => x.p99))} us (from the send: ${m(half(a, (x) => x.serviceP99))}), p50 added ${round(p50, 1)} us`, `the half-load rate is ${round(rates.half / median(sat(a, (x) => x.rps)), 2)} of this arm's saturated rate`, burst, halfBusy(rounds[a].map((r) => r.half))));
  }
  for (const a of ['floor', 'capture', 'busy', 'agent'] as const) {
    const sp = pairedDifference(half('without', (x) => x.serviceP99), half(a, (x) => x.serviceP99)).perRound;
    spreadFig(`${id}.p99_send_added_${a}`, `p99 added at half load from each request's send: ${LABEL[a]}`, sp, 'us', `the same run without the time a request waited to be sent (the generator's own lateness: it shares the load CPU with the reader or the agent, whose records are read in bursts every 50 ms); generator late p99 ${m(half(a, (x) => x.lateP99))} us, without anything attached ${m(half('without', (x) => x.lateP99))} us`);
  }
  const agentSat = median(sat('agent', (x) => x.rps));
  out.push(fig({
    id: `${id}.half_load_over_agent_saturation`,
    label: "Half-load rate / the agent arm's saturated rate",
    value: rates.half / agentSat,
    unit: 'ratio',
    rounds: n,
    detail: `${rates.half} req/s against ${round(agentSat)} req/s saturated with the agent; near 1 the open-loop generator queues behind a server (or a load CPU) with no spare capacity, so p99 is waiting time, not per-request cost`,
  }));
  const lows = (a: Arm) => rounds[a].map((r) => r.low).filter((h): h is Half => h !== undefined);
  const lw = lows('without');
  const la = lows('agent');
  if (lw.length && la.length) {
    const sp = pairedDifference(lw.map((h) => h.p99), la.map((h) => h.p99)).perRound;
    spreadFig(`${id}.p99_added_agent_low`, `p99 added by the agent at half its own saturated rate (${rates.low} req/s)`, sp, 'us', join(`p99 ${m(lw.map((h) => h.p99))} us without, ${m(la.map((h) => h.p99))} with`, `without: ${halfBusy(lw)}`, `with: ${halfBusy(la)}`, 'a rate both sustain: the per-request part of the p99, without the queueing'));
  }
  return out;
}

function halfBusy(a: Half[]): string {
  const m = (f: (h: Half) => number) => round(median(a.map(f)), 2);
  const u = a.map((h) => h.userUs).filter((v): v is number => v !== undefined);
  return `server CPU ${m((h) => h.serverCpu)} busy, load CPU ${m((h) => h.loadCpu)}${u.length ? ` (of it the reader's or agent's process ${round(median(u), 2)} us CPU/request)` : ''}; achieved ${m((h) => h.achieved)} req/s, ${m((h) => h.unsent)} unsent; generator late p99 ${m((h) => h.lateP99)} us; server ${m((h) => h.cpuUs)} us CPU/request`;
}
