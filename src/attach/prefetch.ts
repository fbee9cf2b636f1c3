/**
 * Go inspection ahead of the attach, at start-up: while the BPF objects load on worker threads
 * the main thread is idle, and the first inspection of a Go binary (ELF, .gopclntab, DWARF, the
 * TLS layout) took 0.1-1.5 s here, on the way to the ready file when it ran after the loads. The
 * processes the selection names now are inspected into the inspection cache the attacher reads;
 * a binary that is not Go costs a look at its ELF sections, and its reason is cached likewise.
 *
 * Best effort, and decides nothing: the attach (src/attach/attach-planner.ts) still reads the
 * cache and reports what it finds; a failure here is left for it to meet and report. Selection
 * by pid and by executable glob is known from /proc/<pid>/exe alone; ports and containers are
 * left to the watcher's scan.
 */
import { listPids } from '../discovery/process-watcher';
import { readProcessInfo } from '../discovery/process-info';
import { exeMatches, type Selection } from '../discovery/selectors';
import type { InspectionCache } from './inspection-cache';

/** Inspects the executables of the processes `selection` names by pid or exe glob; returns how many processes. */
export function prefetchInspections(selection: Selection, inspection: Pick<InspectionCache, 'targetOf'>, excludePids: ReadonlySet<number>): number {
  const pids = selection.exeGlobs.length > 0 ? listPids() : selection.pids;
  let n = 0;
  for (const pid of pids) {
    if (excludePids.has(pid)) continue;
    const proc = readProcessInfo(pid);
    if (!proc) continue;
    if (!selection.pids.includes(pid) && !selection.exeGlobs.some((g) => exeMatches(g, proc.exePath))) continue;
    n++;
    try {
      inspection.targetOf(proc);
    } catch {
      // not Go, or gone: the attach meets the same (cached) answer and reports it
    }
  }
  return n;
}
