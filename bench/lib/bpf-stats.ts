/**
 * How often the agent's BPF programs ran, and for how long: the kernel's BPF statistics
 * (sysctl kernel.bpf_stats_enabled, switched on only around a counting step and restored after),
 * read from the fdinfo of the agent's own program fds, so programs of other agents on the machine
 * are never counted.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { listFds } from './procs';

const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

export interface ProgStats {
  readonly id: number;
  /** 2 = kprobe (uprobes), 5 = tracepoint, 17 = raw tracepoint, 26 = tracing. */
  readonly type: number;
  readonly name: string;
  readonly runCnt: number;
  readonly runTimeNs: number;
}

/** Runs fn with BPF run-time statistics on; restores the previous setting whatever happens. */
export async function withBpfStats<T>(fn: () => Promise<T>): Promise<T> {
  const before = readFileSync(SYSCTL, 'utf8').trim();
  writeFileSync(SYSCTL, '1');
  try {
    return await fn();
  } finally {
    writeFileSync(SYSCTL, before);
  }
}

function progNames(): Map<number, string> {
  const out = new Map<number, string>();
  try {
    const list = JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 })) as Array<{ id: number; name?: string }>;
    for (const p of list) out.set(p.id, p.name ?? `prog${p.id}`);
  } catch {
    // names are cosmetic
  }
  return out;
}

export function agentProgStats(pid: number): ProgStats[] {
  const byId = new Map<number, Omit<ProgStats, 'name'>>();
  for (const fd of listFds(pid)) {
    let info: string;
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    if (!/^run_cnt:/m.test(info)) continue;
    const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(info)?.[1]);
    const id = field('prog_id');
    byId.set(id, { id, type: field('prog_type'), runCnt: field('run_cnt'), runTimeNs: field('run_time_ns') });
  }
  const names = progNames();
  return [...byId.values()].map((p) => ({ ...p, name: names.get(p.id) ?? `prog${p.id}` }));
}

export interface ProgDelta {
  readonly name: string;
  readonly type: number;
  readonly runs: number;
  readonly ns: number;
}

export function progDelta(before: ProgStats[], after: ProgStats[]): ProgDelta[] {
  const b = new Map(before.map((p) => [p.id, p]));
  return after
    .map((p) => ({ name: p.name, type: p.type, runs: p.runCnt - (b.get(p.id)?.runCnt ?? 0), ns: p.runTimeNs - (b.get(p.id)?.runTimeNs ?? 0) }))
    .filter((d) => d.runs > 0);
}

export const isUprobeProg = (d: { type: number }) => d.type === 2;
