/**
 * The agent itself (item 4): the highest span rate sustained for a step with zero ring-buffer loss
 * (rate stepped up on the Go server, ending saturated), RSS steady and peak over those steps (the
 * agent also inspects a 100+ MiB Go binary at attach, issue 15's peak target), and
 * the time from starting the agent to the first span arriving at an OTLP endpoint.
 */
import { statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startAgent, type Agent } from '../lib/agent';
import { loadgen, wrk } from '../lib/load';
import { CLK_TCK, freePort, memory, rssByMapping, sleep, spawnPinned, waitForPort, type Child } from '../lib/procs';
import { fig, section, type SectionResult } from '../lib/report';
import { median, round, spread } from '../lib/stats';
import { startServer, type BenchContext, type Server } from './context';

const DRAIN_MS = 1600;
/** Steps as fractions of the traced server's saturated rate (with the agent), then saturation. */
const FRACTIONS = [0.25, 0.5, 0.75];

interface Step {
  offered: string;
  requests: number;
  seconds: number;
  spans: number;
  spanRate: number;
  ringbufLost: number;
  spansDropped: number;
  cpuUsPerSpan: number;
  ok: boolean;
}

async function step(agent: Agent, offered: string, load: () => Promise<{ requests: number; seconds: number }>): Promise<Step> {
  const m0 = await agent.metrics();
  const t0 = agent.cpuTicks();
  const r = await load();
  await sleep(DRAIN_MS);
  const m1 = await agent.metrics();
  const spans = m1.total('spanbridge_spans_exported_total') - m0.total('spanbridge_spans_exported_total');
  const ringbufLost = m1.ringbufLost() - m0.ringbufLost();
  const spansDropped = m1.total('spanbridge_spans_dropped_total') - m0.total('spanbridge_spans_dropped_total');
  const cpuUsPerSpan = (((agent.cpuTicks() - t0) / CLK_TCK) * 1e6) / spans;
  return { offered, requests: r.requests, seconds: r.seconds, spans, spanRate: spans / r.seconds, ringbufLost, spansDropped, cpuUsPerSpan, ok: ringbufLost === 0 && spansDropped === 0 };
}

async function capacity(ctx: BenchContext, s: SectionResult, server: Server, big: BigBinary): Promise<void> {
  const { config } = ctx;
  // The agent also selects an idle server built as a 100+ MiB binary: inspecting it is part of the peak.
  const agent = await startAgent(config, { pids: [server.child.pid, big.child.pid], otlpEndpoint: ctx.sink.endpoint });
  // The traced server's own limit sets the steps: its saturated rate with the agent attached.
  const sat = (await wrk(config, server.url, 3)).rps;
  s.raw.saturatedWithAgentRps = sat;
  const samples: number[] = [];
  const idleRssKb = memory(agent.pid).rssKb;
  const sampler = setInterval(() => {
    try {
      samples.push(memory(agent.pid).rssKb);
    } catch {
      // exited
    }
  }, 1000);
  const steps: Step[] = [];
  try {
    for (const f of FRACTIONS) {
      const rate = Math.round(sat * f);
      ctx.log(`agent: step ${rate} req/s for ${config.stepSeconds} s`);
      const st = await step(agent, `${rate} req/s`, () => loadgen(config, { addr: server.addr, path: server.path, rate, seconds: config.stepSeconds }));
      steps.push(st);
      if (!st.ok) break;
    }
    if (steps.every((x) => x.ok)) {
      ctx.log(`agent: step saturated (wrk) for ${config.stepSeconds} s`);
      steps.push(await step(agent, 'saturated (wrk)', async () => {
        const w = await wrk(config, server.url, config.stepSeconds);
        return { requests: w.requests, seconds: config.stepSeconds };
      }));
    }
    clearInterval(sampler);
    const mem = memory(agent.pid);
    s.raw.rssByMapping = rssByMapping(agent.pid);
    s.raw.steps = steps;
    s.raw.rssSamplesKb = samples;
    const passed = steps.filter((x) => x.ok);
    const best = passed.reduce<Step | undefined>((b, x) => (!b || x.spanRate > b.spanRate ? x : b), undefined);
    const lastFailed = steps.find((x) => !x.ok);
    s.figures.push(fig({
      id: 'agent.max_rate', label: `Highest span rate sustained ${config.stepSeconds} s with zero loss`, value: best?.spanRate ?? 0, unit: 'spans/s', rounds: 1,
      detail: `steps: ${steps.map((x) => `${x.offered} -> ${round(x.spanRate)} spans/s (${round(x.spans / x.requests, 4)} spans/request), lost ${x.ringbufLost} ring / ${x.spansDropped} queue${x.ok ? '' : ' (FAILED)'}`).join('; ')}` +
        (lastFailed ? '' : `; no loss at any step: the limit is the traced single-core server (${round(sat)} req/s saturated with the agent), not the agent`),
    }));
    const steady = samples.slice(Math.floor(samples.length / 4));
    const st = spread(steady.map((k) => k / 1024));
    s.figures.push(
      fig({ id: 'agent.rss_steady', label: 'Agent RSS, steady under load', value: st.median, unit: 'MB', rounds: steady.length, spread: st, target: { text: '<= 100 MB', met: st.median <= 100 }, detail: `VmRSS sampled every 1 s over the steps (first quarter skipped); idle after start: ${round(idleRssKb / 1024)} MB` }),
      fig({ id: 'agent.rss_peak', label: `Agent RSS, peak (inspecting a ${round(big.bytes / 1e6)} MB Go binary included)`, value: mem.hwmKb / 1024, unit: 'MB', rounds: 1, target: { text: '<= 120 MB', met: mem.hwmKb / 1024 <= 120 }, detail: `VmHWM at the end of the steps; the agent selected the Go server under load and, idle, the same server built with 96 MiB of embedded data (${round(big.bytes / 1e6)} MB file, inspected at attach)` }),
    );
    const cpu = passed.map((x) => x.cpuUsPerSpan);
    if (cpu.length > 0) s.notes.push(`Agent CPU per span by step: ${steps.map((x) => `${round(x.cpuUsPerSpan)} us`).join(', ')} (median ${round(median(cpu))} us).`);
    s.notes.push(`Largest resident mappings at the end: ${(s.raw.rssByMapping as Array<{ mapping: string; rssKb: number }>).map((m) => `${m.mapping} ${round(m.rssKb / 1024)} MB`).join(', ')}.`);
  } finally {
    clearInterval(sampler);
    await agent.shutdown();
  }
}

/** Fires a request at the server every 20 ms until stopped. */
function pinger(server: Server): () => void {
  const agentHttp = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const t = setInterval(() => {
    http.get(server.url, { agent: agentHttp }, (r) => r.resume()).on('error', () => undefined);
  }, 20);
  return () => {
    clearInterval(t);
    agentHttp.destroy();
  };
}

/**
 * Where start-up time goes, from the agent's own timestamped log lines: the time before its first
 * line (Node start-up, module loading) and the largest gaps between lines, each named by the line
 * that ends it. Pure.
 */
export function startupGaps(stderr: string, spawnWallMs: number, top = 3): Array<{ ms: number; before: string }> {
  const lines = stderr
    .split('\n')
    .map((l) => /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z)\s+\S+\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ at: Date.parse(m[1]), text: m[2].slice(0, 70) }));
  if (lines.length === 0) return [];
  const gaps = [{ ms: lines[0].at - spawnWallMs, before: `(first log line) ${lines[0].text}` }];
  for (let i = 1; i < lines.length; i++) gaps.push({ ms: lines[i].at - lines[i - 1].at, before: lines[i].text });
  return gaps.sort((a, b) => b.ms - a.ms).slice(0, top);
}

async function timeToFirstSpan(ctx: BenchContext, s: SectionResult, server: Server): Promise<void> {
  const ttfs: number[] = [];
  const ready: number[] = [];
  const gaps: Array<Array<{ ms: number; before: string }>> = [];
  for (let i = 0; i < ctx.config.rounds; i++) {
    ctx.log(`agent: time to first span, round ${i + 1}/${ctx.config.rounds}`);
    ctx.sink.reset();
    const stopPing = pinger(server);
    const t0 = performance.now();
    const wall0 = Date.now();
    const agent = await startAgent(ctx.config, { pids: [server.child.pid], otlpEndpoint: ctx.sink.endpoint, noWait: true });
    try {
      const deadline = Date.now() + 30_000;
      while (ctx.sink.firstTracesAt() === undefined && Date.now() < deadline && agent.proc.exitCode === null) await sleep(5);
      const first = ctx.sink.firstTracesAt();
      if (first !== undefined) ttfs.push(first - t0);
      // On one CPU the ready file follows the first span (sk_msg loads after the span tracers).
      const readyBy = Date.now() + 10_000;
      while (!Number.isFinite(agent.readyAt) && Date.now() < readyBy && agent.proc.exitCode === null) await sleep(5);
      if (Number.isFinite(agent.readyAt)) ready.push(agent.readyAt - t0);
      const readyLog = agent.stderr().split('\n').filter((l) => !l.includes('SIGTERM')).join('\n');
      gaps.push(startupGaps(readyLog, wall0));
    } finally {
      stopPing();
      await agent.shutdown();
    }
  }
  s.raw.ttfsMs = ttfs;
  s.raw.readyMs = ready;
  s.raw.startupGaps = gaps;
  if (ttfs.length === 0) {
    s.figures.push(fig({ id: 'agent.ttfs', label: 'Agent start to first exported span', value: null, unavailable: 'no span arrived within 30 s', unit: 's', rounds: 0, target: { text: '<= 1.5 s', met: null } }));
    return;
  }
  const t = spread(ttfs.map((ms) => ms / 1000));
  const r = ready.length > 0 ? spread(ready.map((ms) => ms / 1000)) : undefined;
  s.figures.push(fig({
    id: 'agent.ttfs', label: 'Agent start to first exported span', value: t.median, unit: 's', rounds: t.n, spread: t, target: { text: '<= 1.5 s', met: t.median <= 1.5 },
    detail: `spawn of the agent -> first OTLP traces request at a local sink, a request every 20 ms meanwhile; ready file after ${r ? round(r.median) : '?'} s (median: pinned to one CPU, the agent attaches and spans flow once the syscall and Go tracers loaded, and sk_msg loads after them, before the ready file); after the attach, the first record's ring poll (<= 50 ms), the idle batcher's 20 ms and the export`,
  }));
  // The breakdown of the round with the median time.
  const order = ttfs.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const mid = gaps[order[Math.floor(order.length / 2)][1]] ?? [];
  if (mid.length > 0) s.notes.push(`Start-up, median round: largest gaps in the agent's log: ${mid.map((g) => `${round(g.ms)} ms before "${g.before}"`).join('; ')}.`);
}

interface BigBinary {
  readonly child: Child;
  readonly bytes: number;
}

/** The Go test server built as a 100+ MiB binary (bench/run.sh), idle. */
async function startBigBinary(ctx: BenchContext): Promise<BigBinary> {
  const file = path.join(ctx.config.binDir, 'gobig');
  const port = await freePort();
  const child = spawnPinned(ctx.config.serverCpu, file, [], { PORT: String(port) });
  await waitForPort(port, 20_000, 50);
  return { child, bytes: statSync(file).size };
}

/** The inspection's own share: an agent that selects only the big binary, its peak once ready. */
async function bigBinaryAlone(ctx: BenchContext, s: SectionResult, big: BigBinary): Promise<void> {
  const agent = await startAgent(ctx.config, { pids: [big.child.pid], otlpEndpoint: ctx.sink.endpoint });
  try {
    await sleep(1000);
    const mem = memory(agent.pid);
    s.figures.push(fig({
      id: 'agent.rss_peak_big_only', label: `Agent RSS, peak, selecting only the ${round(big.bytes / 1e6)} MB Go binary (idle)`, value: mem.hwmKb / 1024, unit: 'MB', rounds: 1,
      detail: 'VmHWM 1 s after ready: start-up plus the inspection of that binary, no traffic; the share of the peak above that the inspection accounts for',
    }));
  } finally {
    await agent.shutdown();
  }
}

export async function agentSelfSection(ctx: BenchContext): Promise<SectionResult> {
  const s = section('agent', 'The agent itself (Go server traffic)');
  const server = await startServer(ctx, 'go');
  const big = await startBigBinary(ctx);
  try {
    await capacity(ctx, s, server, big);
    await bigBinaryAlone(ctx, s, big);
    await timeToFirstSpan(ctx, s, server);
    // For scale: what a bare Node.js process of this version holds.
    const bare = spawnPinned(ctx.config.loadCpu, process.execPath, ['-e', 'setTimeout(() => {}, 5000)']);
    await sleep(700);
    s.notes.push(`For scale: a bare \`node -e\` process (Node ${process.version}) is resident at ${round(memory(bare.pid).rssKb / 1024)} MB.`);
    await bare.stop('SIGKILL');
  } finally {
    await big.child.stop();
    await server.child.stop();
  }
  return s;
}
