// SPDX-License-Identifier: GPL-2.0
/*
 * Process lifecycle from sched tracepoints (no kprobes needed): every exec and every process
 * exit (the thread-group leader), so the agent attaches to processes that start later and
 * detaches from those that exit, without polling /proc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "record_types.h"
#include "drop_reasons.h"
#include "proc_lifecycle_event.h"
#include "ring_wakeup.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} proc_events SEC(".maps");

DROP_COUNTERS_MAP(proc_drops);

/* 0 (what the agent leaves it at): every exec/exit wakes the agent at once, so processes started
 * later are attached promptly; these events are rare next to request records. bpf/common/ring_wakeup.h. */
const volatile __u64 ring_wakeup_bytes = 0;

const struct proc_lifecycle_event *_unused_proc_lifecycle_event __attribute__((unused));

static __always_inline void emit(__u8 type)
{
	struct proc_lifecycle_event *e = bpf_ringbuf_reserve(&proc_events, sizeof(*e), 0);
	if (!e) {
		__u32 reason = DROP_RINGBUF_FULL;
		__u64 *v = bpf_map_lookup_elem(&proc_drops, &reason);
		if (v)
			*v += 1;
		return;
	}
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->type = type;
	e->_pad0[0] = e->_pad0[1] = e->_pad0[2] = 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->_pad1 = 0;
	e->ts_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, ring_wakeup_flags(&proc_events, ring_wakeup_bytes));
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec(void *ctx)
{
	emit(RECORD_PROC_EXEC);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int on_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	/* Only the thread-group leader's exit ends the process for our purposes. */
	if ((__u32)pid_tgid != (__u32)(pid_tgid >> 32))
		return 0;
	emit(RECORD_PROC_EXIT);
	return 0;
}
