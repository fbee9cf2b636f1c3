/**
 * Child processes for integration tests: a traced service and the agent itself (the built CLI in
 * dist/, as a user runs it), with their output captured and cleanup guaranteed. Capture, stop and
 * polling are test/helpers/child-process.ts (shared with the bench harness).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { captureOutput, freePort, waitFor, type Running } from '../../helpers/child-process';

export { waitFor, waitForPort, type Running } from '../../helpers/child-process';

export const REPO_ROOT = path.resolve(__dirname, '../../..');
export const AGENT_CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

export function startProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Running {
  return captureOutput(spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

export interface AgentProcess extends Running {
  /** Spans printed with --print-spans json so far. */
  spans(): PrintedSpanLine[];
  /** The --ready-file the agent created. */
  readonly readyFile: string;
  /** Its Prometheus port, unless started with --prometheus-port off. */
  readonly metricsPort: number | undefined;
  /** The /metrics text now (kernel counters are read at each scrape). */
  metrics(): Promise<string>;
  /** One series of /metrics now (0 when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** The kernel-side counters by reason now (spanbridge_kernel_drops on /metrics). */
  kernelCounters(): Promise<Record<string, number>>;
  /** What the agent traces now (/api/processes of its web API). */
  processes(): Promise<TracedProcess[]>;
}

export interface PrintedSpanLine {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: { code: string; message?: string };
  attributes: Record<string, string | number | boolean>;
  resource: Record<string, string | number | boolean>;
  traceFlags: number;
  traceState: string;
}

/** One process of the web API's /api/processes, as a client sees it. */
export interface TracedProcess {
  pid: number;
  service: string;
  exe: string;
  /** The selector that matched it: "exe NAME", "pid N", "container ID", "port N". */
  reason: string;
  tracer: string;
  /** uprobe links; null when its probes are shared (syscall tracepoints). */
  probes: number | null;
  notes: string[];
  routes: string;
  injection: 'go_memory' | 'sk_msg' | 'none';
  connectionsTakenOver: number;
  /** Go processes: where their server spans come from (go.server_path); null for other runtimes. */
  serverSpans: 'uprobes' | 'syscall' | null;
  /** Go processes: where their client spans come from (go.client_path); null for other runtimes. */
  clientSpans: 'uprobes' | 'syscall' | null;
}

/** The value of one series in Prometheus text (labels matched exactly; 0 when absent). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? '').match(/\w+="(?:[^"\\]|\\.)*"/g) ?? [];
    if (got.sort().join(',') === want) return Number(m[3]);
  }
  return 0;
}

/** The sum over every series of one metric in Prometheus text (0 when absent). */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{.*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

/** Every series of one metric in Prometheus text, keyed by the value of `label`. */
export function metricByLabel(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^${name}\\{(?:.*,)?${label}="([^"]*)"(?:,.*)?\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) out[m[1]] = Number(m[2]);
  return out;
}

/**
 * GET on the agent's loopback port with a connection of its own, closed after the answer: a
 * kept-alive one would hold an fd in the agent, which tests that count its fds would see.
 */
function getClosing(port: number, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false, headers: { connection: 'close' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${urlPath}: ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

/**
 * Starts `spanbridge run ARGS --print-spans json --ready-file F` and waits for readiness. Unless
 * ARGS choose them, the agent serves /metrics and the web API on free loopback ports, so that
 * tests assert through the product's interfaces (metrics(), kernelCounters(), processes()).
 */
/** `cpus`: the agent runs pinned to these CPUs (taskset -c, e.g. '0'), as the bench pins it. */
export async function startAgent(args: string[], env: NodeJS.ProcessEnv = {}, readyTimeoutMs = 30_000, options: { cpus?: string } = {}): Promise<AgentProcess> {
  if (!existsSync(AGENT_CLI)) throw new Error(`${AGENT_CLI} is missing: run \`make ts\` (make test does)`);
  const ready = path.join(mkdtempSync(path.join(os.tmpdir(), 'spanbridge-agent-')), 'ready');
  const extra: string[] = [];
  const portOf = (flag: string): number | 'off' | undefined => {
    const i = args.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
    if (i < 0) return undefined;
    const v = args[i].includes('=') ? args[i].slice(flag.length + 1) : args[i + 1];
    return v === 'off' ? 'off' : Number(v);
  };
  let metricsPort = portOf('--prometheus-port');
  if (metricsPort === undefined) {
    metricsPort = await freePort();
    extra.push('--prometheus-port', String(metricsPort));
  }
  // A --config file may name the web port itself.
  const config = args.includes('--config') ? readFileSync(args[args.indexOf('--config') + 1], 'utf8') : '';
  const configWebPort = /^web:\s*\n\s+port:\s*(\d+)/m.exec(config)?.[1];
  let webPort = portOf('--web-port') ?? (configWebPort ? Number(configWebPort) : undefined);
  if (webPort === undefined) {
    webPort = await freePort();
    extra.push('--web-port', String(webPort));
  }
  const argv = [AGENT_CLI, 'run', ...args, ...extra, '--print-spans', 'json', '--ready-file', ready];
  // taskset execs node: the same pid.
  const r = options.cpus === undefined ? startProcess(process.execPath, argv, env) : startProcess('taskset', ['-c', options.cpus, process.execPath, ...argv], env);
  try {
    await waitFor('agent ready file', async () => {
      if (r.proc.exitCode !== null) throw new Error(`agent exited with ${r.proc.exitCode}:\n${r.stderr()}`);
      return existsSync(ready);
    }, readyTimeoutMs);
  } catch (err) {
    await r.stop('SIGKILL');
    throw new Error(`${(err as Error).message}\nagent stderr:\n${r.stderr()}`);
  }
  const get = async (port: number | 'off' | undefined, what: string, urlPath: string): Promise<string> => {
    if (typeof port !== 'number') throw new Error(`this agent serves no ${what} (started with it off)`);
    return getClosing(port, urlPath);
  };
  const metrics = (): Promise<string> => get(metricsPort, '/metrics', '/metrics');
  return {
    ...r,
    readyFile: ready,
    metricsPort: typeof metricsPort === 'number' ? metricsPort : undefined,
    spans: () =>
      r
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as PrintedSpanLine),
    metrics,
    metric: async (name, labels) => metricValue(await metrics(), name, labels),
    kernelCounters: async () => metricByLabel(await metrics(), 'spanbridge_kernel_drops', 'reason'),
    processes: async () => (JSON.parse(await get(webPort, 'web API', '/api/processes')) as { processes: TracedProcess[] }).processes,
  };
}

/** Waits until the agent's /api/processes lists `pid`, and returns its row. */
export async function waitForTraced(agent: AgentProcess, pid: number, timeoutMs = 30_000): Promise<TracedProcess> {
  return waitFor(`pid ${pid} traced (/api/processes)`, async () => (await agent.processes()).find((p) => p.pid === pid), timeoutMs, 250);
}

/** Waits until the agent's /api/processes no longer lists `pid` (it exited, or was let go). */
export async function waitForReleased(agent: AgentProcess, pid: number, timeoutMs = 30_000): Promise<void> {
  await waitFor(`pid ${pid} released (/api/processes)`, async () => !(await agent.processes()).some((p) => p.pid === pid), timeoutMs, 250);
}
