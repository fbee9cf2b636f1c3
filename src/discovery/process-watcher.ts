/**
 * Follows the selected processes: an initial /proc scan, exec/exit events from the kernel
 * (bpf/proc_events.bpf.c) for processes that start or end later, and a slow rescan for what
 * events cannot tell (a process that opens a selected port some time after exec).
 */
import { readdirSync } from 'node:fs';
import { listeningPortsOf } from './listening-ports';
import { procRoot, readProcessInfo, type ProcessInfo } from './process-info';
import { isEmptySelection, matchProcess, type MatchReason, type Selection } from './selectors';

export interface WatcherEvents {
  /** A process now matches the selection. */
  onMatch(proc: ProcessInfo, reason: MatchReason): void;
  /** A previously matched process exited (or exec'd into something that no longer matches). */
  onGone(pid: number): void;
  /** A process matches but must not be traced (the agent, its Collector): said once per process. */
  onExcluded?(proc: ProcessInfo, reason: MatchReason, why: string): void;
}

export interface WatcherOptions {
  /** Pids never to select (the agent itself, the Collector, ...). */
  readonly excludePids: ReadonlySet<number>;
  /** Why a matching process must not be traced, or null (self-exclusion.ts). */
  readonly exclude?: (proc: ProcessInfo) => string | null;
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

export class ProcessWatcher {
  private readonly matched = new Map<number, { startTicks: number }>();
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
    for (const pid of [...this.excluded.keys()]) if (!alive.has(pid)) this.excluded.delete(pid);
  }

  /** A process exec'd: it may now match (or, if it was matched, it runs a new image). */
  onExec(pid: number): void {
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

  onExit(pid: number): void {
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
    if (this.options.excludePids.has(pid)) return;
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
    this.matched.set(pid, { startTicks: proc.startTicks });
    this.events.onMatch(proc, reason);
  }

  private gone(pid: number): void {
    this.matched.delete(pid);
    this.events.onGone(pid);
  }
}
