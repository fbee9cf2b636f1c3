/* bpf/sys_http/sys_http.bpf.c, the client request decision: the tail-called program that gives a request
 * being written its context (the application's own traceparent, a forwarded one to replace, or the
 * server request it is linked to by thread, asyncio task, node's async ids, nginx, Java connect or
 * Go's roundTrip hand-over) and hands it to sk_msg. Included by sys_http.bpf.c after every linking
 * header and data_paths; the program exists once. */
#ifndef SPANBRIDGE_SYS_HTTP_CLIENT_DECIDE_H
#define SPANBRIDGE_SYS_HTTP_CLIENT_DECIDE_H

/* The writing process's mode, read from the scratch at each test (volatile): the verifier keeps no
 * knowledge of its bits from one test to the next, so it does not walk the rest of the decision
 * once per combination of earlier outcomes (sys_client_write_enter: 560k -> 339k instructions
 * processed at load). */
static __always_inline __u32 client_mode(struct scratch *sm)
{
	return *(volatile __u32 *)&sm->client_mode;
}

/* Tail-called by the write-like syscalls' enter programs (args_by_tid holds the arguments): a
 * client request write gets its context, and pipelined requests in it their ids. */
SEC("tracepoint")
int sys_client_write_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct syscall_args *stored = args_get(id);
	if (!stored)
		return 0;
	struct syscall_args *a = stored; /* in place, not copied: the stack holds 512 bytes with the calls below (6.1) */
	struct conn_key key = { .tgid = id >> 32, .fd = a->fd };
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &key);
	if (!cs || !client_request_write(cs, a->kind))
		return 0;
	__u32 zero0 = 0;
	struct scratch *sm = bpf_map_lookup_elem(&scratch_buf, &zero0);
	if (!sm)
		return 0;
	sm->client_mode = traced_mode();
	/* A request written while the previous one awaits its response (pipelining) counts only
	 * when that one was framed to its last byte, so body bytes are never taken for a request. */
	__u8 pipelined = cs->phase == PHASE_REQUEST && cs->req_known && cs->req_left == 0;
	__u64 ptr = 0, len = 0;
	__u8 peek[8] = {};
	if (!first_segment(a, &ptr, &len) && len >= 8 && !bpf_probe_read_user(peek, 8, (void *)ptr) &&
	    is_request_start(peek, 8)) {
		__u64 now = bpf_ktime_get_ns();
		/* An asyncio event-loop thread: its current task's request, never the thread's. */
		struct trace_context py = {};
		int py_found = (client_mode(sm) & SYS_MODE_ASYNCIO) ? asyncio_parent(id, &py) : PY_PARENT_NONE;
		struct thread_ctx *tc = (client_mode(sm) & SYS_MODE_THREAD_LINK) && py_found == PY_PARENT_NONE ? thread_link_ctx(id, a->fd, cs) : NULL;
		struct scratch *s = sm; /* the per-CPU scratch, looked up once above */
		/* nginx: the downstream request this upstream request serves, whatever the thread did since. */
		if ((client_mode(sm) & SYS_MODE_NGINX_LINK) && s)
			tc = nginx_link_parent(id, a->fd, now, &s->nginx_parent) ? &s->nginx_parent : NULL;
		/* Go (go.client_path syscall): the server span its roundTrip left for this buffer. */
		int go_found = GO_CLIENT_NO_CONN;
		if ((client_mode(sm) & SYS_MODE_GO_CLIENT) && s) {
			go_found = go_client_parent(id >> 32, ptr, now, &s->nginx_parent);
			tc = go_found == GO_CLIENT_LINKED ? &s->nginx_parent : NULL;
		}
		/* Node.js (no thread link): the server request whose callback made the call, if exact. */
		bool node = s && !(client_mode(sm) & (SYS_MODE_THREAD_LINK | SYS_MODE_NGINX_LINK | SYS_MODE_ASYNCIO | SYS_MODE_GO_CLIENT)) &&
			    node_link_parent(id, a->fd, cs, now, &s->nginx_parent);
		if (node)
			tc = &s->nginx_parent;
		__u64 n = len < SYS_HTTP_CAPTURE ? len : SYS_HTTP_CAPTURE;
		int tp = TP_UNREAD;
		asm volatile("" : "+r"(n)); /* the bound below is on the register passed (6.1 verifier) */
		if (n > SYS_HTTP_CAPTURE)
			n = 0;
		if (s && n && !bpf_probe_read_user(s->e.data, n, (void *)ptr))
			tp = find_traceparent(s, n, &s->app);
		/* Go, no caller found: a traceparent a server request of the process came in with is a
		 * forward, never the application's own (bpf/sys_http/sys_http_go_forward.h). */
		int go_fwd = GO_FWD_NONE;
		if ((client_mode(sm) & SYS_MODE_GO_CLIENT) && s && !tc && tp == TP_VALID) {
			go_fwd = go_forward_parent(id >> 32, &s->app, now, &s->nginx_parent);
			if (go_fwd == GO_FWD_EXACT)
				tc = &s->nginx_parent;
		}
		bool linkable = tc && tc->active == 1 && !tc->ambiguous && now - tc->ts_ns <= thread_ctx_max_age_ns;
		if (tp == TP_VALID && linkable && tc->has_incoming &&
		    ids_equal(s->app.trace_id, tc->ctx.trace_id, 16) &&
		    ids_equal(s->app.span_id, tc->incoming_span_id, 8)) {
			/* The traceparent the thread's server request came in with, forwarded (a proxy):
			 * not an application span. The client span is the server span's child; the sk_msg
			 * program replaces the value with its id (never a second header). */
			__builtin_memcpy(a->ctx.trace_id, tc->ctx.trace_id, 16);
			__builtin_memcpy(a->parent_span_id, tc->ctx.span_id, 8);
			a->ctx.flags = tc->ctx.flags;
			a->flags |= SYS_F_THREAD_PARENT;
			a->forwarded = 1;
			if (!node)
				count((client_mode(sm) & SYS_MODE_NGINX_LINK) ? SYS_LINK_NGINX : SYS_LINK_THREAD);
			count(SYS_LINK_FORWARDED);
		} else if (go_fwd == GO_FWD_PARENT_UNKNOWN) {
			/* A forward whose server span is not known exactly: an id of its own (replacing the
			 * value), the forwarded parent-id as parent. */
			__builtin_memcpy(a->ctx.trace_id, s->app.trace_id, 16);
			__builtin_memcpy(a->parent_span_id, s->app.span_id, 8);
			a->ctx.flags = s->app.flags;
			a->flags |= SYS_F_REMOTE_PARENT;
			a->forwarded = 1;
			count(SYS_SKIP_GO_FORWARD_PARENT_UNKNOWN);
		} else if (tp == TP_VALID) {
			/* The application propagates its own context: this client span is that one. */
			a->ctx = s->app;
			a->flags |= SYS_F_APP_TRACEPARENT;
		} else if (py_found == PY_PARENT_FOUND) {
			__builtin_memcpy(a->ctx.trace_id, py.trace_id, 16);
			__builtin_memcpy(a->parent_span_id, py.span_id, 8);
			a->ctx.flags = py.flags;
			a->flags |= SYS_F_THREAD_PARENT;
			a->task_parent = 1;
		} else if (linkable) {
			__builtin_memcpy(a->ctx.trace_id, tc->ctx.trace_id, 16);
			__builtin_memcpy(a->parent_span_id, tc->ctx.span_id, 8);
			a->ctx.flags = tc->ctx.flags;
			a->flags |= SYS_F_THREAD_PARENT;
			if (!node)
				count((client_mode(sm) & SYS_MODE_NGINX_LINK) ? SYS_LINK_NGINX : SYS_LINK_THREAD);
		} else {
			if (tc && tc->ambiguous)
				count(SYS_SKIP_THREAD_AMBIGUOUS);
			new_trace_id(a->ctx.trace_id);
			a->ctx.flags = 0x01;
		}
		/* nginx: tc, if any, was its downstream request (never the thread's). */
		a->downstream_parent = (client_mode(sm) & SYS_MODE_NGINX_LINK) && (a->flags & SYS_F_THREAD_PARENT) ? 1 : 0;
		a->node_parent = node && (a->flags & SYS_F_THREAD_PARENT) ? 1 : 0;
		if (!(a->flags & SYS_F_APP_TRACEPARENT))
			new_span_id(a->ctx.span_id);
		a->start = 1;
		a->pipelined = pipelined;
		a->last_end = FRAME_UNKNOWN;
		/* Requests pipelined behind this one in the same write get ids of their own (only
		 * when no traceparent is anywhere in the captured bytes: never next to an app's). A
		 * net/http persistConn writes one request and waits for its response before the next:
		 * nothing to frame (a->extra stays 0, the request's end unknown, as for a head cut short). */
		if (tp == TP_ABSENT && go_found == GO_CLIENT_NO_CONN)
			frame_client_write(s, n, a);
#ifdef SYS_HTTP_SK_INJECT
		if (sk_inject_pending && s && !(a->flags & SYS_F_APP_TRACEPARENT)) {
			struct sk_inject_pending *p = &s->pending;
			p->ts_ns = now;
			/* Only a Go call's response reads an outcome (go_client_response), and only one that
			 * left the request without the context. */
			p->cookie = (client_mode(sm) & SYS_MODE_GO_CLIENT) ? cs->conn_id : 0;
			p->ctx = a->ctx;
			p->flags = (a->forwarded ? SK_INJECT_F_REPLACE : 0) | SK_INJECT_F_SKIPS_ONLY;
			/* The whole head was in the capture with no traceparent: sk_msg need not look again. */
			if (tp == TP_ABSENT && s->head.done == HEAD_COMPLETE)
				p->flags |= SK_INJECT_F_HEADERS_CHECKED;
			p->extra = a->extra;
			__builtin_memcpy(p->extra_off, a->extra_off, sizeof(p->extra_off));
			__builtin_memcpy(p->extra_span_ids, a->extra_span_ids, sizeof(p->extra_span_ids));
			/* A call linked to a server request sends that request's tracestate on (nginx
			 * forwards the header itself). */
			__u64 parent_key;
			__builtin_memcpy(&parent_key, a->parent_span_id, 8);
			struct sk_inject_tracestate *ts = (a->flags & SYS_F_THREAD_PARENT) && !a->forwarded && !(client_mode(sm) & SYS_MODE_NGINX_LINK) ? bpf_map_lookup_elem(&request_tracestates, &parent_key) : NULL;
			if (node && !a->forwarded)
				ts = node_linked_tracestate(); /* the linked request's, not the thread's */
			if (ts && !bpf_map_update_elem(&spanbridge_sk_inject_tracestate_v2, &id, ts, BPF_ANY))
				p->flags |= SK_INJECT_F_TRACESTATE;
			sk_inject_pending_put(id, p);
		}
#endif
		if (s) {
			s->creq.ts_ns = now;
			s->creq.ctx = a->ctx;
			s->creq.tgid = id >> 32;
			s->creq._pad = 0;
			/* A keep-alive connection's previous request is still there unless a traced server
			 * took it: overwritten in place (no LRU node allocated and swapped per request). */
			struct client_request *prev = bpf_map_lookup_elem(&client_requests, &cs->tuple);
			if (prev)
				*prev = s->creq;
			else
				bpf_map_update_elem(&client_requests, &cs->tuple, &s->creq, BPF_ANY);
		}
	}
	return 0;
}

#endif
