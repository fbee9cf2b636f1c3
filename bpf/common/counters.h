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

/* One more in a per-process count: a hash map from tgid to a u64, the entry created at its first. */
static __always_inline void count_by_tgid(void *map, __u32 tgid)
{
	__u64 *n = bpf_map_lookup_elem(map, &tgid);
	if (n) {
		__sync_fetch_and_add(n, 1);
	} else {
		__u64 one = 1;
		bpf_map_update_elem(map, &tgid, &one, BPF_NOEXIST);
	}
}

#endif
