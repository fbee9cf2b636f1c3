/**
 * Untraced processes: a syscall-heavy loop (1-byte write + read on a socketpair: four syscall
 * tracepoint hits per op) in a process the agent does NOT select, timed with and without the agent
 * running (the agent traces an idle Go server, so its syscall tracepoints are attached).
 */
import { startAgent } from '../lib/agent';
import { agentProgStats, progDelta, withBpfStats } from '../lib/bpf-stats';
import { startMicrobench } from '../lib/microbench';
import { fig, section, type SectionResult } from '../lib/report';
import { pairedDifference, round, withinNoise } from '../lib/stats';
import { alternate, startServer, type BenchContext } from './context';

/** Tracepoint programs hit per op: sys_enter and sys_exit of write, sys_exit of read (reads have no
 * entry program: bpf/sys_http/sys_http.bpf.c takes their arguments from the saved registers at the exit). */
const HOOKED_PER_OP = 3;

export async function untracedSection(ctx: BenchContext): Promise<SectionResult> {
  const s = section('untraced', 'Untraced processes (syscall tracepoints, process not selected)');
  const ms = Math.max(1000, Math.round((ctx.config.seconds * 1000) / 3));
  const server = await startServer(ctx, 'go');
  const micro = await startMicrobench(ctx.config, 'sysloop');
  let tpNsPerHit: number | undefined;
  try {
    await micro.run(300);
    const rounds = await alternate(
      ctx,
      'untraced',
      async () => (await micro.run(ms)).nsPerOp,
      async (i) => {
        const agent = await startAgent(ctx.config, { pids: [server.child.pid], otlpEndpoint: ctx.sink.endpoint });
        try {
          if (i === 0) {
            await withBpfStats(async () => {
              const before = agentProgStats(agent.pid);
              await micro.run(200);
              const d = progDelta(before, agentProgStats(agent.pid)).filter((x) => x.type !== 2);
              s.raw.tracepointPrograms = d;
              const runs = d.reduce((a, x) => a + x.runs, 0);
              tpNsPerHit = runs > 0 ? d.reduce((a, x) => a + x.ns, 0) / runs : undefined;
            });
          }
          await micro.run(200);
          return (await micro.run(ms)).nsPerOp;
        } finally {
          await agent.shutdown();
        }
      },
    );
    const p = pairedDifference(rounds.without, rounds.with);
    s.raw.rounds = rounds;
    const noise = withinNoise(p);
    const perSyscall = (v: number) => v / HOOKED_PER_OP;
    s.figures.push(
      fig({
        id: 'untraced.ns_per_syscall',
        label: 'Added time per hooked syscall, unselected process',
        value: perSyscall(p.perRound.median),
        unit: 'ns',
        rounds: p.perRound.n,
        spread: { min: perSyscall(p.perRound.min), p25: perSyscall(p.perRound.p25), p75: perSyscall(p.perRound.p75), max: perSyscall(p.perRound.max) },
        target: { text: '<= 150 ns', met: perSyscall(p.perRound.median) <= 150 },
        detail: `the write+read pair's added time / ${HOOKED_PER_OP} (the agent's tracepoint programs hit per op: write at entry and exit, read at exit); ${noise ? 'within' : 'above'} the spread of the rounds without the agent`,
      }),
      fig({
        id: 'untraced.added_ns',
        label: 'Added time per write+read pair, unselected process',
        value: p.perRound.median,
        unit: 'ns/op',
        rounds: p.perRound.n,
        spread: p.perRound,
        detail: `${round(p.without.median)} ns/op without (range ${round(p.without.min)} .. ${round(p.without.max)}), ${round(p.with.median)} ns/op with (range ${round(p.with.min)} .. ${round(p.with.max)}); ${round((p.perRound.median / p.without.median) * 100)}% added`,
      }),
    );
    if (tpNsPerHit !== undefined) {
      s.figures.push(fig({ id: 'untraced.bpf_ns', label: "Agent's tracepoint program time per hit, machine-wide average", value: tpNsPerHit, unit: 'ns/hit', rounds: 1, detail: 'BPF run-time statistics over every process on the machine during one counting run (almost all unselected: early exit)' }));
    }
  } finally {
    await micro.stop();
    await server.child.stop();
  }
  return s;
}
