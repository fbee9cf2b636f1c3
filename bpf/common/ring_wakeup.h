/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Adaptive ring-buffer wakeups: wake user space only when enough data is waiting (as Grafana
 * Beyla does), instead of on every record.
 *
 * Why: a wakeup (irq_work raised by bpf_ringbuf_submit/_output, then wake_up of the ring's epoll
 * waiters) is by far the most expensive part of emitting a record: several times the cost of the
 * program that emits it (bench/results/2026-12-06-code-comment-measurements.md).
 *
 * ring_wakeup_flags(ring, wakeup_bytes) gives the flags for bpf_ringbuf_submit/_output:
 *   wakeup_bytes == 0: 0, the kernel's own policy (wake when the consumer has caught up with this
 *     record, i.e. for every record while user space keeps up): prompt.
 *   otherwise: BPF_RB_NO_WAKEUP while less than wakeup_bytes wait in the ring
 *     (bpf_ringbuf_query(BPF_RB_AVAIL_DATA); with submit the record itself counts, with output it
 *     is not in yet); at or above it, BPF_RB_FORCE_WAKEUP, but at most once per consumer position:
 *     a wakeup forced while the consumer has not moved since the last forced one is still pending
 *     (epoll keeps the ring ready until user space has read it empty), so another one would only
 *     cost the same again. Once the consumer reads (its position moves), the next record at or
 *     above the threshold may force again. Two CPUs may both force at one position: harmless.
 * Records below the threshold are picked up by the agent's periodic consume (src/bpf/libbpf.ts,
 * ring_buffer.poll_interval_ms), so none waits longer than one period; the agent also reads every
 * ring empty when it stops.
 *
 * Each object keeps its own ring_wakeup_forced_at (a .data global): one ring per object using it.
 * The threshold is a `const volatile __u64 ring_wakeup_bytes` of the including object, set by the
 * agent before load.
 */
#ifndef SPANBRIDGE_RING_WAKEUP_H
#define SPANBRIDGE_RING_WAKEUP_H

/* Consumer position at the last forced wakeup; starts at a position a ring never has. */
static volatile __u64 ring_wakeup_forced_at = ~0ULL;

static __always_inline __u64 ring_wakeup_flags(void *ring, __u64 wakeup_bytes)
{
	if (wakeup_bytes == 0)
		return 0;
	if (bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) < wakeup_bytes)
		return BPF_RB_NO_WAKEUP;
	__u64 cons = bpf_ringbuf_query(ring, BPF_RB_CONS_POS);
	if (cons == ring_wakeup_forced_at)
		return BPF_RB_NO_WAKEUP;
	ring_wakeup_forced_at = cons;
	return BPF_RB_FORCE_WAKEUP;
}

#endif
