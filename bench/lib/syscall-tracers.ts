/**
 * Other syscall tracers on the machine: BPF programs of other processes attached to a syscall
 * tracepoint (syscalls:sys_enter_* / sys_exit_*, or raw sys_enter / sys_exit), from
 * `bpftool perf show`. While any is attached, every syscall of every process takes the kernel's
 * syscall-tracing slow path, so a run "without" already pays part of what the floor or the agent
 * would add: such runs measure an increment, not the whole cost. Other engineers' tests start and
 * stop agents on this machine, so each run says whether one was there.
 */
import { execFileSync } from 'node:child_process';

export interface PerfLink {
  pid: number;
  tracepoint?: string;
}

/** Pids (other than `own`) with a BPF program on a syscall tracepoint now; null if bpftool failed. */
export function otherSyscallTracers(own: readonly number[]): number[] | null {
  let list: PerfLink[];
  try {
    list = JSON.parse(execFileSync('bpftool', ['perf', 'show', '--json'], { encoding: 'utf8', maxBuffer: 16 << 20, stdio: ['ignore', 'pipe', 'ignore'] })) as PerfLink[];
  } catch {
    return null;
  }
  return syscallTracerPids(list, own);
}

/** The pids in `bpftool perf show --json` output with a program on a syscall tracepoint, but `own`. */
export function syscallTracerPids(list: readonly PerfLink[], own: readonly number[]): number[] {
  const pids = new Set<number>();
  for (const l of list) {
    if (own.includes(l.pid) || !l.tracepoint) continue;
    if (/^sys_(enter|exit)(_|$)/.test(l.tracepoint)) pids.add(l.pid);
  }
  return [...pids].sort((a, b) => a - b);
}
