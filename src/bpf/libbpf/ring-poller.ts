/** The backend's one periodic consume timer for all of its running ring buffers. */

/** What the poller needs from a ring buffer: one bounded consume turn. */
export interface PolledRing {
  poll(): void;
}

/**
 * The backend's periodic consume: one unref'd interval timer while any ring buffer runs, which
 * gives every running ring a consume turn whether or not the kernel woke us. Programs that skip
 * wakeups while little data waits (bpf/common/ring_wakeup.h) rely on it: a record waits at most one
 * period. One timer for all rings, so an idle agent wakes once per period, not once per ring.
 */
export class RingPoller {
  private readonly rings = new Set<PolledRing>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs: number) {}

  add(ring: PolledRing): void {
    if (!(this.intervalMs > 0)) return;
    this.rings.add(ring);
    if (this.timer) return;
    this.timer = setInterval(() => {
      for (const r of [...this.rings]) r.poll();
    }, this.intervalMs);
    this.timer.unref(); // never what keeps the agent alive
  }

  remove(ring: PolledRing): void {
    this.rings.delete(ring);
    if (this.rings.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
