/**
 * Go client connections opened before the agent attached (go.client_path syscall): their writer
 * goroutine started before the once-per-connection probe at (*persistConn).writeLoop, so the
 * syscall tracer cannot name their persistConn from the write's buffer and their calls start new
 * traces (bpf/common/go_client_ctx.h). A probe at (*persistConn).roundTrip entry (one trap per
 * call while attached) records each connection at its next call, before its request is written.
 *
 * It is attached at once when the process holds client connections at the attach (so their first
 * call is already linked), and whenever the syscall tracer's count of writes from unknown
 * connections (spanbridge_go_client_unknown_v1) grows (an idle connection used again; only that
 * call goes unlinked). It goes away once `quietCalls` calls went by with no such write (every
 * connection in use adopted: milliseconds under load, so steady traffic pays no per-request trap),
 * or, for a caller slower than that, once nothing grew for `quietMs`.
 */
import type { BpfLink } from '../bpf/types';

/**
 * How often the agent looks at the counts (two map reads per process); how many calls without a
 * write from an unknown connection take the probe away; how long without one takes it away when
 * calls are fewer (a low-rate caller's pool is adopted one call per connection).
 */
export const ADOPTION_TICK_MS = 500;
export const ADOPTION_QUIET_CALLS = 256n;
export const ADOPTION_QUIET_MS = 30_000;

export interface AdoptionChange {
  readonly pid: number;
  readonly adopting: boolean;
  /** The probe could not be attached (the process exited meanwhile, ...): tried again next tick. */
  readonly error?: string;
}

interface Tracked {
  readonly attachProbe: () => BpfLink;
  link: BpfLink | undefined;
  /** Unknown-connection writes at the last growth. */
  seen: bigint;
  /** Calls the probe had seen at the last growth (or at its attach). */
  callsAtGrowth: bigint;
  lastGrowthMs: number;
}

export interface AdoptionCounts {
  /** Writes from unknown connections of `pid` so far (the syscall tracer's count). */
  unknownWrites(pid: number): bigint;
  /** Calls the adoption probe saw in `pid` so far. */
  adoptCalls(pid: number): bigint;
}

export class GoClientAdoption {
  private readonly byPid = new Map<number, Tracked>();

  constructor(
    private readonly counts: AdoptionCounts,
    private readonly nowMs: () => number = Date.now,
    private readonly quietMs: number = ADOPTION_QUIET_MS,
    private readonly quietCalls: bigint = ADOPTION_QUIET_CALLS,
  ) {}

  /**
   * Starts watching a process on the lean client path; `attachProbe` attaches the roundTrip probe,
   * at once when `openClientConnections` (connections it holds now, from before the attach).
   */
  track(pid: number, attachProbe: () => BpfLink, openClientConnections = false): AdoptionChange | undefined {
    this.untrack(pid);
    const t: Tracked = { attachProbe, link: undefined, seen: this.counts.unknownWrites(pid), callsAtGrowth: this.counts.adoptCalls(pid), lastGrowthMs: this.nowMs() };
    this.byPid.set(pid, t);
    return openClientConnections ? this.attach(pid, t) : undefined;
  }

  /** Stops watching (detach): the probe, if attached, goes. */
  untrack(pid: number): void {
    const t = this.byPid.get(pid);
    if (!t) return;
    this.byPid.delete(pid);
    t.link?.destroy();
  }

  adopting(pid: number): boolean {
    return this.byPid.get(pid)?.link !== undefined;
  }

  /** Attaches or takes away each process's probe by its counts; returns what changed. */
  tick(): AdoptionChange[] {
    const changes: AdoptionChange[] = [];
    const now = this.nowMs();
    for (const [pid, t] of this.byPid) {
      const n = this.counts.unknownWrites(pid);
      if (n > t.seen) {
        t.seen = n;
        t.lastGrowthMs = now;
        t.callsAtGrowth = this.counts.adoptCalls(pid);
        if (!t.link) {
          const c = this.attach(pid, t);
          if (c.error) t.seen = n - 1n; // still growing, as far as the next tick is concerned
          changes.push(c);
        }
      } else if (t.link && (now - t.lastGrowthMs >= this.quietMs || this.counts.adoptCalls(pid) - t.callsAtGrowth >= this.quietCalls)) {
        t.link.destroy();
        t.link = undefined;
        changes.push({ pid, adopting: false });
      }
    }
    return changes;
  }

  private attach(pid: number, t: Tracked): AdoptionChange {
    try {
      t.link = t.attachProbe();
      t.callsAtGrowth = this.counts.adoptCalls(pid);
      t.lastGrowthMs = this.nowMs();
      return { pid, adopting: true };
    } catch (err) {
      return { pid, adopting: false, error: err instanceof Error ? err.message : String(err) };
    }
  }
}
