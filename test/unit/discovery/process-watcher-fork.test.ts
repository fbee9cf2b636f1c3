/**
 * Descendants of selected processes (pre-fork servers): followed from fork events and, for
 * children forked before the agent looked, at scans when they still run their parent's
 * executable. Children that exec'd another program are decided on their own. A fake /proc tree
 * (setProcRoot, the `proc_root` setting) stands in for the real one.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcessWatcher } from '../../../src/discovery/process-watcher';
import { readPpid, setProcRoot } from '../../../src/discovery/process-info';
import type { MatchReason } from '../../../src/discovery/selectors';

let root: string;

/** /proc/<pid> with what discovery reads; `exe` names a shared stand-in binary. */
function fakeProc(pid: number, ppid: number, exe: string): void {
  const d = path.join(root, String(pid));
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  writeFileSync(path.join(d, 'stat'), `${pid} (${exe}) S ${ppid} 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ${pid * 10} 0 0\n`);
  writeFileSync(path.join(d, 'cmdline'), `/usr/bin/${exe}\0app\0`);
  writeFileSync(path.join(d, 'environ'), '');
  writeFileSync(path.join(d, 'cgroup'), '0::/\n');
  const bin = path.join(root, 'bin', exe);
  mkdirSync(path.dirname(bin), { recursive: true });
  writeFileSync(bin, exe);
  symlinkSync(bin, path.join(d, 'exe'));
}

function gone(pid: number): void {
  rmSync(path.join(root, String(pid)), { recursive: true, force: true });
}

interface Seen {
  matched: { pid: number; reason: MatchReason; forkedFrom?: number; byKernel?: boolean }[];
  gone: number[];
}

function watcher(pids: number[]): { w: ProcessWatcher; seen: Seen } {
  const seen: Seen = { matched: [], gone: [] };
  const w = new ProcessWatcher(
    { pids, exeGlobs: [], openPorts: [] },
    {
      onMatch: (proc, reason, how) => seen.matched.push({ pid: proc.pid, reason, ...(how ? { forkedFrom: how.forkedFrom, byKernel: how.byKernel } : {}) }),
      onGone: (pid) => seen.gone.push(pid),
    },
    { excludePids: new Set() },
  );
  return { w, seen };
}

beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'spanbridge-fork-'));
  setProcRoot(root);
  fakeProc(1, 0, 'init');
  fakeProc(100, 1, 'python3'); // a gunicorn master
});

afterEach(() => {
  setProcRoot(undefined);
  rmSync(root, { recursive: true, force: true });
});

describe('ProcessWatcher: descendants of selected processes', () => {
  it('reads the parent pid from stat', () => {
    fakeProc(101, 100, 'python3');
    expect(readPpid(101)).toBe(100);
    expect(readPpid(999)).toBeNull();
  });

  it('selects workers forked before the scan (same executable, grandchildren too), not children that exec\'d', () => {
    fakeProc(101, 100, 'python3');
    fakeProc(102, 100, 'python3');
    fakeProc(103, 100, 'sh'); // a forked shell that exec'd: not the server
    fakeProc(104, 103, 'sh');
    fakeProc(105, 101, 'python3'); // a worker's own fork
    fakeProc(200, 1, 'python3'); // unrelated
    const { w, seen } = watcher([100]);
    w.start();
    expect(seen.matched).toEqual([
      { pid: 100, reason: 'pid 100' },
      { pid: 101, reason: 'pid 100', forkedFrom: 100, byKernel: false },
      { pid: 102, reason: 'pid 100', forkedFrom: 100, byKernel: false },
      { pid: 105, reason: 'pid 100', forkedFrom: 101, byKernel: false },
    ]);
    expect(w.matchedPids.sort()).toEqual([100, 101, 102, 105]);
  });

  it('selects a child from its fork event with the parent\'s reason; exit and exec let it go', () => {
    const { w, seen } = watcher([100]);
    w.start();
    fakeProc(110, 100, 'python3');
    w.onFork(110, 100, 1000n);
    expect(seen.matched.at(-1)).toEqual({ pid: 110, reason: 'pid 100', forkedFrom: 100, byKernel: true });
    w.onFork(110, 100, 1000n); // said once
    expect(seen.matched).toHaveLength(2);
    gone(110);
    w.onExit(110, 2000n);
    expect(seen.gone).toEqual([110]);
    // A re-forked worker that exec's another program is decided on its own (pid 100 only).
    fakeProc(111, 100, 'python3');
    w.onFork(111, 100, 3000n);
    fakeProc(111, 100, 'curl');
    w.onExec(111, 4000n);
    expect(seen.gone).toEqual([110, 111]);
    expect(w.matchedPids.sort()).toEqual([100]);
  });

  it('ignores a fork event older than an exec or exit already seen for the child, and forks of unselected parents', () => {
    const { w, seen } = watcher([100]);
    w.start();
    fakeProc(120, 100, 'curl');
    w.onExec(120, 5000n); // the exec event (immediate ring) came before the fork record
    w.onFork(120, 100, 4000n);
    fakeProc(121, 1, 'python3');
    w.onFork(121, 1, 6000n); // parent not selected
    w.onFork(122, 100, 7000n); // already gone from /proc
    expect(seen.matched.map((m) => m.pid)).toEqual([100]);
  });
});
