/* Go HTTP/1 server requests traced from syscall tracepoints (setting go.server_path: syscall):
 * the syscall tracer (bpf/sys_http/sys_http_go_server.h) decides the server span at the read that completes
 * the request head and leaves its context here, keyed by the reading goroutine's id (goid, from g
 * in the thread's TLS; goids are never reused, unlike g structs). net/http reads the request and
 * runs the handler on that one goroutine, so the Go tracer's client probes (bpf/go_http/go_http_client_calls.h)
 * find the server span of a call made on it, or on a goroutine it spawned, as with the uprobe path.
 * The Go tracer's one probe per connection, (*conn).serve entry, leaves the *conn of the
 * connection's goroutine in spanbridge_go_conns_v1, so the response write can read the route
 * (c.curReq -> response.req -> Request.Pattern) without a per-request trap.
 * Pinned by name so both objects share these maps. Needs trace_context.h and sys_http_go_link.h. */
#ifndef SPANBRIDGE_GO_SERVER_CTX_H
#define SPANBRIDGE_GO_SERVER_CTX_H

/* go_server_ctx.flags */
#define GO_SERVER_F_REMOTE_PARENT (1 << 0) /* parent from an incoming traceparent or a same-node client */
#define GO_SERVER_F_TRACESTATE (1 << 1)    /* the incoming tracestate is in spanbridge_go_server_ts_v1 */

struct go_server_ctx {
	__u64 start_ns;
	struct trace_context ctx; /* the server span */
	__u8 parent_span_id[8];
	__u8 flags;
	__u8 _pad[7];
};

/* The incoming tracestate (validated, normalised; bpf/common/trace_context.h) of a request that continued
 * a trace: a client call on its goroutine sends it on. Same layout as struct sk_inject_tracestate. */
struct go_server_tracestate {
	__u32 len;
	__u32 _pad;
	char value[W3C_TRACESTATE_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_link_key);
	__type(value, struct go_server_ctx);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spanbridge_go_server_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct go_link_key);
	__type(value, struct go_server_tracestate);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spanbridge_go_server_ts_v1 SEC(".maps");

/* Goroutine running (*net/http.conn).serve -> its *conn (one entry per connection). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_link_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spanbridge_go_conns_v1 SEC(".maps");

#endif
