/**
 * Go client connections opened before the agent attached (go.client_path syscall): their writer
 * goroutine started before the once-per-connection probe at (*persistConn).writeLoop, so the
 * syscall tracer cannot name their persistConn from the write's buffer and their calls start new
 * traces (bpf/common/go_client_ctx.h). The syscall tracer counts such writes per process
 * (spanbridge_go_client_unknown_v1); while that count grows, a probe at (*persistConn).roundTrip
 * entry (one trap per request) records each connection at its next call, and once it has stopped
 * growing for `quietMs` the probe goes away again, so steady traffic pays no per-request trap.
 * A connection idle all that time is adopted the same way when it is used again (the count grows,
 * the probe comes back at the next look).
 */
import type { BpfLink } from '../bpf/types';


/**
 * How often the agent looks at the counts (one map read per process), and how long a count must
 * stay still before the probe is taken away: under load every connection in use is adopted within
 * milliseconds of the probe's attach, so the per-call trap lasts about two seconds after an attach.
 */
export const ADOPTION_TICK_MS = 500;
export const ADOPTION_QUIET_MS = 1500;

export interface AdoptionChange {
  readonly pid: number;
  readonly adopting: boolean;
  /** The probe could not be attached (the process exited meanwhile, ...): tried again next tick. */
  readonly error?: string;
}

interface Tracked {
  readonly attachProbe: () => BpfLink;
  link: BpfLink | undefined;
  seen: bigint;
  lastGrowthMs: number;
}

export class GoClientAdoption {
  private readonly byPid = new Map<number, Tracked>();

  constructor(
    /** Writes from unknown buffers of `pid` so far (the kernel's count). */
    private readonly unknownWrites: (pid: number) => bigint,
    private readonly nowMs: () => number = Date.now,
    private readonly quietMs: number = ADOPTION_QUIET_MS,
  ) {}

  /** Starts watching a process on the lean client path; `attachProbe` attaches the roundTrip probe. */
  track(pid: number, attachProbe: () => BpfLink): void {
    this.untrack(pid);
    this.byPid.set(pid, { attachProbe, link: undefined, seen: this.unknownWrites(pid), lastGrowthMs: this.nowMs() });
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

  /** Attaches or takes away each process's probe by its count; returns what changed. */
  tick(): AdoptionChange[] {
    const changes: AdoptionChange[] = [];
    const now = this.nowMs();
    for (const [pid, t] of this.byPid) {
      const n = this.unknownWrites(pid);
      if (n > t.seen) {
        t.seen = n;
        t.lastGrowthMs = now;
        if (!t.link) {
          try {
            t.link = t.attachProbe();
            changes.push({ pid, adopting: true });
          } catch (err) {
            t.seen = n - 1n; // still growing, as far as the next tick is concerned
            changes.push({ pid, adopting: false, error: err instanceof Error ? err.message : String(err) });
          }
        }
      } else if (t.link && now - t.lastGrowthMs >= this.quietMs) {
        t.link.destroy();
        t.link = undefined;
        changes.push({ pid, adopting: false });
      }
    }
    return changes;
  }
}
