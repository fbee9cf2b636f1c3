/* Black-box correlation into Go servers: the syscall tracer (bpf/sys_http/sys_http.bpf.c) sees a Go
 * process's accepted socket read a request whose same-node client request it knows (mirrored
 * TCP tuple); it leaves that client span's context here, keyed by the reading goroutine's id
 * (goid, read from g = the user R14 saved at syscall entry: Go's Syscall6 is ABIInternal, so R14
 * holds g; goids are never reused, unlike g structs). The Go
 * tracer's ServeHTTP entry (same goroutine, moments later) takes it as the server span's parent
 * when no traceparent arrived. Pinned by name so both objects share one map. */
#ifndef SPANBRIDGE_SYS_HTTP_GO_LINK_H
#define SPANBRIDGE_SYS_HTTP_GO_LINK_H

/* An entry older than this at ServeHTTP entry is ignored (the read precedes it by microseconds). */
#define GO_LINK_MAX_AGE_NS (2ULL * 1000 * 1000 * 1000)

struct go_link_key {
	__u32 tgid;
	__u32 _pad;
	__u64 goid;
};

struct go_link_parent {
	__u64 ts_ns;
	struct trace_context ctx; /* the client span: trace id, span id, flags */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct go_link_key);
	__type(value, struct go_link_parent);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spanbridge_go_link_v1 SEC(".maps");

/* Go tracer side: takes (and removes) the parent left for goroutine goid. Returns 1 when found. */
static __always_inline int go_link_take_parent(__u32 tgid, __u64 goid, __u64 now, __u8 trace_id[16],
					       __u8 parent_span_id[8], __u8 *flags)
{
	struct go_link_key k = { .tgid = tgid, ._pad = 0, .goid = goid };
	struct go_link_parent *p = bpf_map_lookup_elem(&spanbridge_go_link_v1, &k);
	if (!p)
		return 0;
	int ok = p->ts_ns <= now && now - p->ts_ns <= GO_LINK_MAX_AGE_NS;
	if (ok) {
		__builtin_memcpy(trace_id, p->ctx.trace_id, 16);
		__builtin_memcpy(parent_span_id, p->ctx.span_id, 8);
		*flags = p->ctx.flags;
	}
	bpf_map_delete_elem(&spanbridge_go_link_v1, &k);
	return ok;
}

#endif
