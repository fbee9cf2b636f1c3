/*
 * Which processes are traced, kept by the kernel over their lifecycle (no rescans):
 *   fork: a child of a traced process (not Go) is traced from the fork itself, with its parent's
 *         mode plus SYS_MODE_INHERITED, so a pre-fork server's new worker (gunicorn, uWSGI, Puma,
 *         PHP-FPM, Apache prefork, nginx) has its very first request traced. A RECORD_PROC_FORK
 *         record tells the agent (resource, service name, bookkeeping); it enters sys_http_events
 *         before the child can run, so ahead of every record of the child.
 *   exec: the process runs another program: its entry and state go, and the agent re-decides
 *         from the exec event (a forked shell running curl is not the server).
 *   exit: (thread-group leader) its entry and state go.
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

static __always_inline void release_process(__u32 tgid)
{
	bpf_for_each_map_elem(&conns, purge_cb, &tgid, 0);
	bpf_for_each_map_elem(&adopt_conns, purge_adopt_cb, &tgid, 0);
	bpf_map_delete_elem(&traced_tgids, &tgid);
}

/* raw tracepoint: its arguments are the tasks, so a new process (not a thread) can be told apart. */
SEC("raw_tp/sched_process_fork")
int sys_http_process_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	struct traced_process *p = bpf_map_lookup_elem(&traced_tgids, &ptgid);
	/* Go forks only to exec: its children are left to the agent's exec decision. */
	if (!p || !(p->mode & SYS_MODE_TRACE))
		return 0;
	__u32 pid = BPF_CORE_READ(child, pid);
	__u32 tgid = BPF_CORE_READ(child, tgid);
	if (pid != tgid)
		return 0; /* a new thread of a traced process: already traced */
	struct traced_process c = *p;
	c.mode |= SYS_MODE_INHERITED;
	if (bpf_map_update_elem(&traced_tgids, &tgid, &c, BPF_ANY)) {
		count(SYS_DROP_TRACED_FULL);
		return 0;
	}
	count(SYS_PROC_INHERITED);
	struct proc_lifecycle_event *e = bpf_ringbuf_reserve(&sys_http_events, sizeof(*e), 0);
	if (!e) {
		count(SYS_DROP_RINGBUF_FULL);
		return 0;
	}
	e->type = RECORD_PROC_FORK;
	e->_pad0[0] = e->_pad0[1] = e->_pad0[2] = 0;
	e->pid = tgid;
	e->ppid = ptgid;
	e->_pad1 = 0;
	e->ts_ns = bpf_ktime_get_ns();
	BPF_CORE_READ_STR_INTO(&e->comm, child, comm);
	bpf_ringbuf_submit(e, ring_wakeup_flags(&sys_http_events, ring_wakeup_bytes));
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int sys_http_process_exec(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!traced_mode())
		return 0;
	release_process(tgid);
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
	if (!traced_mode())
		return 0;
	release_process(tgid);
	return 0;
}

#endif
