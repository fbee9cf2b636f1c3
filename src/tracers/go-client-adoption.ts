/**
 * Go client connections opened before the agent attached (go.client_path syscall): their writer
 * goroutine started before the once-per-connection probe at (*persistConn).writeLoop, so the
 * syscall tracer cannot name their persistConn from the write's buffer and their calls start new
 * traces (bpf/common/go_client_ctx.h). A probe at (*persistConn).roundTrip entry (one trap per
 * call while attached) records each connection at its next call, before its request is written.
 *
 * The same probe names the caller of a request the connection's writer goroutine writes before the
 * caller has handed it over (another CPU ran the writer first: nothing in the connection leads to
 * the caller yet; bpf/common/go_client_ctx.h, struct go_client_caller).
 *
 * It is attached at once when the process holds client connections at the attach (so their first
 * call is already linked), and whenever the syscall tracer's count of writes from unknown
 * connections (spanbridge_go_client_unknown_v1) grows (an idle connection used again; only that
 * call goes unlinked), or its count of writes ahead of their caller (spanbridge_go_client_ahead_v1,
 * named through the probe or not) does in a process that calls at most `aheadMaxRate` a second
 * (a few calls a second with CPUs idle between them: up to ~1% of calls; its trap per call costs
 * such a process at most a few ms a second). It goes away once `quietCalls` calls went by with no
 * such growth (every connection in use adopted: milliseconds under load, so steady traffic pays
 * no per-request trap), or, for a caller slower than that, once nothing grew for `quietMs`. A
 * process seen calling faster than `aheadMaxRate` while attached (where these writes are ~1 in
 * 10,000) is not given the probe for them again for `AHEAD_FAST_BACKOFF_MS`.
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
/** Calls a second up to which writes ahead of their caller bring the probe (a ~10 us trap each). */
export const AHEAD_MAX_RATE = 200;
/** How long a process seen calling faster gets no probe for writes ahead of their caller. */
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
  /** Unknown-connection writes and ahead-of-caller writes at the last look. */
  unknownSeen: bigint;
  aheadSeen: bigint;
  /** Calls the probe had seen at the last growth (or at its attach). */
  callsAtGrowth: bigint;
  lastGrowthMs: number;
  /** Calls the probe had seen at the last look while attached (or at its attach), and when. */
  callsAtLook: bigint;
  lookMs: number;
  /** Until when writes ahead of their caller bring no probe (the process calls too fast). */
  fastUntilMs: number;
}

export interface AdoptionCounts {
  /** Writes from unknown connections of `pid` so far (the syscall tracer's count). */
  unknownWrites(pid: number): bigint;
  /** Calls the adoption probe saw in `pid` so far. */
  adoptCalls(pid: number): bigint;
  /** Request writes of `pid` ahead of their caller so far (named through the probe or not). */
  aheadWrites?(pid: number): bigint;
}

export class GoClientAdoption {
  private readonly byPid = new Map<number, Tracked>();

  constructor(
    private readonly counts: AdoptionCounts,
    private readonly nowMs: () => number = Date.now,
    private readonly quietMs: number = ADOPTION_QUIET_MS,
    private readonly quietCalls: bigint = ADOPTION_QUIET_CALLS,
    private readonly aheadMaxRate: number = AHEAD_MAX_RATE,
  ) {}

  /**
   * Starts watching a process on the lean client path; `attachProbe` attaches the roundTrip probe,
   * at once when `openClientConnections` (connections it holds now, from before the attach).
   */
  track(pid: number, attachProbe: () => BpfLink, openClientConnections = false): AdoptionChange | undefined {
    this.untrack(pid);
    const now = this.nowMs();
    const calls = this.counts.adoptCalls(pid);
    const t: Tracked = {
      attachProbe,
      link: undefined,
      unknownSeen: this.counts.unknownWrites(pid),
      aheadSeen: this.aheadOf(pid),
      callsAtGrowth: calls,
      lastGrowthMs: now,
      callsAtLook: calls,
      lookMs: now,
      fastUntilMs: 0,
    };
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
      const calls = this.counts.adoptCalls(pid);
      if (t.link && now > t.lookMs && Number(calls - t.callsAtLook) * 1000 > this.aheadMaxRate * (now - t.lookMs)) t.fastUntilMs = now + AHEAD_FAST_BACKOFF_MS;
      t.callsAtLook = calls;
      t.lookMs = now;
      const unknown = this.counts.unknownWrites(pid);
      const ahead = this.aheadOf(pid);
      const grew = unknown > t.unknownSeen || (ahead > t.aheadSeen && now >= t.fastUntilMs);
      t.unknownSeen = unknown;
      t.aheadSeen = ahead;
      if (grew) {
        t.lastGrowthMs = now;
        t.callsAtGrowth = calls;
        if (!t.link) {
          const c = this.attach(pid, t);
          if (c.error) t.unknownSeen = unknown - 1n; // still growing, as far as the next tick is concerned
          changes.push(c);
        }
      } else if (t.link && (now - t.lastGrowthMs >= this.quietMs || calls - t.callsAtGrowth >= this.quietCalls)) {
        t.link.destroy();
        t.link = undefined;
        changes.push({ pid, adopting: false });
      }
    }
    return changes;
  }

  private aheadOf(pid: number): bigint {
    return this.counts.aheadWrites?.(pid) ?? 0n;
  }

  private attach(pid: number, t: Tracked): AdoptionChange {
    try {
      t.link = t.attachProbe();
      t.callsAtGrowth = t.callsAtLook = this.counts.adoptCalls(pid);
      t.lastGrowthMs = t.lookMs = this.nowMs();
      return { pid, adopting: true };
    } catch (err) {
      return { pid, adopting: false, error: err instanceof Error ? err.message : String(err) };
    }
  }
}
