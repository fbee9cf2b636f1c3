/*
 * Which processes are traced, kept by the kernel over their lifecycle (no rescans):
 *   fork: a child of a traced process (not Go) is traced from the fork itself (its bit in the
 *         kernel's half of traced_bits, sys_http_select.h, then its entry), with its parent's
 *         mode plus SYS_MODE_INHERITED, so a pre-fork server's new worker (gunicorn, uWSGI, Puma,
 *         PHP-FPM, Apache prefork, nginx) has its very first request traced. A RECORD_PROC_FORK
 *         record tells the agent (resource, service name, bookkeeping); it enters sys_http_events
 *         before the child can run, so ahead of every record of the child.
 *   exec: the process runs another program: its entry and state go, and the agent re-decides
 *         from the exec event (a forked shell running curl is not the server).
 *   exit: (thread-group leader) its entry and state go.
 * Exec and exit of a traced process also put a record into sys_http_events, after every record of
 * the process, so the agent forgets its connections only once it has read them all (a pre-fork
 * worker's last request, answered right before it exits, still becomes a span).
 *
 * Included by sys_http.bpf.c after the maps.
 */
#ifndef SPANBRIDGE_SYS_HTTP_LIFECYCLE_H
#define SPANBRIDGE_SYS_HTTP_LIFECYCLE_H

#include "proc_lifecycle_event.h"

static long purge_cb(struct bpf_map *map, struct conn_key *key, struct conn_state *st, __u32 *tgid)
{
	if (key->tgid == *tgid && !bpf_map_delete_elem(map, key))
		conn_count_add(-1);
	return 0;
}

static long purge_adopt_cb(struct bpf_map *map, struct conn_key *key, struct adopt_conn *v, __u32 *tgid)
{
	if (key->tgid == *tgid)
		bpf_map_delete_elem(map, key);
	return 0;
}

static __always_inline void emit_lifecycle(__u8 type, __u32 pid, __u32 ppid, struct task_struct *task)
{
	struct proc_lifecycle_event *e = bpf_ringbuf_reserve(&sys_http_events, sizeof(*e), 0);
	if (!e) {
		count(SYS_DROP_RINGBUF_FULL);
		return;
	}
	e->type = type;
	e->_pad0[0] = e->_pad0[1] = e->_pad0[2] = 0;
	e->pid = pid;
	e->ppid = ppid;
	e->_pad1 = 0;
	e->ts_ns = bpf_ktime_get_ns();
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	bpf_ringbuf_submit(e, ring_wakeup_flags(&sys_http_events, ring_wakeup_bytes));
}

static __always_inline void release_process(__u32 tgid, __u8 type)
{
	bpf_for_each_map_elem(&conns, purge_cb, &tgid, 0);
	bpf_for_each_map_elem(&adopt_conns, purge_adopt_cb, &tgid, 0);
	bpf_map_delete_elem(&traced_tgids, &tgid);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	emit_lifecycle(type, tgid, BPF_CORE_READ(task, real_parent, tgid), task);
}

/* raw tracepoint: its arguments are the tasks, so a new process (not a thread) can be told apart. */
SEC("raw_tp/sched_process_fork")
int sys_http_process_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	if (!select_maybe(ptgid))
		return 0;
	struct traced_process *p = bpf_map_lookup_elem(&traced_tgids, &ptgid);
	/* Go forks only to exec: its children are left to the agent's exec decision. */
	if (!p || !(p->mode & SYS_MODE_TRACE) || (p->mode & SYS_MODE_GO_SERVER))
		return 0;
	__u32 pid = BPF_CORE_READ(child, pid);
	__u32 tgid = BPF_CORE_READ(child, tgid);
	if (pid != tgid)
		return 0; /* a new thread of a traced process: already traced */
	struct traced_process c = *p;
	c.mode |= SYS_MODE_INHERITED;
	/* The bit before the entry: the child cannot run yet, but the gate must never hide an entry. */
	select_kernel_set(tgid);
	if (bpf_map_update_elem(&traced_tgids, &tgid, &c, BPF_ANY)) {
		select_kernel_clear(tgid);
		count(SYS_DROP_TRACED_FULL);
		return 0;
	}
	count(SYS_PROC_INHERITED);
	emit_lifecycle(RECORD_PROC_FORK, tgid, ptgid, child);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int sys_http_process_exec(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!select_maybe(tgid))
		return 0;
	/* A child traced from its fork is not once it runs another program (the agent re-decides,
	 * under its own bit); its kernel bit goes even if the agent already dropped its entry. */
	select_kernel_clear(tgid);
	if (!traced_mode())
		return 0;
	release_process(tgid, RECORD_PROC_EXEC);
	count(SYS_PROC_EXEC_RELEASED);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int sys_http_process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if ((__u32)id != tgid) /* only when the thread group leader exits */
		return 0;
	if (!select_maybe(tgid))
		return 0;
	select_kernel_clear(tgid); /* the pid may be reused: no stale bit is left behind */
	if (!traced_mode())
		return 0;
	release_process(tgid, RECORD_PROC_EXIT);
	return 0;
}

#endif
