/** The untraced section's test for other syscall tracers on the machine (bpftool perf show). */
import { syscallTracerPids } from '../../../bench/lib/syscall-tracers';

describe('syscallTracerPids', () => {
  it('names the other processes with a program on a syscall tracepoint, typed or raw', () => {
    const list = [
      { pid: 10, tracepoint: 'sys_exit_read' },
      { pid: 10, tracepoint: 'sys_enter_write' },
      { pid: 11, tracepoint: 'sched_process_exec' }, // not a syscall tracepoint
      { pid: 12, tracepoint: 'sys_enter' }, // raw_syscalls
      { pid: 13 }, // a kprobe or uprobe: no tracepoint
      { pid: 99, tracepoint: 'sys_exit_write' }, // our own
      { pid: 14, tracepoint: 'sys_entering' },
    ];
    expect(syscallTracerPids(list, [99])).toEqual([10, 12]);
    expect(syscallTracerPids([], [])).toEqual([]);
  });
});
