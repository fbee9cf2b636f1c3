/**
 * The tracepoint floor for a server (issue 15: a throughput target may stay missed only if a
 * measurement shows it is out of reach for reasons outside the agent): a Go net/http server
 * (`tpfloor`) or Node's http server (`tpfloornode`). Arms per round on one server, saturated with
 * wrk: nothing attached; empty BPF programs on exactly the syscall tracepoints the agent's syscall
 * tracer attaches (bench/bpf/tp_floor.bpf.c: the kernel's dispatch, no agent code); the same on the
 * raw syscall tracepoints; the agent at its defaults. The floor arm is the best any agent hooking
 * these syscalls can reach here; the agent's added time per request minus the floor's is the
 * agent's own (its BPF programs, its per-connection uprobe, header injection). Each arm also
 * records how busy the server's CPU and the load generator's CPU were: a server whose CPU is not
 * saturated is limited by the load generator (and the agent's user space, which shares that CPU),
 * so its throughput ratio measures that CPU, not the server's capacity.
 */
import path from 'node:path';
import { createLibbpfBackend } from '../../src/bpf/libbpf';
import type { BpfLink, BpfObject } from '../../src/bpf/types';
import { SYS_HTTP_PROGRAMS } from '../../src/tracers/sys-http-tracer';
import { startAgent } from '../lib/agent';
import { agentProgStats, progDelta, withBpfStats, type ProgStats } from '../lib/bpf-stats';
import { wrk } from '../lib/load';
import { busyShareSince, CLK_TCK, cpuBusy, cpuTicks, sleep } from '../lib/procs';
import { fig, section, type SectionResult } from '../lib/report';
import { median, pairedDifference, pairedRatio, round } from '../lib/stats';
import { startServer, stopServer, type BenchContext } from './context';

export type FloorServer = 'go' | 'node';

/**
 * Exactly the syscall tracepoints the agent's syscall tracer attaches (its own table, so the floor
 * follows it: 17 since reads lost their entry programs); bench/bpf/tp_floor.bpf.c has an empty
 * program floor_<tracepoint> for each (and for a few the agent no longer uses).
 */
export const FLOOR_TRACEPOINTS = SYS_HTTP_PROGRAMS.filter((p) => p.category === 'syscalls').map((p) => p.event);

/** How long a detached tracepoint program may go on running here (~0.5 s measured), with margin:
 * wait this long after a detach, or an agent's exit, before measuring without it. */
export const DETACH_SETTLE_MS = 1500;

/** The floor programs, loaded once; attach() / detach() per round. */
export class Floor {
  private links: BpfLink[] = [];
  constructor(private readonly obj: BpfObject) {}

  /** build/bench/tp_floor.bpf.o (make bench-bpf). */
  static path(binDir: string): string {
    return path.join(binDir, '..', 'tp_floor.bpf.o');
  }

  static open(objPath: string): Floor {
    const obj = createLibbpfBackend().open(objPath);
    obj.load();
    return new Floor(obj);
  }

  /**
   * Attaches every floor program. Right after a detach the kernel may still hold a program in the
   * tracepoint's program array (its release is deferred on this kernel): attaching the same program
   * again answers EEXIST until then, so that one is retried for up to 5 s.
   */
  async attach(): Promise<void> {
    for (const tp of FLOOR_TRACEPOINTS) {
      const prog = this.obj.program(`floor_${tp}`);
      for (let waited = 0; ; waited += 10) {
        try {
          this.links.push(prog.attachTracepoint('syscalls', tp));
          break;
        } catch (err) {
          if ((err as { errno?: number }).errno !== 17 || waited >= 5000) throw err;
          await sleep(10);
        }
      }
    }
  }

  /** The raw syscall tracepoints instead (every syscall of every process). */
  attachRaw(): void {
    for (const tp of ['sys_enter', 'sys_exit']) this.links.push(this.obj.program(`floor_raw_${tp}`).attachRawTracepoint(tp));
  }

  /**
   * Detaches every floor program and waits until they no longer run: on this kernel (6.18) a
   * detached syscall tracepoint program keeps running for ~0.5 s (its release is deferred; seen
   * with BPF statistics: 1,000 of 1,000 writes still counted 424 ms after the detach, none at
   * 551 ms), so a run right after a detach would measure the floor still attached.
   */
  async detach(): Promise<void> {
    const had = this.links.length > 0;
    for (const l of this.links.reverse()) l.destroy();
    this.links = [];
    if (had) await sleep(DETACH_SETTLE_MS);
  }

  async close(): Promise<void> {
    await this.detach();
    await this.obj.close();
  }
}

/**
 * One saturated run: req/s and the server's own CPU time per request (utime + stime from /proc:
 * the kernel's dispatch and BPF programs run in its context). CPU time per request is what the
 * figures compare: other processes on the machine take the server's CPU away (and move req/s a
 * lot) but do not add to its CPU time. `serverCpu` / `loadCpu`: the busy share of the two CPUs
 * over the run (softirq included: loopback TCP delivery runs on the sender's CPU).
 */
interface Run {
  rps: number;
  cpuUs: number;
  serverCpu: number;
  loadCpu: number;
}

export async function tpFloorSection(ctx: BenchContext, kind: FloorServer = 'go'): Promise<SectionResult> {
  const id = kind === 'go' ? 'tpfloor' : 'tpfloor_node';
  const what = kind === 'go' ? 'Go net/http server' : 'Node http server';
  const s = section(id, `Tracepoint dispatch floor (${what}: nothing / empty programs on the agent's syscall tracepoints / the agent)`);
  const { config } = ctx;
  const server = await startServer(ctx, kind);
  const floor = Floor.open(Floor.path(config.binDir));
  const rounds = { without: [] as Run[], floor: [] as Run[], raw: [] as Run[], agent: [] as Run[] };
  const measure = async (): Promise<Run> => {
    const t0 = cpuTicks(server.child.pid);
    const c0 = cpuBusy(config.serverCpu);
    const l0 = cpuBusy(config.loadCpu);
    const r = await wrk(config, server.url, config.seconds);
    return {
      rps: r.rps,
      cpuUs: (((cpuTicks(server.child.pid) - t0) / CLK_TCK) * 1e6) / Math.max(1, r.requests),
      serverCpu: busyShareSince(c0, config.serverCpu),
      loadCpu: busyShareSince(l0, config.loadCpu),
    };
  };
  let floorHitsPerRequest: number | undefined;
  let floorNsPerHit: number | undefined;
  try {
    await wrk(config, server.url, 1); // warm the server
    for (let i = 0; i < config.rounds; i++) {
      ctx.log(`${id}: round ${i + 1}/${config.rounds} without`);
      rounds.without.push(await measure());
      ctx.log(`${id}: round ${i + 1}/${config.rounds} empty programs`);
      await floor.attach();
      try {
        if (i === 0) {
          await withBpfStats(async () => {
            const before: ProgStats[] = agentProgStats(process.pid);
            const r = await wrk(config, server.url, 1);
            const d = progDelta(before, agentProgStats(process.pid));
            const runs = d.reduce((a, x) => a + x.runs, 0);
            floorHitsPerRequest = runs / Math.max(1, r.requests);
            floorNsPerHit = d.reduce((a, x) => a + x.ns, 0) / Math.max(1, runs);
            s.raw.floorPrograms = d;
          });
        }
        rounds.floor.push(await measure());
      } finally {
        await floor.detach();
      }
      ctx.log(`${id}: round ${i + 1}/${config.rounds} empty programs on the raw syscall tracepoints`);
      floor.attachRaw();
      try {
        rounds.raw.push(await measure());
      } finally {
        await floor.detach();
      }
      ctx.log(`${id}: round ${i + 1}/${config.rounds} with agent`);
      const agent = await startAgent(config, { pids: [server.child.pid], otlpEndpoint: ctx.sink.endpoint });
      try {
        await wrk(config, server.url, 1); // the agent's path warm
        await sleep(200);
        rounds.agent.push(await measure());
      } finally {
        await agent.shutdown();
        await sleep(DETACH_SETTLE_MS); // its programs may run on briefly (see Floor.detach)
      }
    }
  } finally {
    await floor.close();
    await stopServer(server);
  }
  s.raw.rounds = rounds;
  const n = rounds.without.length;
  const cpu = (a: Run[]) => a.map((r) => r.cpuUs);
  const work = median(cpu(rounds.without));
  const added = (a: Run[]) => pairedDifference(cpu(rounds.without), cpu(a));
  const aFloor = added(rounds.floor);
  const aRaw = added(rounds.raw);
  const aAgent = added(rounds.agent);
  const rps = (a: Run[]) => round(median(a.map((r) => r.rps)));
  const tput = (a: Run[]) => pairedRatio(rounds.without.map((r) => r.rps), a.map((r) => r.rps)).perRound;
  const busy = (a: Run[]) => `server CPU ${round(median(a.map((r) => r.serverCpu)), 2)} busy, load CPU ${round(median(a.map((r) => r.loadCpu)), 2)}`;
  /** The capacity a CPU-bound server keeps: its work over work plus what is added. */
  const kept = (a: number) => work / (work + a);
  const tFloor = tput(rounds.floor);
  const tAgent = tput(rounds.agent);
  s.figures.push(
    fig({ id: `${id}.work_us`, label: 'Server CPU per request, nothing attached', value: work, unit: 'us/request', rounds: n, detail: `utime+stime of the server (pinned to one CPU) over a saturated wrk run / requests; ${rps(rounds.without)} req/s; ${busy(rounds.without)}` }),
    fig({
      id: `${id}.added_floor_us`,
      label: "Added server CPU per request: empty programs on the agent's syscall tracepoints",
      value: aFloor.perRound.median,
      unit: 'us/request',
      rounds: n,
      spread: aFloor.perRound,
      detail: `${FLOOR_TRACEPOINTS.length} syscall tracepoints, programs that return at once (the kernel's dispatch only); capacity kept ${round(kept(aFloor.perRound.median))}; ${rps(rounds.floor)} req/s; ${busy(rounds.floor)}`,
    }),
    fig({
      id: `${id}.added_raw_us`,
      label: 'Added server CPU per request: empty programs on raw_tp sys_enter + sys_exit',
      value: aRaw.perRound.median,
      unit: 'us/request',
      rounds: n,
      spread: aRaw.perRound,
      detail: `every syscall of every process runs them; capacity kept ${round(kept(aRaw.perRound.median))}; ${rps(rounds.raw)} req/s`,
    }),
    fig({
      id: `${id}.added_agent_us`,
      label: 'Added server CPU per request: the agent (defaults)',
      value: aAgent.perRound.median,
      unit: 'us/request',
      rounds: n,
      spread: aAgent.perRound,
      detail: `capacity kept ${round(kept(aAgent.perRound.median))}; the agent's own part (minus the tracepoint floor) ${round(aAgent.perRound.median - aFloor.perRound.median)} us; ${rps(rounds.agent)} req/s; ${busy(rounds.agent)}`,
    }),
    fig({
      id: `${id}.kept_floor`,
      label: `Capacity a ${what} keeps with only the tracepoint dispatch (work / (work + floor))`,
      value: kept(aFloor.perRound.median),
      unit: 'ratio',
      rounds: n,
      detail: 'the most an agent hooking these syscall tracepoints can keep on this machine, for a server whose CPU is the bottleneck',
    }),
    fig({
      id: `${id}.tput_floor`,
      label: 'Saturated throughput, empty programs / nothing (wrk, paired rounds)',
      value: tFloor.median,
      unit: 'ratio',
      rounds: n,
      spread: tFloor,
      detail: `the throughput ratio an agent with no cost of its own would show in this bench (the dispatch only); ${busy(rounds.without)} without anything attached`,
    }),
    fig({
      id: `${id}.tput_agent`,
      label: 'Saturated throughput, the agent / nothing (wrk, paired rounds)',
      value: tAgent.median,
      unit: 'ratio',
      rounds: n,
      spread: tAgent,
      detail: 'the same server and arms as above: the agent at its defaults, its user space on the load generator\'s CPU',
    }),
    fig({
      id: `${id}.hits`,
      label: 'Tracepoint hits per request (floor programs, BPF statistics)',
      value: floorHitsPerRequest ?? null,
      unit: 'hits/request',
      rounds: 1,
      unavailable: floorHitsPerRequest === undefined ? 'not counted' : undefined,
      detail: floorNsPerHit !== undefined && floorHitsPerRequest ? `${round(floorNsPerHit)} ns of program time per hit; dispatch per hit ~${round((aFloor.perRound.median * 1000) / floorHitsPerRequest)} ns (added CPU / hits)` : undefined,
    }),
  );
  return s;
}
