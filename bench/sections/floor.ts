/**
 * The uprobe floor, measured here: a Go loop parsing a request head (textproto ReadMIMEHeader) timed
 * with and without the agent attached; each header line and the final blank line hit the agent's
 * uprobe on a RET of readContinuedLineSlice, so the difference per hit is what one uprobe costs the
 * traced process (trap, uprobe dispatch and the agent's program). Hits per op are counted with the
 * kernel's BPF statistics, not assumed.
 */
import { startAgent } from '../lib/agent';
import { agentProgStats, isUprobeProg, progDelta, withBpfStats } from '../lib/bpf-stats';
import { startMicrobench } from '../lib/microbench';
import { fig, section, type SectionResult } from '../lib/report';
import { pairedDifference, round } from '../lib/stats';
import { addUprobes, retOffsets } from '../lib/tracefs-uprobe';
import { alternate, type BenchContext } from './context';

const HEADERS = 8;

export async function floorSection(ctx: BenchContext): Promise<SectionResult> {
  const s = section('floor', 'Uprobe floor (Go micro-benchmark)');
  const ms = Math.max(1000, Math.round((ctx.config.seconds * 1000) / 3));
  const micro = await startMicrobench(ctx.config, 'floor', ['-headers', String(HEADERS)]);
  let hitsPerOp = HEADERS + 1;
  let bpfNsPerHit: number | undefined;
  try {
    await micro.run(300); // warm-up
    const rounds = await alternate(
      ctx,
      'floor',
      async () => (await micro.run(ms)).nsPerOp,
      async (i) => {
        // The uprobe path (go.server_path: uprobes) puts uprobes on the parser's RETs; the default
        // syscall path has none there, and hits per op would be 0.
        const agent = await startAgent(ctx.config, { pids: [micro.child.pid], otlpEndpoint: ctx.sink.endpoint, env: { SPANBRIDGE_GO_SERVER_PATH: 'uprobes' } });
        try {
          if (i === 0) {
            await withBpfStats(async () => {
              const before = agentProgStats(agent.pid);
              const r = await micro.run(200);
              const d = progDelta(before, agentProgStats(agent.pid)).filter(isUprobeProg);
              const runs = d.reduce((a, x) => a + x.runs, 0);
              hitsPerOp = runs / r.ops;
              bpfNsPerHit = d.reduce((a, x) => a + x.ns, 0) / runs;
              s.raw.bpfPrograms = d;
            });
          }
          await micro.run(200); // settle after attach
          return (await micro.run(ms)).nsPerOp;
        } finally {
          await agent.shutdown();
        }
      },
    );
    const p = pairedDifference(rounds.without, rounds.with);
    const perHitUs = p.perRound.median / hitsPerOp / 1000;
    const scale = (v: number) => v / hitsPerOp / 1000;
    s.raw.rounds = rounds;
    s.figures.push(
      fig({
        id: 'floor.per_hit',
        label: 'Uprobe hit cost in the traced process',
        value: perHitUs,
        unit: 'us/hit',
        rounds: p.perRound.n,
        spread: { min: scale(p.perRound.min), p25: scale(p.perRound.p25), p75: scale(p.perRound.p75), max: scale(p.perRound.max) },
        detail: `ReadMIMEHeader of ${HEADERS} lines: ${round(p.without.median)} ns/op without, ${round(p.with.median)} ns/op with; ${round(hitsPerOp, 4)} uprobe hits/op counted (BPF stats); REFERENCES: ~1.3 us`,
      }),
    );
    if (bpfNsPerHit !== undefined) {
      s.figures.push(fig({ id: 'floor.bpf_ns', label: "Agent's BPF program time per hit (part of the above)", value: bpfNsPerHit, unit: 'ns/hit', rounds: 1, detail: 'kernel BPF run-time statistics, one counting run' }));
    }
    ctx.uprobeFloorUs = { value: perHitUs, rounds: p.perRound.n, source: 'measured (floor section)' };

    // The kernel's share: the same RET points probed through tracefs, no BPF program.
    const offsets = retOffsets(micro.binary, 'net/textproto.(*Reader).readContinuedLineSlice');
    const probes = addUprobes(micro.binary, offsets);
    try {
      const bare = await alternate(
        ctx,
        'floor (tracefs uprobes)',
        async () => (await micro.run(ms)).nsPerOp,
        async () => {
          probes.enable(true);
          try {
            return (await micro.run(ms)).nsPerOp;
          } finally {
            probes.enable(false);
          }
        },
      );
      const b = pairedDifference(bare.without, bare.with);
      s.raw.tracefsRounds = bare;
      s.figures.push(fig({
        id: 'floor.kernel_per_hit',
        label: 'Bare kernel uprobe hit (tracefs event, no BPF) at the same RET points',
        value: b.perRound.median / hitsPerOp / 1000,
        unit: 'us/hit',
        rounds: b.perRound.n,
        spread: { min: scale(b.perRound.min), p25: scale(b.perRound.p25), p75: scale(b.perRound.p75), max: scale(b.perRound.max) },
        detail: `${round(b.without.median)} ns/op without, ${round(b.with.median)} ns/op with ${offsets.length} tracefs uprobes (one per RET); the trap itself, without the agent`,
      }));
    } finally {
      probes.remove();
    }
  } finally {
    await micro.stop();
  }
  return s;
}
