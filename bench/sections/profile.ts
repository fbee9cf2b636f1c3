/**
 * When a target is missed: the agent run under `node --cpu-prof` while the Go server takes the
 * fixed-rate load, and the profile's top frames by self time.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startAgent } from '../lib/agent';
import { REPO_ROOT } from '../lib/config';
import { loadgen } from '../lib/load';
import { sleep } from '../lib/procs';
import type { Results } from '../lib/report';
import { startServer, type BenchContext } from './context';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/** Self time per frame (function + file:line), as % of the non-idle time after `skipUs`; pure. */
export function topFrames(p: CpuProfile, skipUs = 0, top = 15): Array<{ frame: string; selfPct: number }> {
  const byNode = new Map<number, string>();
  for (const n of p.nodes) {
    const f = n.callFrame;
    const where = f.url ? ` ${f.url.replace(/^file:\/\//, '').replace(`${REPO_ROOT}/`, '').replace(/^.*node_modules\//, '')}:${f.lineNumber + 1}` : '';
    byNode.set(n.id, `${f.functionName || '(anonymous)'}${where}`);
  }
  const self = new Map<string, number>();
  let total = 0;
  let at = 0;
  p.samples.forEach((id, i) => {
    const frame = byNode.get(id) ?? '?';
    const dt = p.timeDeltas[i] ?? 0;
    at += dt;
    if (frame === '(idle)' || at < skipUs) return;
    total += dt;
    self.set(frame, (self.get(frame) ?? 0) + dt);
  });
  return [...self.entries()]
    .map(([frame, t]) => ({ frame, selfPct: (t / total) * 100 }))
    .sort((a, b) => b.selfPct - a.selfPct)
    .slice(0, top);
}

export async function profileAgent(ctx: BenchContext, results: Results): Promise<void> {
  const dir = path.join(REPO_ROOT, 'build', 'bench', 'profiles', results.date);
  mkdirSync(dir, { recursive: true });
  const server = await startServer(ctx, 'go');
  const rate = Math.round((ctx.goSaturatedRps ?? 8000) / 2);
  let skipUs = 0;
  try {
    const agent = await startAgent(ctx.config, { pids: [server.child.pid], otlpEndpoint: ctx.sink.endpoint, nodeFlags: ['--cpu-prof', '--cpu-prof-dir', dir] });
    try {
      ctx.log(`profile: agent under --cpu-prof, Go server at ${rate} req/s`);
      skipUs = (agent.readyAt - agent.startedAt) * 1000; // start-up is not the steady state
      await loadgen(ctx.config, { addr: server.addr, path: server.path, rate, seconds: ctx.config.seconds });
      await sleep(1600);
    } finally {
      await agent.shutdown();
    }
  } finally {
    await server.child.stop();
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
  const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile;
  results.profile = {
    context: `Agent started with \`node --cpu-prof\`, Go server at ${rate} req/s for ${ctx.config.seconds} s; samples before the agent was ready are left out. Percentages are of the agent's non-idle samples under load.`,
    topFrames: topFrames(profile, skipUs),
    file: path.relative(REPO_ROOT, path.join(dir, file)),
  };
}
