import { basename } from 'node:path';
import { prefetchInspections } from '../../../src/attach/prefetch';
import type { ProcessInfo } from '../../../src/discovery/process-info';
import type { Selection } from '../../../src/discovery/selectors';

/** Records which processes were inspected; this test's own process stands in for a selected one. */
function recorder(fail = false): { targetOf: (p: ProcessInfo) => never; seen: number[] } {
  const seen: number[] = [];
  return {
    seen,
    targetOf: (p: ProcessInfo): never => {
      seen.push(p.pid);
      if (fail) throw new Error('not a Go binary');
      return undefined as never;
    },
  };
}

const sel = (s: Partial<Selection>): Selection => ({ pids: [], exeGlobs: [], openPorts: [], ...s });

describe('prefetchInspections (Go inspection while the objects load)', () => {
  it('inspects the processes selected by pid, and no excluded one', () => {
    const r = recorder();
    expect(prefetchInspections(sel({ pids: [process.pid] }), r, new Set())).toBe(1);
    expect(r.seen).toEqual([process.pid]);
    const again = recorder();
    expect(prefetchInspections(sel({ pids: [process.pid] }), again, new Set([process.pid]))).toBe(0);
    expect(again.seen).toEqual([]);
  });

  it('inspects the processes whose executable matches a glob', () => {
    const r = recorder();
    prefetchInspections(sel({ exeGlobs: [basename(process.execPath)] }), r, new Set());
    expect(r.seen).toContain(process.pid);
  });

  it('leaves ports and containers to the watcher, and an inspection failure to the attach', () => {
    const r = recorder(true);
    expect(prefetchInspections(sel({ openPorts: [80] }), r, new Set())).toBe(0);
    expect(() => prefetchInspections(sel({ pids: [process.pid, 0x3fffffff] }), r, new Set())).not.toThrow();
    expect(r.seen).toEqual([process.pid]); // the pid that does not exist is skipped
  });
});
