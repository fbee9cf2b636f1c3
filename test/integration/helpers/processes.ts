/**
 * Child processes for integration tests: a traced service and the agent itself (the built CLI in
 * dist/, as a user runs it), with their output captured and cleanup guaranteed. Capture, stop and
 * polling are test/helpers/child-process.ts (shared with the bench harness).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { captureOutput, waitFor, type Running } from '../../helpers/child-process';

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
    readyFile: ready,
    spans: () =>
      r
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as PrintedSpanLine),
  };
}
