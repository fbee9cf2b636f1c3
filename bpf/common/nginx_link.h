/* nginx as a reverse proxy: which downstream request an upstream request serves. One nginx worker
 * thread interleaves many requests, so the thread cannot tell; nginx itself can. Its upstream
 * module sends every upstream request through ngx_chain_writer(ngx_chain_writer_ctx_t *ctx, ...)
 * (exported in .dynsym), whose ctx->connection is the upstream connection, whose c->data is the
 * ngx_http_request_t being served (set by ngx_http_upstream_connect, also on a kept-alive
 * connection), whose r->connection is the downstream connection. A uprobe at its entry
 * (bpf/nginx_link/nginx_link.bpf.c) leaves (pid, upstream fd) -> downstream fd here, moments before the
 * writev of the upstream request on the same thread; the syscall tracer's client decision
 * (bpf/sys_http/sys_http_nginx_link.h) takes the server context of the request in flight on that downstream
 * connection. Pinned by name so both objects share one map. */
#ifndef SPANBRIDGE_NGINX_LINK_H
#define SPANBRIDGE_NGINX_LINK_H

/* nginx's HTTP request signature, r->signature = NGX_HTTP_MODULE = "HTTP" (little-endian). */
#define NGX_HTTP_SIGNATURE 0x50545448

struct nginx_link_key {
	__u32 tgid;
	__u32 fd; /* upstream connection */
};

struct nginx_link {
	__u64 ts_ns;          /* the ngx_chain_writer entry */
	__u32 tid;            /* the thread that entered it (the writev follows on it) */
	__u32 downstream_fd;  /* the connection of the request served */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct nginx_link_key);
	__type(value, struct nginx_link);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spanbridge_nginx_link_v1 SEC(".maps");

/* Counters of the uprobe (per-CPU array nginx_link_counts). */
enum nginx_link_reason {
	NGINX_LINK_HIT = 0,          /* (not a drop) ngx_chain_writer entries seen */
	NGINX_LINK_STORED = 1,       /* (not a drop) upstream fd -> downstream fd left for the write */
	NGINX_SKIP_UNREAD = 2,       /* the chain writer's structures could not be read */
	NGINX_SKIP_NOT_REQUEST = 3,  /* the upstream connection's data is not an HTTP request (signature
				      * check failed: another caller, or offsets that do not fit): refused */
	NGINX_SKIP_BAD_FD = 4,       /* an fd out of range, or the same on both sides: refused */
	NGINX_DROP_MAP_FULL = 5,     /* the entry could not be stored */
	NGINX_LINK_REASON_MAX = 6,
};

#endif
