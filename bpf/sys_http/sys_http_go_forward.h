/* bpf/sys_http/sys_http.bpf.c, Go client calls (go.client_path syscall) that forward a traceparent when
 * their caller is not found (sys_http_go_client.h: a connection from before the attach not adopted
 * yet, a caller not parked yet): a proxy such as httputil.ReverseProxy, or a handler copying the
 * incoming header, sends on the value its server request came in with. That value's parent-id is
 * the upstream's span, never this process's: taken for the application's own span
 * (SYS_F_APP_TRACEPARENT), the trace would hold two spans with one id.
 *
 * So each Go server request that came in with a valid traceparent is indexed by that value's
 * parent-id (per process). A client write with a valid traceparent and no caller found looks its
 * parent-id up here:
 * - exactly one server request of the process came in with it and its goroutine still serves it
 *   (its spanbridge_go_server_v1 entry is that request's): that server span is the call's parent,
 *   exactly as when the caller is found (a forward, replaced by the client span's id);
 * - a parent-id several server requests came in with (a client reusing ids, a load generator's
 *   fixed header, a retry), or whose one request is no longer its goroutine's current one:
 *   the request is a forward whose server span is unknown. The client span gets an id of its own
 *   and the forwarded parent-id as parent (what the application itself said the request belongs
 *   to), and its id replaces the value, so the downstream's parent is a span of the trace;
 * - not found: no server request of the process came in with it: the application's own context.
 * docs/limits.md ("Go client calls") states the rule. Included by sys_http_go_server.h. */
#ifndef SPANBRIDGE_SYS_HTTP_GO_FORWARD_H
#define SPANBRIDGE_SYS_HTTP_GO_FORWARD_H

struct go_forward_key {
	__u32 tgid;
	__u32 _pad;
	__u64 incoming; /* the incoming traceparent's parent-id */
};

struct go_forward {
	__u8 trace_id[16]; /* the incoming traceparent's trace-id */
	__u8 span_id[8];   /* the server span that received it (the last one) */
	__u64 goid;        /* its goroutine */
	__u8 ambiguous;    /* another server request came in with it while the previous one was current */
	__u8 _pad[7];
};

/* Sized like spanbridge_go_server_v1: one entry per server request with a remote parent in flight. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_forward_key);
	__type(value, struct go_forward);
} go_forwards SEC(".maps");

enum go_forward_found {
	GO_FWD_NONE = 0,           /* no server request of the process came in with it */
	GO_FWD_EXACT = 1,          /* *out: the one server request that did */
	GO_FWD_PARENT_UNKNOWN = 2, /* a forward whose server request is not exactly known */
};

/* A Go server request on goroutine `goid` came in with traceparent (trace_id, incoming) and got
 * `span_id`. A parent-id a second server request comes in with (a client reusing ids, a fixed
 * header, a retry) names no one request any more: ambiguous for as long as it is remembered. */
static __always_inline void go_forward_store(__u64 goid, const __u8 *trace_id, const __u8 *incoming, const __u8 *span_id)
{
	struct go_forward_key fk = { .tgid = bpf_get_current_pid_tgid() >> 32, ._pad = 0, .incoming = 0 };
	__builtin_memcpy(&fk.incoming, incoming, 8);
	struct go_forward *old = bpf_map_lookup_elem(&go_forwards, &fk);
	if (!old) {
		struct go_forward v = { .goid = goid, .ambiguous = 0 };
		__builtin_memcpy(v.trace_id, trace_id, 16);
		__builtin_memcpy(v.span_id, span_id, 8);
		if (!bpf_map_update_elem(&go_forwards, &fk, &v, BPF_NOEXIST))
			return;
		old = bpf_map_lookup_elem(&go_forwards, &fk); /* another CPU's request inserted it first */
	}
	if (old)
		old->ambiguous = 1;
}

/* A client request of process `tgid` whose caller was not found carries the valid traceparent
 * `app`: GO_FWD_EXACT with *out the server span that received it, GO_FWD_PARENT_UNKNOWN, or
 * GO_FWD_NONE (see above). A global function: verified once, its stack its own. */
__noinline int go_forward_parent(__u32 tgid, const struct trace_context *app, __u64 now, struct thread_ctx *out)
{
	if (!app || !out)
		return GO_FWD_NONE;
	struct go_forward_key fk = { .tgid = tgid, ._pad = 0, .incoming = 0 };
	__builtin_memcpy(&fk.incoming, app->span_id, 8);
	struct go_forward *f = bpf_map_lookup_elem(&go_forwards, &fk);
	if (!f || !ids_equal(f->trace_id, app->trace_id, 16))
		return GO_FWD_NONE;
	if (f->ambiguous)
		return GO_FWD_PARENT_UNKNOWN;
	struct go_link_key k = { .tgid = tgid, ._pad = 0, .goid = f->goid };
	struct go_server_ctx *s = bpf_map_lookup_elem(&spanbridge_go_server_v1, &k);
	/* The goroutine's current request must be the one indexed (read once: the entry is overwritten
	 * in place at the goroutine's next request). */
	struct go_server_ctx v;
	if (!s)
		return GO_FWD_PARENT_UNKNOWN;
	v = *s;
	if (!ids_equal(v.ctx.span_id, f->span_id, 8) || !ids_equal(v.ctx.trace_id, app->trace_id, 16) ||
	    !ids_equal(v.parent_span_id, app->span_id, 8) || !(v.flags & GO_SERVER_F_REMOTE_PARENT))
		return GO_FWD_PARENT_UNKNOWN;
	linked_parent(out, now, &v.ctx, v.parent_span_id, 1);
	count(SYS_LINK_GO_FORWARD);
	return GO_FWD_EXACT;
}

#endif
