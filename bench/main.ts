/**
 * `make bench`: runs the sections (each its own file under bench/sections/), then writes
 * bench/results/<date>.json, <date>.md and latest.md. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, REPO_ROOT, wants } from './lib/config';
import { machineBusyTicks, selfAndChildrenTicks, CLK_TCK } from './lib/procs';
import { missedTargets, renderMarkdown, section, type Results, type SectionResult } from './lib/report';
import { startSink } from './lib/sink';
import { median, round } from './lib/stats';
import { agentSelfSection } from './sections/agent-self';
import type { BenchContext } from './sections/context';
import { floorSection } from './sections/floor';
import { nginxSection } from './sections/nginx';
import { asyncioSection } from './sections/asyncio';
import { nodeLinkingSection } from './sections/node-linking';
import { javaLinkingSection } from './sections/java-linking';
import { profileAgent } from './sections/profile';
import { routesSection } from './sections/routes';
import { serverOverheadSection } from './sections/server-overhead';
import { tpFloorSection } from './sections/tp-floor';
import { captureFloorSection } from './sections/capture-floor';
import { untracedSection } from './sections/untraced';
import { userBudgetSection } from './sections/user-budget';

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function stamp(d: Date): string {
  return d.toISOString().slice(0, 16).replace(/:/g, '').replace('T', '-') + 'Z';
}

/** Runs a section; measures how much CPU other processes used meanwhile (noise). */
async function run(ctx: BenchContext, id: string, title: string, fn: () => Promise<SectionResult>): Promise<SectionResult> {
  const t0 = performance.now();
  const busy0 = machineBusyTicks();
  const ours0 = selfAndChildrenTicks();
  let s: SectionResult;
  try {
    s = await fn();
  } catch (err) {
    ctx.log(`${id}: FAILED: ${(err as Error).stack ?? err}`);
    s = section(id, title);
    s.error = (err as Error).message.split('\n')[0];
  }
  const wall = (performance.now() - t0) / 1000;
  const other = (machineBusyTicks() - busy0 - (selfAndChildrenTicks() - ours0)) / CLK_TCK;
  s.backgroundCores = Math.max(0, other / wall);
  s.seconds = wall;
  return s;
}

function commentary(r: Results): string[] {
  const out: string[] = [];
  const get = (id: string) => r.sections.flatMap((s) => s.figures).find((f) => f.id === id);
  const missed = new Set(missedTargets(r).map((m) => m.figure.id));
  const agent = r.sections.find((s) => s.id === 'agent');
  if ((missed.has('agent.rss_steady') || missed.has('agent.rss_peak')) && agent?.raw.rssByMapping) {
    const m = agent.raw.rssByMapping as Array<{ mapping: string; rssKb: number }>;
    out.push(`RSS is dominated by: ${m.slice(0, 3).map((x) => `${x.mapping} (${round(x.rssKb / 1024)} MB)`).join(', ')}.`);
  }
  if (r.profile && ([...missed].some((id) => id.includes('cpu_per_span')))) {
    out.push(`Agent CPU by area (profile): ${r.profile.areas.slice(0, 5).map((a) => `${a.area} ${round(a.selfPct)}%`).join(', ')}; top frames: ${r.profile.topFrames.slice(0, 4).map((t) => `\`${t.frame}\` ${round(t.selfPct)}%`).join(', ')}.`);
  }
  const floor = get('go.uprobe_floor');
  for (const p99 of [get('go.p99_added')]) {
    if (floor?.value && p99?.value !== null && p99?.value !== undefined && p99.value > 0) {
      out.push(`${p99.label}: ${round(p99.value)} us against a uprobe floor of ${round(floor.value)} us per request (${round(p99.value / floor.value, 2)}x).`);
    }
  }
  const kernelHit = get('floor.kernel_per_hit');
  for (const [id, what] of [['go', 'Go throughput'], ['gochain', 'Go + downstream throughput']] as const) {
    const tput = get(`${id}.throughput_ratio`);
    const perReq = get(`${id}.uprobe_floor`);
    const raw = r.sections.find((s) => s.id === id)?.raw as { hits?: { hitsPerRequest: number; bpfUsPerRequest: number; allPrograms: Array<{ name: string; runs: number; ns: number }> }; rounds?: { without: Array<{ sat: { rps: number } }> } } | undefined;
    if (!missed.has(`${id}.throughput_ratio`) || !perReq?.value || !raw?.hits || !raw.rounds) continue;
    const heaviest = [...raw.hits.allPrograms].sort((a, b) => b.ns - a.ns)[0];
    const baseUs = 1e6 / median(raw.rounds.without.map((x) => x.sat.rps));
    out.push(
      `${what} (${round(tput?.value ?? NaN)}x): per request the traced server pays ~${round(perReq.value)} us in uprobe hits (${round(raw.hits.hitsPerRequest, 3)} hits x the measured per-hit cost)` +
        (kernelHit?.value ? ` — a bare tracefs uprobe at the same points costs ${round(kernelHit.value)} us/hit, so this is the kernel's trap on this machine, not the agent —` : '') +
        ` plus ~${round(raw.hits.bpfUsPerRequest)} us inside the agent's BPF programs (BPF statistics; the most time: ${heaviest?.name}, ${round((heaviest?.ns ?? 0) / (heaviest?.runs || 1) / 1000)} us/hit), ` +
        `against ~${round(baseUs)} us of work per request without the agent${id === 'gochain' ? ' (front and downstream on one CPU)' : ''}. The agent's user space runs on the other CPU and is not in this ratio.`,
    );
  }
  // The service's capacity beside the saturated ratio (sections/capacity.ts): information, no target.
  const capacity: string[] = [];
  const v = (id: string, digits = 3) => {
    const f = get(id);
    return f?.value == null ? undefined : round(f.value, digits);
  };
  for (const id of ['go', 'gochain', 'sys', 'python']) {
    const cap = v(`${id}.capacity_ratio`);
    if (cap === undefined) continue;
    const off = v(`${id}.capacity_ratio_inject_off`);
    const low = v(`${id}.capacity_ratio_low`);
    const shared = v(`${id}.capacity_ratio_server_cpu`);
    const sharedSat = v(`${id}.throughput_ratio_server_cpu`);
    capacity.push(
      `${id} saturated ${v(`${id}.throughput_ratio`) ?? 'n/a'}, capacity ${cap}${off !== undefined ? ` (injection off ${off})` : ''}${low !== undefined ? `, at the low rate ${low}` : ''}` +
        `${shared !== undefined ? `, with the agent on the server's core ${shared} (saturated ${sharedSat ?? 'n/a'})` : ''}, agent ${v(`${id}.cpu_per_span`) ?? 'n/a'} us/span`,
    );
  }
  if (capacity.length > 0) {
    out.push(
      `Service capacity beside the saturated ratio (information, no target: issue 15's targets judge the saturated ratio, which also counts wrk starved by the agent's user space on its CPU): ${capacity.join('; ')}. ` +
        'Capacity = the server\'s CPU per request at half its saturated rate, without / with the agent (the agent on the other CPU); on the server\'s core = its CPU per request without / its and the agent\'s with the agent pinned to its CPU.',
    );
  }
  // Hits per request, per runtime (every section that counted them with BPF statistics).
  const perRuntime: string[] = [];
  for (const s of r.sections) {
    for (const f of s.figures) {
      const m = /^(.*)\.uprobe_hits$/.exec(f.id);
      if (!m || f.value === null) continue;
      const tp = s.figures.find((x) => x.id === `${m[1]}.tracepoint_hits`);
      const bpf = s.figures.find((x) => x.id === `${m[1]}.bpf_us_per_request`);
      perRuntime.push(`${m[1]} ${round(f.value, 3)} uprobe + ${round(tp?.value ?? NaN, 3)} tracepoint hits, ${round(bpf?.value ?? NaN)} us BPF`);
    }
  }
  if (perRuntime.length > 0) out.push(`Hits per request by runtime (BPF statistics, injection auto): ${perRuntime.join('; ')}.`);
  const untraced = get('untraced.ns_per_syscall');
  const untracedFloor = get('untraced.floor_ns_per_syscall');
  const untracedOwn = get('untraced.own_ns_per_syscall');
  if (missed.has('untraced.ns_per_syscall') && untraced?.value != null) {
    out.push(
      `Untraced processes: ${round(untraced.value)} ns per hooked syscall (CPU time)` +
        (untracedFloor?.value != null ? `; the tracepoint floor (empty programs on the same tracepoints) is ${round(untracedFloor.value)} ns of it${untracedFloor.value > 150 ? ', itself above the target: out of reach on this machine' : ''}` : '') +
        (untracedOwn?.value != null ? `; the agent's own part ${round(untracedOwn.value)} ns` : '') +
        '.',
    );
  }
  const ttfs = get('agent.ttfs');
  if (missed.has('agent.ttfs') && agent) {
    const gap = agent.notes.find((n) => n.startsWith('Start-up, median round'));
    out.push(`Time to first span (${round(ttfs?.value ?? NaN)} s) = start-up until the span tracers attached (pinned to one CPU, sk_msg loads after them, before the ready file) + the first record's ring poll + the idle batcher's 20 ms + export. ${gap ?? ''}`);
  }
  const bg = r.sections.map((s) => s.backgroundCores ?? 0);
  out.push(
    `Noise: other processes (concurrent test runs, VMs) used ${round(Math.min(...bg), 2)} .. ${round(Math.max(...bg), 2)} of the ${r.host.cpus} CPUs on average per section; ` +
      'rounds alternate without/with the agent so drift hits both arms, but single rounds can be far off: read the spread, and rerun on a quiet machine for tight numbers.',
  );
  return out;
}

/** `node main.js --render results.json`: re-renders <date>.md (and latest.md) from a results file. */
function render(file: string): void {
  const results = JSON.parse(readFileSync(file, 'utf8')) as Results;
  const md = `${renderMarkdown(results, commentary(results))}\n`;
  writeFileSync(file.replace(/\.json$/, '.md'), md);
  writeFileSync(path.join(path.dirname(file), 'latest.md'), md);
}

async function main(): Promise<void> {
  if (process.argv[2] === '--render' && process.argv[3]) return render(process.argv[3]);
  const config = loadConfig();
  const started = new Date();
  const t0 = performance.now();
  const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
  const sink = await startSink();
  const ctx: BenchContext = { config, sink, log };
  /** The measured agent's checkout (SPANBRIDGE_BENCH_AGENT_ROOT, else this one): dist/src/cli/main.js up 3. */
  const agentRoot = path.resolve(config.agentCli, '..', '..', '..', '..');
  const results: Results = {
    date: stamp(started),
    host: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      kernel: os.release(),
      node: process.version,
      go: sh('go', ['version']).replace(/^go version /, ''),
      wrk: sh('dpkg-query', ['-W', '-f', '${Version}', 'wrk']),
      commit: process.env.SPANBRIDGE_BENCH_COMMIT ?? sh('git', ['-C', agentRoot, 'rev-parse', '--short', 'HEAD']),
      uncommittedFiles: process.env.SPANBRIDGE_BENCH_COMMIT ? 0 : sh('git', ['-C', agentRoot, 'status', '--porcelain', '--', 'src', 'bpf', 'receiver']).split('\n').filter((l) => l && l !== 'unknown').length,
      ...(agentRoot !== REPO_ROOT ? { agentRoot, harnessCommit: sh('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']) } : {}),
      loadavgStart: readFileSync('/proc/loadavg', 'utf8').trim(),
    },
    config: { ...config, only: config.only.join(',') },
    sections: [],
  };
  log(`spanbridge bench: ${config.rounds} rounds x ${config.seconds} s, steps of ${config.stepSeconds} s`);
  try {
    if (wants(config, 'floor')) results.sections.push(await run(ctx, 'floor', 'Uprobe floor', () => floorSection(ctx)));
    if (wants(config, 'untraced')) results.sections.push(await run(ctx, 'untraced', 'Untraced processes', () => untracedSection(ctx)));
    if (wants(config, 'tpfloor')) results.sections.push(await run(ctx, 'tpfloor', 'Tracepoint dispatch floor', () => tpFloorSection(ctx, 'go')));
    if (wants(config, 'tpfloornode')) results.sections.push(await run(ctx, 'tpfloor_node', 'Tracepoint dispatch floor, Node', () => tpFloorSection(ctx, 'node')));
    if (wants(config, 'capfloor')) results.sections.push(await run(ctx, 'capfloor', 'Minimal capture vs the agent', () => captureFloorSection(ctx, 'go')));
    if (wants(config, 'capfloornode')) results.sections.push(await run(ctx, 'capfloor_node', 'Minimal capture vs the agent, Node', () => captureFloorSection(ctx, 'node')));
    if (wants(config, 'budget')) results.sections.push(await run(ctx, 'budget', 'User-space budget', () => userBudgetSection(ctx, 'go')));
    if (wants(config, 'budgetnode')) results.sections.push(await run(ctx, 'budget_node', 'User-space budget, Node', () => userBudgetSection(ctx, 'node')));
    if (wants(config, 'go')) results.sections.push(await run(ctx, 'go', 'Go net/http server', () => serverOverheadSection(ctx, 'go')));
    if (wants(config, 'gochain')) results.sections.push(await run(ctx, 'gochain', 'Go server calling one downstream', () => serverOverheadSection(ctx, 'gochain')));
    if (wants(config, 'sys')) results.sections.push(await run(ctx, 'sys', 'Node http server (syscall tracepoints)', () => serverOverheadSection(ctx, 'node')));
    if (wants(config, 'python')) results.sections.push(await run(ctx, 'python', 'Python threaded http.server (syscall tracepoints)', () => serverOverheadSection(ctx, 'python')));
    if (wants(config, 'nginx')) results.sections.push(await run(ctx, 'nginx', 'nginx reverse proxy', () => nginxSection(ctx)));
    if (wants(config, 'asyncio')) results.sections.push(await run(ctx, 'asyncio', 'Python asyncio linking', () => asyncioSection(ctx)));
    if (wants(config, 'nodelink')) results.sections.push(await run(ctx, 'nodelink', 'Node.js linking', () => nodeLinkingSection(ctx)));
    if (wants(config, 'javalink')) results.sections.push(await run(ctx, 'javalink', 'Java linking', () => javaLinkingSection(ctx)));
    if (wants(config, 'agent')) results.sections.push(await run(ctx, 'agent', 'The agent itself', () => agentSelfSection(ctx)));
    if (wants(config, 'routes')) results.sections.push(await run(ctx, 'routes', 'Route stage', () => routesSection(ctx)));
    if ((wants(config, 'profile') && missedTargets(results).length > 0) || config.only.includes('profile')) {
      try {
        await profileAgent(ctx, results);
      } catch (err) {
        log(`profile failed: ${(err as Error).message}`);
      }
    }
  } finally {
    await sink.close();
  }
  results.host.loadavgEnd = readFileSync('/proc/loadavg', 'utf8').trim();
  results.durationSeconds = (performance.now() - t0) / 1000;
  mkdirSync(config.outDir, { recursive: true });
  const base = path.join(config.outDir, results.date);
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(`${base}.md`, `${renderMarkdown(results, commentary(results))}\n`);
  copyFileSync(`${base}.md`, path.join(config.outDir, 'latest.md'));
  log(`wrote ${base}.json, ${base}.md and latest.md in ${Math.round(results.durationSeconds)} s`);
  if (results.sections.some((s) => s.error)) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
