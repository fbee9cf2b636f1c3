/**
 * Child processes pinned to a CPU (taskset), and what /proc says about a process: CPU ticks,
 * resident memory, resident memory by mapping, and the machine's busy time.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { captureOutput, type Running } from '../../test/helpers/child-process';

export { freePort, waitFor, waitForPort } from '../../test/helpers/child-process';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** A pinned child: output captured and stop() as in the tests (test/helpers/child-process.ts). */
export interface Child extends Running {
  readonly startedAt: number;
}

/** Spawns `cmd args` pinned to `cpu` (all its threads), stdout/stderr captured. */
export function spawnPinned(cpu: number, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Child {
  const startedAt = performance.now();
  const proc = spawn('taskset', ['-c', String(cpu), cmd, ...args], {
    env: { ...process.env, ...env },
    cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return { ...captureOutput(proc), startedAt };
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

/** Busy and total clock ticks of one CPU (busy: everything but idle and iowait). */
export function cpuBusy(cpu: number): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) return { busy: 0, total: 0 };
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((a, x) => a + x, 0);
  return { busy: total - v[3] - v[4], total };
}

/** The busy share of one CPU between two cpuBusy() readings of it. */
export function busyShareSince(before: { busy: number; total: number }, cpu: number): number {
  const now = cpuBusy(cpu);
  return (now.busy - before.busy) / Math.max(1, now.total - before.total);
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
