/**
 * Child processes for integration tests: a traced service and the agent itself (the built CLI in
 * dist/, as a user runs it), with their output captured and cleanup guaranteed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '../../..');
export const AGENT_CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

export interface Running {
  readonly proc: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<number | NodeJS.Signals>;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | NodeJS.Signals>;
}

export function startProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 1 << 20) err = err.slice(-(1 << 19));
  });
  // 'close', not 'exit': only then has all of the process's stdout/stderr been read.
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    proc.on('close', (code, signal) => resolve(code ?? (signal as NodeJS.Signals)));
  });
  return {
    proc,
    pid: proc.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
        const r = await exited;
        clearTimeout(t);
        return r;
      }
      return exited;
    },
  };
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    `port ${port}`,
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
    timeoutMs,
  );
}

export interface AgentProcess extends Running {
  /** Spans printed with --print-spans json so far. */
  spans(): PrintedSpanLine[];
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

/** Parses the agent's "kernel counters: a=1 b=2" stop line. */
export function kernelCounters(stderr: string): Record<string, number> {
  const line = stderr.split('\n').find((l) => l.includes('kernel counters:'));
  const out: Record<string, number> = {};
  for (const m of (line ?? '').matchAll(/(\w+)=(\d+)/g)) out[m[1]] = Number(m[2]);
  return out;
}

/** Starts `spanbridge run ARGS --print-spans json --ready-file F` and waits for readiness. */
export async function startAgent(args: string[], env: NodeJS.ProcessEnv = {}, readyTimeoutMs = 30_000): Promise<AgentProcess> {
  if (!existsSync(AGENT_CLI)) throw new Error(`${AGENT_CLI} is missing: run \`make ts\` (make test does)`);
  const ready = path.join(mkdtempSync(path.join(os.tmpdir(), 'spanbridge-agent-')), 'ready');
  // Tests run several agents; the default Prometheus port (9400) is only opened when asked for.
  const prom = args.some((a) => a.startsWith('--prometheus-port')) ? [] : ['--prometheus-port', 'off'];
  const r = startProcess(process.execPath, [AGENT_CLI, 'run', ...args, ...prom, '--print-spans', 'json', '--ready-file', ready], env);
  try {
    await waitFor('agent ready file', async () => {
      if (r.proc.exitCode !== null) throw new Error(`agent exited with ${r.proc.exitCode}:\n${r.stderr()}`);
      return existsSync(ready);
    }, readyTimeoutMs);
  } catch (err) {
    await r.stop('SIGKILL');
    throw new Error(`${(err as Error).message}\nagent stderr:\n${r.stderr()}`);
  }
  return {
    ...r,
    spans: () =>
      r
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as PrintedSpanLine),
  };
}
