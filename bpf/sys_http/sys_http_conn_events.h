/* bpf/sys_http/sys_http.bpf.c, connection events: accept and connect exits start tracking a connection (its
 * role, tuple and id; Node's socket ids at its connect), close ends it (the record announcing the
 * close, the thread's active request released). Included by sys_http.bpf.c after the state, socket,
 * adoption, lifecycle and linking headers; its programs exist once. */
#ifndef SPANBRIDGE_SYS_HTTP_CONN_EVENTS_H
#define SPANBRIDGE_SYS_HTTP_CONN_EVENTS_H

static __always_inline int on_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (!(traced_mode() & (SYS_MODE_TRACE | SYS_MODE_GO_LINK)))
		return 0;
	long fd = ctx->ret;
	if (fd < 0)
		return 0;
	track_connection(fd, SYS_ROLE_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int sys_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int sys_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int sys_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	if (!tracks_clients(traced_mode()))
		return 0;
	struct syscall_args a = {};
	a.fd = ctx->args[0];
	__u64 id = bpf_get_current_pid_tgid();
	if (args_put(id, &a))
		count(SYS_DROP_ARGS_FULL);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int sys_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	if (!tracks_clients(traced_mode()))
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct syscall_args *a = args_get(id);
	if (!a)
		return 0;
	__u32 fd = a->fd;
	a->kind = ARGS_TAKEN;
	if (ctx->ret == 0 || ctx->ret == -EINPROGRESS) {
		track_connection(fd, SYS_ROLE_CLIENT);
		node_connected(id, fd);
		java_connect_record(fd);
	}
	return 0;
}

static __always_inline void thread_release(struct conn_state *cs, __u32 tgid)
{
	if (!cs->thread_active)
		return;
	cs->thread_active = 0;
	__u64 id = ((__u64)tgid << 32) | cs->owner_tid;
	struct thread_ctx *tc = bpf_map_lookup_elem(&thread_ctxs, &id);
	if (!tc)
		return;
	if (tc->active > 1)
		tc->active -= 1;
	else
		bpf_map_delete_elem(&thread_ctxs, &id);
}

static __always_inline void emit_conn(__u8 type, struct conn_state *cs, __u32 fd)
{
	struct sys_http_conn_event *e = bpf_ringbuf_reserve(&sys_http_events, sizeof(*e), 0);
	if (!e) {
		count(SYS_DROP_RINGBUF_FULL);
		return;
	}
	__u64 id = bpf_get_current_pid_tgid();
	e->type = type;
	e->role = cs->role;
	e->family = cs->family;
	e->_pad0 = 0;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->fd = fd;
	e->_pad1 = 0;
	e->conn_id = cs->conn_id;
	e->ts_ns = bpf_ktime_get_ns();
	if (cs->role == SYS_ROLE_SERVER) {
		__builtin_memcpy(e->local_addr, cs->tuple.server_addr, 16);
		__builtin_memcpy(e->remote_addr, cs->tuple.client_addr, 16);
		e->local_port = cs->tuple.server_port;
		e->remote_port = cs->tuple.client_port;
	} else {
		__builtin_memcpy(e->local_addr, cs->tuple.client_addr, 16);
		__builtin_memcpy(e->remote_addr, cs->tuple.server_addr, 16);
		e->local_port = cs->tuple.client_port;
		e->remote_port = cs->tuple.server_port;
	}
	bpf_ringbuf_submit(e, ring_wakeup_flags(&sys_http_events, ring_wakeup_bytes));
}

/* The open record of a connection's first HTTP message (sys_data_exit), as a global function:
 * verified once, not at each state of sys_data_exit that reaches it. */
__noinline int emit_conn_open(struct conn_state *cs, __u32 fd)
{
	if (!cs)
		return 0;
	emit_conn(RECORD_SYS_HTTP_CONN_OPEN, cs, fd);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int sys_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	if (!traced_mode())
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct conn_key key = { .tgid = tgid, .fd = ctx->args[0] };
	bpf_map_delete_elem(&adopt_conns, &key);
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &key);
	if (!cs)
		return 0;
	thread_release(cs, tgid);
	if (cs->head_open)
		bpf_map_delete_elem(&heads, &key);
	if (cs->announced)
		emit_conn(RECORD_SYS_HTTP_CONN_CLOSE, cs, key.fd);
	if (!bpf_map_delete_elem(&conns, &key))
		conn_count_add(-1);
	return 0;
}

#endif
