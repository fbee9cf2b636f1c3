/**
 * The resource (service.name, process.*, runtime) of every traced process, and how long it lives.
 * A process that stops being traced (exit, exec, deselection) still has records in its tracer's
 * ring buffer, read up to a few poll periods later: its resource stays for a grace period and is
 * released then, unless the process is traced again by that time. One timer path for every
 * tracer (Go uprobes, syscall tracepoints, children traced from their fork).
 */
import type { Resource } from '../spans/span';

/** Longer than any ring-buffer poll and the Go stage's body wait: records read by then. */
export const RESOURCE_GRACE_MS = 30_000;

export interface ResourceLifetimesOptions {
  /** True while any tracer traces `pid`: its resource is then never released. */
  readonly isTraced: (pid: number) => boolean;
  readonly graceMs?: number;
}

export class ResourceLifetimes {
  private readonly resources = new Map<number, Resource>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly options: ResourceLifetimesOptions) {}

  get(pid: number): Resource | undefined {
    return this.resources.get(pid);
  }

  has(pid: number): boolean {
    return this.resources.has(pid);
  }

  set(pid: number, resource: Resource): void {
    this.resources.set(pid, resource);
  }

  /** At once: the process was never traced (its attach failed or was refused). */
  delete(pid: number): void {
    this.resources.delete(pid);
  }

  /**
   * After the grace period, unless `pid` is traced again by then: `onRelease` runs (per-process
   * state of a stage), then the resource goes.
   */
  releaseLater(pid: number, onRelease?: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.options.isTraced(pid)) return;
      onRelease?.();
      this.resources.delete(pid);
    }, this.options.graceMs ?? RESOURCE_GRACE_MS);
    t.unref();
    this.timers.add(t);
  }

  /** Pending releases (for tests and the stop order). */
  get pendingReleases(): number {
    return this.timers.size;
  }

  /** Stopping: no release runs any more (the stages flush what they hold themselves). */
  dispose(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
