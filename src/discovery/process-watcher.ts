/**
 * Follows the selected processes: an initial /proc scan, exec/exit events from the kernel
 * (bpf/proc_events/proc_events.bpf.c) for processes that start or end later, fork events for children of
 * selected processes (bpf/sys_http/sys_http_lifecycle.h: pre-fork servers' workers, which the kernel
 * already traces from their fork), and a slow rescan for what events cannot tell (a process that
 * opens a selected port some time after exec).
 *
 * A selected process's descendants are selected with it until they exec: forked children (the
 * fork event), and at a scan those running the same executable as their selected parent (a
 * child that exec'd another program is decided on its own).
 */
import { readdirSync } from 'node:fs';
import { listeningPortsOf } from './listening-ports';
import { procRoot, readPpid, readProcessInfo, type ProcessInfo } from './process-info';
import { isEmptySelection, matchProcess, pidCanMatch, type MatchReason, type Selection } from './selectors';
import type { Exclusion } from './self-exclusion';

export interface WatcherEvents {
  /**
   * A process now matches the selection. A descendant of a selected process has its ancestor's
   * reason and `forkedFrom` its parent; `byKernel` when the kernel already traces it from its
   * fork (a fork event), so the agent must not select it again itself: it may have exec'd since,
   * and the kernel released it then.
   */
  onMatch(proc: ProcessInfo, reason: MatchReason, how?: { forkedFrom: number; byKernel: boolean }): void;
  /** A previously matched process exited (or exec'd into something that no longer matches). */
  onGone(pid: number): void;
  /** A process matches but must not be traced (the agent, its Collector): said once per process. */
  onExcluded?(proc: ProcessInfo, reason: MatchReason, exclusion: Exclusion): void;
}

export interface WatcherOptions {
  /** Pids never to select (the agent itself, the Collector, ...). */
  readonly excludePids: ReadonlySet<number>;
  /** Why a matching process must not be traced, or null (self-exclusion.ts). */
  readonly exclude?: (proc: ProcessInfo) => Exclusion | null;
  /**
   * After an exec, look again this long later (ms) whether a matched process has become excluded
   * (a Collector opens its port only after exec) and let it go if so.
   */
  readonly excludeRecheckMs?: readonly number[];
  /** Rescan interval for port selectors (ms). */
  readonly rescanMs?: number;
  /** How long after exec to look again for listening ports (ms). */
  readonly execRecheckMs?: readonly number[];
}

export function listPids(): number[] {
  return readdirSync(procRoot())
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

interface Matched {
  readonly startTicks: number;
  readonly reason: MatchReason;
  readonly exeKey: string;
}

/** Exec/exit times remembered per pid, so a late fork event is not taken for newer news. */
const RECENT_EVENTS_MAX = 4096;

export class ProcessWatcher {
  private readonly matched = new Map<number, Matched>();
  /** Last exec or exit seen per pid (monotonic ns), bounded. */
  private readonly lastExecOrExit = new Map<number, bigint>();
  /** Processes that matched but are excluded (by start time, so a reused pid is looked at again). */
  private readonly excluded = new Map<number, number>();
  private rescanTimer: NodeJS.Timeout | undefined;
  private readonly pendingTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly selection: Selection,
    private readonly events: WatcherEvents,
    private readonly options: WatcherOptions,
  ) {}

  get matchedPids(): number[] {
    return [...this.matched.keys()];
  }

  /** Scans every running process once; then rescans periodically if ports are selected. */
  start(): void {
    this.scanAll();
    if (this.selection.openPorts.length > 0) {
      this.rescanTimer = setInterval(() => this.scanAll(), this.options.rescanMs ?? 2000);
      this.rescanTimer.unref();
    }
  }

  stop(): void {
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    for (const t of this.pendingTimers) clearTimeout(t);
    this.pendingTimers.clear();
  }

  scanAll(): void {
    if (isEmptySelection(this.selection)) return;
    const cache = new Map<string, Map<string, number>>();
    const alive = new Set<number>();
    for (const pid of listPids()) {
      alive.add(pid);
      if (!this.matched.has(pid)) this.consider(pid, cache);
    }
    for (const pid of [...this.matched.keys()]) if (!alive.has(pid)) this.gone(pid);
    this.followDescendants(alive);
    for (const pid of [...this.excluded.keys()]) if (!alive.has(pid)) this.excluded.delete(pid);
  }

  /**
   * A selected process forked `child` at `tsNs` (monotonic; the kernel already traces the child).
   * Ignored when the child has exec'd or exited since (that event decided), or is selected.
   */
  onFork(child: number, parent: number, tsNs?: bigint): void {
    const p = this.matched.get(parent);
    if (!p || this.matched.has(child) || this.options.excludePids.has(child)) return;
    const later = this.lastExecOrExit.get(child);
    if (tsNs !== undefined && later !== undefined && later >= tsNs) return;
    const proc = readProcessInfo(child);
    if (!proc) return;
    this.inherit(proc, parent, p, true);
  }

  /** A process exec'd: it may now match (or, if it was matched, it runs a new image). */
  onExec(pid: number, tsNs?: bigint): void {
    this.remember(pid, tsNs);
    if (this.matched.has(pid)) this.gone(pid);
    this.excluded.delete(pid);
    this.consider(pid);
    if (this.matched.has(pid) && this.options.exclude) {
      for (const delay of this.options.excludeRecheckMs ?? [500, 2000, 5000]) {
        const t = setTimeout(() => {
          this.pendingTimers.delete(t);
          this.recheckExcluded(pid);
        }, delay);
        t.unref();
        this.pendingTimers.add(t);
      }
    }
    // A server usually opens its port shortly after exec: look again a few times.
    if (this.selection.openPorts.length > 0) {
      for (const delay of this.options.execRecheckMs ?? [100, 500, 1500]) {
        const t = setTimeout(() => {
          this.pendingTimers.delete(t);
          if (!this.matched.has(pid)) this.consider(pid);
        }, delay);
        t.unref();
        this.pendingTimers.add(t);
      }
    }
  }

  onExit(pid: number, tsNs?: bigint): void {
    this.remember(pid, tsNs);
    this.excluded.delete(pid);
    if (this.matched.has(pid)) this.gone(pid);
  }

  /** A matched process that has since become excluded (e.g. it opened the Collector's port) is let go. */
  private recheckExcluded(pid: number): void {
    const m = this.matched.get(pid);
    if (!m || !this.options.exclude) return;
    const proc = readProcessInfo(pid);
    if (!proc || proc.startTicks !== m.startTicks) return;
    const why = this.options.exclude(proc);
    if (!why) return;
    this.gone(pid);
    this.excluded.set(pid, proc.startTicks);
    this.events.onExcluded?.(proc, `pid ${pid}`, why);
  }

  private consider(pid: number, cache?: Map<string, Map<string, number>>): void {
    if (this.options.excludePids.has(pid) || !pidCanMatch(this.selection, pid)) return;
    const needPorts = this.selection.openPorts.length > 0;
    const proc = readProcessInfo(pid);
    if (!proc) return;
    if (this.excluded.get(pid) === proc.startTicks) return;
    const ports = needPorts ? listeningPortsOf(pid, cache) : new Set<number>();
    const reason = matchProcess(this.selection, proc, ports);
    if (!reason) return;
    const why = this.options.exclude?.(proc);
    if (why) {
      this.excluded.set(pid, proc.startTicks);
      this.events.onExcluded?.(proc, reason, why);
      return;
    }
    this.matched.set(pid, { startTicks: proc.startTicks, reason, exeKey: proc.exeKey });
    this.events.onMatch(proc, reason);
  }

  private inherit(proc: ProcessInfo, parent: number, p: Matched, byKernel: boolean): void {
    const why = this.options.exclude?.(proc);
    if (why) {
      this.excluded.set(proc.pid, proc.startTicks);
      this.events.onExcluded?.(proc, p.reason, why);
      return;
    }
    this.matched.set(proc.pid, { startTicks: proc.startTicks, reason: p.reason, exeKey: proc.exeKey });
    this.events.onMatch(proc, p.reason, { forkedFrom: parent, byKernel });
  }

  /**
   * Children (and theirs) of selected processes that were forked before we looked, e.g. the
   * workers of a pre-fork master selected by pid when the agent starts: selected when they run
   * their parent's executable (they have not exec'd into another program).
   */
  private followDescendants(alive: ReadonlySet<number>): void {
    if (this.matched.size === 0) return;
    const byParent = new Map<number, number[]>();
    for (const pid of alive) {
      if (this.matched.has(pid) || this.options.excludePids.has(pid)) continue;
      const ppid = readPpid(pid);
      if (ppid === null) continue;
      const siblings = byParent.get(ppid);
      if (siblings) siblings.push(pid);
      else byParent.set(ppid, [pid]);
    }
    const queue = [...this.matched.keys()];
    while (queue.length > 0) {
      const parent = queue.shift()!;
      const p = this.matched.get(parent);
      if (!p) continue;
      for (const child of byParent.get(parent) ?? []) {
        if (this.matched.has(child)) continue;
        const proc = readProcessInfo(child);
        if (!proc || proc.exeKey !== p.exeKey || this.excluded.get(child) === proc.startTicks) continue;
        this.inherit(proc, parent, p, false);
        if (this.matched.has(child)) queue.push(child);
      }
    }
  }

  private remember(pid: number, tsNs: bigint | undefined): void {
    if (tsNs === undefined) return;
    this.lastExecOrExit.delete(pid);
    this.lastExecOrExit.set(pid, tsNs);
    if (this.lastExecOrExit.size > RECENT_EVENTS_MAX) {
      const oldest = this.lastExecOrExit.keys().next().value;
      if (oldest !== undefined) this.lastExecOrExit.delete(oldest);
    }
  }

  private gone(pid: number): void {
    this.matched.delete(pid);
    this.events.onGone(pid);
  }
}
