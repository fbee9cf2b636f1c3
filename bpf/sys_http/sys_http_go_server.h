/* Go HTTP/1 servers traced by bpf/sys_http/sys_http.bpf.c (SYS_MODE_GO_SERVER, go.server_path: syscall):
 * no per-request uprobe. The goroutine is read from the thread's TLS at the tracepoint: g at
 * fsbase + g_tls_offset (-8 for Go's own TLS; computed from PT_TLS for executables with C TLS),
 * goid at the offset of runtime.g.goid. A request's context goes to spanbridge_go_server_v1 for
 * the Go tracer's client probes (bpf/common/go_server_ctx.h); the route is read at the response's first
 * write through the connection the Go tracer's (*conn).serve probe recorded.
 * Included by sys_http.bpf.c after its maps and helpers. */
#ifndef SPANBRIDGE_SYS_HTTP_GO_SERVER_H
#define SPANBRIDGE_SYS_HTTP_GO_SERVER_H

#include "sys_http_go_forward.h"

/* Client connections of a Go server traced here are the Go tracer's (no double spans), unless its
 * client calls are traced here too (SYS_MODE_GO_CLIENT, bpf/sys_http/sys_http_go_client.h). */
static __always_inline bool tracks_clients(__u32 mode)
{
	return (mode & SYS_MODE_TRACE) && (!(mode & SYS_MODE_GO_SERVER) || (mode & SYS_MODE_GO_CLIENT));
}

/* An accepted connection of a Go server traced here turned out not to be HTTP/1.x (told to the
 * agent through the process's entry). */
static __always_inline void go_server_not_http1(__u32 tgid)
{
	struct traced_process *tp = bpf_map_lookup_elem(&traced_tgids, &tgid);
	if (tp)
		__sync_fetch_and_add(&tp->go_not_http1, 1);
}

/* The calling goroutine's id, or 0 when it cannot be read (not a Go thread, TLS unreadable). */
static __always_inline __u64 go_current_goid(const struct traced_process *tp)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 fsbase = BPF_CORE_READ(task, thread.fsbase);
	__u64 g = 0, goid = 0;
	if (!fsbase || bpf_probe_read_user(&g, sizeof(g), (void *)(fsbase + (__s64)tp->g_tls_offset)) || !g ||
	    bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + tp->goid_offset)))
		return 0;
	return goid;
}

/* The goroutine serving a Go server connection: read from TLS at its first request, then kept with
 * the connection (net/http serves a connection on one goroutine, (*conn).serve, from its first
 * request to its last), so later requests and responses read no user memory for it. */
static __always_inline __u64 go_conn_goid(struct conn_state *cs, const struct traced_process *tp)
{
	if (!cs->goid)
		cs->goid = go_current_goid(tp);
	return cs->goid;
}

/* The server request just decided (cs->ctx, parent and flags in e): its context for client calls
 * made on the reading goroutine (or its children). */
static __always_inline void go_server_store(struct conn_state *cs, struct scratch *s, const struct sys_http_data_event *e,
					    __u64 now)
{
	struct go_link_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, ._pad = 0, .goid = 0 };
	k.goid = go_conn_goid(cs, &s->proc);
	if (!k.goid) {
		count(SYS_SKIP_GO_GOID_UNREAD);
		return;
	}
	struct go_server_ctx v = { .start_ns = now };
	v.ctx = cs->ctx;
	__builtin_memcpy(v.parent_span_id, e->parent_span_id, 8);
	if (e->flags & (SYS_F_REMOTE_PARENT | SYS_F_BLACKBOX_PARENT))
		v.flags |= GO_SERVER_F_REMOTE_PARENT;
	if (e->flags & SYS_F_REMOTE_PARENT) {
		/* Client calls on this path that forward the value with no caller found find it here. */
		if (s->proc.mode & SYS_MODE_GO_CLIENT)
			go_forward_store(k.goid, cs->ctx.trace_id, e->parent_span_id, cs->ctx.span_id);
		__u32 n = ts_result(&s->head.ts);
		if (n) {
			struct go_server_tracestate *t = (void *)&s->chunk; /* free once the head is read */
			t->len = n;
			t->_pad = 0;
			__builtin_memcpy(t->value, s->head.ts.out, W3C_TRACESTATE_MAX);
			if (!bpf_map_update_elem(&spanbridge_go_server_ts_v1, &k, t, BPF_ANY))
				v.flags |= GO_SERVER_F_TRACESTATE;
		} else if (s->head.ts.verdict != TS_OK) {
			count(SYS_SKIP_TRACESTATE_NOT_KEPT);
		}
	}
	/* A keep-alive connection's goroutine has its entry from the previous request: overwritten in
	 * place (an LRU update allocates a node, swaps it in and frees the old one under the bucket
	 * lock: ~0.3 us a request). Its readers are this goroutine and the ones it starts later. */
	struct go_server_ctx *old = bpf_map_lookup_elem(&spanbridge_go_server_v1, &k);
	if (old)
		*old = v;
	else
		bpf_map_update_elem(&spanbridge_go_server_v1, &k, &v, BPF_ANY);
}

/* The first write of a Go server response: the route its request matched, put after the write's
 * `cap` captured bytes in its data record `e` (e->route_len: one ring record per response, not a
 * route record and a data record). c.curReq is the response until after its last write
 * (net/http conn.serve). With requests pipelined behind this one (bpf/sys_http/sys_http_pipelined.h), the goroutine goes on to
 * serve them with no syscall in between: its request's context is forgotten, so their client
 * calls are unlinked, never children of this request. */
static __always_inline void go_server_response(struct conn_state *cs, const struct traced_process *tp,
						struct sys_http_data_event *e, __u32 cap)
{
	struct go_link_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, ._pad = 0, .goid = 0 };
	k.goid = go_conn_goid(cs, tp);
	if (cs->pipelined && k.goid) {
		bpf_map_delete_elem(&spanbridge_go_server_v1, &k);
		bpf_map_delete_elem(&spanbridge_go_server_ts_v1, &k);
	}
	if (tp->req_pattern == OFFSET_ABSENT || tp->conn_cur_req == OFFSET_ABSENT || tp->resp_req == OFFSET_ABSENT)
		return;
	if (!cs->go_conn && k.goid) {
		__u64 *conn = bpf_map_lookup_elem(&spanbridge_go_conns_v1, &k);
		if (conn)
			cs->go_conn = *conn;
	}
	__u64 resp = 0, req = 0;
	struct go_string pat = {};
	if (!cs->go_conn || bpf_probe_read_user(&resp, sizeof(resp), (void *)(cs->go_conn + tp->conn_cur_req)) || !resp ||
	    bpf_probe_read_user(&req, sizeof(req), (void *)(resp + tp->resp_req)) || !req ||
	    bpf_probe_read_user(&pat, sizeof(pat), (void *)(req + tp->req_pattern))) {
		count(SYS_SKIP_GO_ROUTE_UNREAD);
		return;
	}
	if (pat.len <= 0 || !pat.ptr)
		return; /* no pattern matched (not a ServeMux, or 404) */
	__u64 n = pat.len < SYS_HTTP_ROUTE_MAX ? pat.len : SYS_HTTP_ROUTE_MAX;
	__u64 at = cap;
	asm volatile("" : "+r"(n)); /* the bounds below are on the registers passed (6.1 verifier) */
	asm volatile("" : "+r"(at));
	if (at > SYS_HTTP_CAPTURE || n == 0 || n > SYS_HTTP_ROUTE_MAX)
		return;
	if (bpf_probe_read_user(&e->data[at], n, (void *)pat.ptr))
		return;
	e->route_len = n;
}

#endif
