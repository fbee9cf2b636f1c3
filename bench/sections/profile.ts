/**
 * When a target is missed: a CPU profile of the agent while the Go server (or, with
 * SPANBRIDGE_BENCH_PROFILE_SERVER=node, the Node server) takes the fixed-rate load,
 * and its top frames by self time.
 *
 * Not `node --cpu-prof`: V8's sampler signals the main thread every millisecond (SIGPROF) from the
 * first instruction, and the kernel's BPF verifier gives up with EAGAIN when a signal is pending
 * (libbpf retries a few times, then the agent exits with ERR_BPF_LOAD). Instead the agent runs with
 * `--inspect=127.0.0.1:0` and the harness starts and stops the V8 profiler over the inspector
 * protocol once the agent is ready, which also leaves start-up out of the profile.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startAgent } from '../lib/agent';
import { REPO_ROOT } from '../lib/config';
import { loadgen } from '../lib/load';
import { sleep, waitFor } from '../lib/procs';
import { WebSocket } from 'undici';
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

/** Which part of the agent a frame belongs to, from its script path. */
export function areaOf(url: string, functionName: string): string {
  if (functionName.startsWith('(')) return functionName; // (garbage collector), (program)
  if (url.includes('otlp-transformer') || url.includes('protobuf')) return 'OTLP encoding';
  if (url.includes('prom-client') || /receiver\/(prometheus|metrics)\//.test(url)) return 'RED metrics / Prometheus';
  if (url.includes('/receiver/')) return 'batching and export';
  if (url.includes('/src/spans/')) return 'span assembly';
  if (url.includes('/src/events/')) return 'record decoding';
  if (url.includes('/src/bpf/') || url.includes('koffi')) return 'ring buffer (libbpf via koffi)';
  if (url.includes('/src/')) return 'agent, other';
  if (url === '' && /^(bpf_|ring_buffer|libbpf)/.test(functionName)) return 'ring buffer (libbpf via koffi)';
  if (url === '') return 'native (syscalls, libuv, builtins)';
  return 'Node.js / other modules';
}

/** Self time by area (see areaOf), as % of the non-idle time after `skipUs`; pure. */
export function areas(p: CpuProfile, skipUs = 0): Array<{ area: string; selfPct: number }> {
  const byNode = new Map(p.nodes.map((n) => [n.id, areaOf(n.callFrame.url, n.callFrame.functionName)]));
  const self = new Map<string, number>();
  let total = 0;
  let at = 0;
  p.samples.forEach((id, i) => {
    const area = byNode.get(id) ?? '?';
    const dt = p.timeDeltas[i] ?? 0;
    at += dt;
    if (area === '(idle)' || at < skipUs) return;
    total += dt;
    self.set(area, (self.get(area) ?? 0) + dt);
  });
  return [...self.entries()].map(([area, t]) => ({ area, selfPct: (t / total) * 100 })).sort((a, b) => b.selfPct - a.selfPct);
}

/** A minimal Chrome DevTools protocol client over the agent's inspector WebSocket. */
async function inspector(url: string): Promise<{ call(method: string, params?: object): Promise<Record<string, unknown>>; close(): void }> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`inspector ${url}: connection failed`));
  });
  let next = 1;
  const pending = new Map<number, (r: Record<string, unknown>) => void>();
  ws.onmessage = (ev) => {
    const msg = JSON.parse(String(ev.data)) as { id?: number; result?: Record<string, unknown> };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result ?? {});
  };
  return {
    call(method, params = {}) {
      const id = next++;
      ws.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve) => pending.set(id, resolve));
    },
    close: () => ws.close(),
  };
}

export async function profileAgent(ctx: BenchContext, results: Results): Promise<void> {
  const dir = path.join(REPO_ROOT, 'build', 'bench', 'profiles');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${results.date}-agent.cpuprofile`);
  const kind = ctx.config.profileServer;
  const name = kind === 'go' ? 'Go' : 'Node';
  const server = await startServer(ctx, kind);
  const rate = Math.round((ctx.saturatedRps?.[kind] ?? 8000) / 2);
  let profile: CpuProfile;
  try {
    const agent = await startAgent(ctx.config, { pids: [server.child.pid], otlpEndpoint: ctx.sink.endpoint, nodeFlags: ['--inspect=127.0.0.1:0'] });
    try {
      const url = await waitFor('inspector URL', () => /Debugger listening on (ws:\/\/\S+)/.exec(agent.stderr())?.[1], 20_000, 20);
      const cdp = await inspector(url);
      await cdp.call('Profiler.enable');
      await cdp.call('Profiler.setSamplingInterval', { interval: 1000 });
      await cdp.call('Profiler.start');
      ctx.log(`profile: agent profiled over the inspector, ${name} server at ${rate} req/s`);
      await loadgen(ctx.config, { addr: server.addr, path: server.path, rate, seconds: ctx.config.seconds });
      await sleep(1600);
      profile = (await cdp.call('Profiler.stop')).profile as CpuProfile;
      cdp.close();
    } finally {
      await agent.shutdown();
    }
  } finally {
    await server.child.stop();
  }
  writeFileSync(file, JSON.stringify(profile));
  results.profile = {
    context: `V8 CPU profile of the agent (inspector protocol, 1 ms sampling) from readiness on, ${name} server at ${rate} req/s for ${ctx.config.seconds} s. Percentages are of the agent's non-idle samples.`,
    topFrames: topFrames(profile),
    areas: areas(profile),
    file: path.relative(REPO_ROOT, file),
  };
}
