/**
 * Child processes pinned to a CPU (taskset), and what /proc says about a process: CPU ticks,
 * resident memory, resident memory by mapping, and the machine's busy time.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
}

/** Spawns `cmd args` pinned to `cpu` (all its threads), stdout/stderr captured. */
export function spawnPinned(cpu: number, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Child {
  const startedAt = performance.now();
  const proc = spawn('taskset', ['-c', String(cpu), cmd, ...args], {
    env: { ...process.env, ...env },
    cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 1 << 20) err = err.slice(-(1 << 19));
  });
  // 'close', not 'exit': only then has all of stdout/stderr been read (the agent's stop lines).
  const exited = new Promise<number | string>((resolve) => proc.on('close', (code, sig) => resolve(code ?? String(sig))));
  return {
    proc,
    pid: proc.pid ?? -1,
    startedAt,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(t);
      }
      return exited;
    },
  };
}

/** Runs a pinned command to completion; resolves with its stdout (rejects on a non-zero exit). */
export async function runPinned(cpu: number, cmd: string, args: string[]): Promise<string> {
  const c = spawnPinned(cpu, cmd, args);
  c.proc.stdin?.end();
  const code = await c.exited;
  if (code !== 0) throw new Error(`${cmd} exited with ${code}: ${c.stderr().slice(-2000)}`);
  return c.stdout();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, stepMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export function waitForPort(port: number, timeoutMs = 20_000): Promise<boolean> {
  return waitFor(`port ${port}`, () =>
    new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    }), timeoutMs, 50);
}

/** utime + stime of a process, in clock ticks. */
export function cpuTicks(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after "pid (comm) ": state=0 ... utime=11, stime=12, cutime=13, cstime=14
  return Number(f[11]) + Number(f[12]);
}

/** The harness's own CPU plus that of every child it has reaped, in clock ticks. */
export function selfAndChildrenTicks(): number {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(x[11]) + Number(x[12]) + Number(x[13]) + Number(x[14]);
}

/** Busy clock ticks of the whole machine (all CPUs): everything but idle and iowait. */
export function machineBusyTicks(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

export interface Memory {
  rssKb: number;
  hwmKb: number;
}

export function memory(pid: number): Memory {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

/** Resident kB by mapping name (heap, anon, file path, bpf ring buffers...), largest first. */
export function rssByMapping(pid: number, top = 6): Array<{ mapping: string; rssKb: number }> {
  const by = new Map<string, number>();
  let current = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1].trim();
      current = name === '' ? '[anon]' : name.replace(/^.*\/node_modules\//, 'node_modules/');
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) by.set(current, (by.get(current) ?? 0) + Number(rss[1]));
  }
  return [...by.entries()].map(([mapping, rssKb]) => ({ mapping, rssKb })).sort((a, b) => b.rssKb - a.rssKb).slice(0, top);
}

export function listFds(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
}
