/**
 * The probe at (*persistConn).roundTrip entry (go.client_path syscall; one trap per call while
 * attached) and when it is attached. It does two jobs for the syscall tracer:
 *
 * - Connections opened before the agent attached: their writer goroutine started before the
 *   once-per-connection probe at (*persistConn).writeLoop, so the syscall tracer cannot name their
 *   persistConn from the write's buffer and their calls would start new traces
 *   (bpf/common/go_client_ctx.h). The probe records each connection at its next call, before its
 *   request is written.
 * - A request the connection's writer goroutine writes before its caller has handed it over
 *   (another CPU ran the writer first: nothing in the connection leads to the caller yet): the
 *   probe's record of each call's caller names it (struct go_client_caller).
 *
 * The second is a scheduling race that comes with idle CPUs: up to ~1% of calls at a few calls a
 * second, ~1 in 10,000 under load. So the probe is attached from the start (the first call of a
 * process is covered too) and stays while the process calls at most `aheadMaxRate` a second (its
 * trap per call then costs the process at most a few ms a second). A process seen calling faster
 * while attached loses it once `quietCalls` calls went by with no write from an unknown
 * connection (every connection in use adopted: milliseconds under load, so steady traffic pays no
 * per-request trap); it comes back `AHEAD_FAST_BACKOFF_MS` later to measure the rate again, or at
 * once when a write from an unknown connection shows up (an idle connection used again: only that
 * call goes unlinked). With `aheadMaxRate` 0 the probe is only for adoption: attached at once when
 * the process holds client connections at the attach (read from /proc), or when a write from an
 * unknown connection shows up, and gone once `quietCalls` calls went by without another.
 */
import type { BpfLink } from '../bpf/types';

/**
 * How often the agent looks at the counts (three map reads per process); how many calls without a
 * write from an unknown connection take the probe away from a process calling fast.
 */
export const ADOPTION_TICK_MS = 500;
export const ADOPTION_QUIET_CALLS = 256n;
/** Calls a second up to which the probe stays (a ~10 us trap each): go.client_caller_probe_max_rate. */
export const AHEAD_MAX_RATE = 200;
/** How long a process seen calling faster goes without the probe before it is measured again. */
export const AHEAD_FAST_BACKOFF_MS = 60_000;

export interface AdoptionChange {
  readonly pid: number;
  readonly adopting: boolean;
  /** The probe could not be attached (the process exited meanwhile, ...): tried again next tick. */
  readonly error?: string;
}

interface Tracked {
  readonly attachProbe: () => BpfLink;
  link: BpfLink | undefined;
  /** Unknown-connection writes at the last look. */
  unknownSeen: bigint;
  /** Calls the probe had seen at the last unknown-connection write (or at its attach). */
  callsAtGrowth: bigint;
  /** Calls the probe had seen at the last look while attached (or at its attach), and when. */
  callsAtLook: bigint;
  lookMs: number;
  /** Until when the process goes without the probe (it was seen calling faster than the limit). */
  fastUntilMs: number;
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
    private readonly aheadMaxRate: number = AHEAD_MAX_RATE,
    private readonly quietCalls: bigint = ADOPTION_QUIET_CALLS,
  ) {}

  /**
   * Starts watching a process on the lean client path and attaches the probe (`attachProbe`);
   * with the limit 0 only when `holdsClientConnections()` (connections it holds now, from before
   * the attach: their first call is then already linked).
   */
  track(pid: number, attachProbe: () => BpfLink, holdsClientConnections: () => boolean): AdoptionChange | undefined {
    this.untrack(pid);
    const now = this.nowMs();
    const calls = this.counts.adoptCalls(pid);
    const t: Tracked = {
      attachProbe,
      link: undefined,
      unknownSeen: this.counts.unknownWrites(pid),
      callsAtGrowth: calls,
      callsAtLook: calls,
      lookMs: now,
      fastUntilMs: 0,
    };
    this.byPid.set(pid, t);
    return this.aheadMaxRate > 0 || holdsClientConnections() ? this.attach(pid, t) : undefined;
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
      const calls = this.counts.adoptCalls(pid);
      if (t.link && now > t.lookMs && Number(calls - t.callsAtLook) * 1000 > this.aheadMaxRate * (now - t.lookMs)) t.fastUntilMs = now + AHEAD_FAST_BACKOFF_MS;
      t.callsAtLook = calls;
      t.lookMs = now;
      const unknown = this.counts.unknownWrites(pid);
      const grew = unknown > t.unknownSeen;
      t.unknownSeen = unknown;
      if (grew) t.callsAtGrowth = calls;
      if (!t.link && (grew || (this.aheadMaxRate > 0 && now >= t.fastUntilMs))) {
        const c = this.attach(pid, t);
        if (c.error && grew) t.unknownSeen = unknown - 1n; // still growing, as far as the next tick is concerned
        changes.push(c);
      } else if (t.link && !grew && (now < t.fastUntilMs || this.aheadMaxRate === 0) && calls - t.callsAtGrowth >= this.quietCalls) {
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
      t.callsAtGrowth = t.callsAtLook = this.counts.adoptCalls(pid);
      t.lookMs = this.nowMs();
      return { pid, adopting: true };
    } catch (err) {
      return { pid, adopting: false, error: err instanceof Error ? err.message : String(err) };
    }
  }
}
