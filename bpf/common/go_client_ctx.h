/* Go HTTP/1 client calls traced from syscall tracepoints (setting go.client_path: syscall): one
 * uprobe hit per request, at (*net/http.persistConn).roundTrip entry on the caller's goroutine
 * (bpf/go_http/go_http_client_lean.h), leaves the server span the call belongs to (found on that goroutine
 * or its parent: depth 1 from g.parentGoid, no newproc1 probe) under the connection's write
 * buffer: persistConn.bw.buf, the bytes the Transport's writeLoop goroutine hands to write(2) when
 * it flushes the request. The syscall tracer's client write (bpf/sys_http/sys_http_go_client.h) finds it by
 * the syscall's buffer address and decides the client span from it, as it does a thread's server
 * request for thread-per-request runtimes: its own traceparent respected, a forwarded one replaced
 * (sk_msg), the response framed by the syscall path. Keying by the buffer, not by the fd read
 * through net.Conn, needs no interface type check: a TLS connection writes records from another
 * buffer, so an HTTPS call never matches (those calls have no span on this path: docs/limits.md).
 * Pinned by name so both objects share the map. Needs go_server_ctx.h. */
#ifndef SPANBRIDGE_GO_CLIENT_CTX_H
#define SPANBRIDGE_GO_CLIENT_CTX_H

/* The write follows the uprobe by microseconds (the writeLoop goroutine wakes on a channel send);
 * an older entry is not taken. */
#define GO_CLIENT_MAX_AGE_NS (2ULL * 1000 * 1000 * 1000)

struct go_client_key {
	__u32 tgid;
	__u32 _pad;
	__u64 buf; /* persistConn.bw.buf's array: the address write(2) gets */
};

struct go_client_call {
	__u64 ts_ns;
	struct go_server_ctx server;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_client_key);
	__type(value, struct go_client_call);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spanbridge_go_client_v1 SEC(".maps");

#endif
