/* Kernel-side counters: a per-CPU array indexed by a reason or outcome, one per tracer; the agent
 * sums them and exports them as self-metrics. */
#ifndef SPANBRIDGE_COUNTERS_H
#define SPANBRIDGE_COUNTERS_H

static __always_inline void counter_inc(void *counters, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(counters, &key);
	if (v)
		*v += 1;
}

#endif
