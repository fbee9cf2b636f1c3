/*
 * The selection gate: every program of bpf/sys_http.bpf.c runs for every process on the machine,
 * and for almost all of them its first and only question is "is this process traced?". A bit per
 * host tgid answers it with two array loads (the verifier inlines an array lookup: no helper call,
 * no hash), so an unselected process pays that and the pid/tgid helper, nothing else. Only a
 * process whose bit is set goes on to traced_tgids, which stays the truth (mode and per-process
 * settings): a bit set for a process that is not in traced_tgids (a stale one, or a reused pid)
 * costs one hash lookup and is otherwise harmless; a traced process without its bit would go
 * untraced, so every writer of traced_tgids sets the bit first.
 *
 * Two halves, one writer each, so neither overwrites the other's bits in a shared word:
 *   [0, SYS_SELECT_WORDS)                     the agent's: a bit per process it selected (it
 *                                             rewrites a whole word at a time; src/tracers/selection-bits.ts)
 *   [SYS_SELECT_WORDS, 2 * SYS_SELECT_WORDS)  the kernel's: children traced from their fork
 *                                             (sys_http_lifecycle.h), cleared at their exec or exit,
 *                                             or once the agent set its own bit for them; read only
 *                                             while one is set (select_inherited_live).
 * Host tgids are below PID_MAX_LIMIT (4,194,304 on 64-bit), so 65,536 words of 64 bits cover them
 * all (512 KiB a half); a larger value would wrap to another word: a false positive, never a miss.
 *
 * Included by sys_http.bpf.c after traced_tgids.
 */
#ifndef SPANBRIDGE_SYS_HTTP_SELECT_H
#define SPANBRIDGE_SYS_HTTP_SELECT_H

enum sys_http_select {
	SYS_SELECT_WORDS = 65536, /* 64-bit words per half of traced_bits (PID_MAX_LIMIT / 64) */
};
/* In BTF (the TypeScript view is generated from it: src/events/structs.generated.ts). */
const enum sys_http_select *_unused_sys_http_select __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * SYS_SELECT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} traced_bits SEC(".maps");

static __always_inline __u32 select_word(__u32 tgid)
{
	return (tgid >> 6) & (SYS_SELECT_WORDS - 1);
}

/* Children traced from their fork whose bit is set in the kernel's half (kept by
 * select_kernel_set/clear): while 0, the common case, the gate reads the agent's half only. */
static volatile __u64 select_inherited_live;

/* May this process be traced? false: certainly not. For an unselected process, one inlined array
 * load and the counter above: measured per program run with BPF statistics (bench/results/
 * 2026-12-07-unselected.md), each further lookup costs ~4-5 ns here, a hash lookup ~15. */
static __always_inline bool select_maybe(__u32 tgid)
{
	__u64 bit = 1ULL << (tgid & 63);
	__u32 w = select_word(tgid);
	__u64 *v = bpf_map_lookup_elem(&traced_bits, &w);
	if (v && (*v & bit))
		return true;
	if (!select_inherited_live)
		return false;
	w += SYS_SELECT_WORDS;
	v = bpf_map_lookup_elem(&traced_bits, &w);
	return v && (*v & bit);
}

/* The kernel's half. The bit is tested before it is added or taken away, and only the fork that
 * created a process, or that process's thread-group leader (its exec, its exit, its syscalls once
 * the agent has its own bit for it), changes its bit: no two of these run for one tgid at once, so
 * an atomic add (the one atomic every kernel and -mcpu level has) sets or clears exactly that bit
 * while other CPUs change other bits of the word. */
static __always_inline __u64 *select_kernel_word(__u32 tgid)
{
	__u32 w = select_word(tgid) + SYS_SELECT_WORDS;
	return bpf_map_lookup_elem(&traced_bits, &w);
}

static __always_inline void select_kernel_set(__u32 tgid)
{
	__u64 bit = 1ULL << (tgid & 63);
	__u64 *v = select_kernel_word(tgid);
	if (v && !(*v & bit)) {
		__sync_fetch_and_add(v, bit);
		__sync_fetch_and_add(&select_inherited_live, 1);
	}
}

static __always_inline void select_kernel_clear(__u32 tgid)
{
	__u64 bit = 1ULL << (tgid & 63);
	__u64 *v = select_kernel_word(tgid);
	if (v && (*v & bit)) {
		__sync_fetch_and_add(v, -bit);
		__sync_fetch_and_add(&select_inherited_live, -1);
	}
}

/* A traced process's own syscall (id: its pid_tgid): once the agent has set its bit for a child
 * traced from its fork, the child's leader takes the kernel's bit back, so select_inherited_live
 * returns to 0 and unselected processes stop reading the kernel's half. */
static __always_inline void select_adopted(__u64 id)
{
	__u32 tgid = id >> 32;
	if (!select_inherited_live || (__u32)id != tgid)
		return;
	__u32 w = select_word(tgid);
	__u64 *v = bpf_map_lookup_elem(&traced_bits, &w);
	if (v && (*v & (1ULL << (tgid & 63))))
		select_kernel_clear(tgid);
}

#endif
