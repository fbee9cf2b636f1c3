/** A BPF link owned by its object, detached off the main thread. */
import type { BpfLink } from '../types';
import type { Native, Ptr } from './native';
import type { LibbpfObject } from './object';

/**
 * A link owned by its object. destroy() returns at once; bpf_link__destroy runs on a libuv worker
 * thread, because detaching waits for the kernel's RCU grace periods (tens to hundreds of ms per
 * link, bench/results/2026-12-06-code-comment-measurements.md), which would stall every timer and ring buffer if done on the
 * main thread. Destroys of one object are chained (run one after another, in call order), so
 * close() still detaches in reverse creation order and uses one worker thread at a time.
 */
export class LibbpfLink implements BpfLink {
  private ptr: Ptr;

  constructor(
    private readonly n: Native,
    private readonly obj: LibbpfObject,
    readonly description: string,
    ptr: bigint,
  ) {
    this.ptr = ptr;
  }

  destroy(): void {
    if (this.ptr === null) return;
    const p = this.ptr;
    this.ptr = null;
    this.obj.chainDestroy(
      () =>
        new Promise<void>((resolve) => {
          this.n.linkDestroy.async(p, () => resolve());
        }),
    );
  }
}
