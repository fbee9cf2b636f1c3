/* bpf/sys_http/sys_http.bpf.c, nginx processes (SYS_MODE_NGINX_LINK): the parent of an upstream request is
 * the request in flight on the downstream connection nginx serves it for, as the ngx_chain_writer
 * uprobe (bpf/nginx_link/nginx_link.bpf.c) left it, never the thread's: one nginx worker thread interleaves
 * many requests. Included by sys_http.bpf.c after its maps and sys_http_state.h. */
#ifndef SPANBRIDGE_SYS_HTTP_NGINX_LINK_H
#define SPANBRIDGE_SYS_HTTP_NGINX_LINK_H

#include "nginx_link.h"

/* The uprobe hit precedes the writev by microseconds on the same thread; an older entry is a
 * previous request's (the same upstream connection kept alive) and is not taken. */
#define NGINX_LINK_MAX_AGE_NS (1000ULL * 1000 * 1000)

/* A client request start on (tgid, fd) written by thread `id`: fills *out as a thread context with
 * exactly one active request (the downstream one) and returns true, or counts and returns false
 * when there is no fresh link from this thread or the downstream request is not in flight (its
 * head read and decided, its response not started). */
__noinline bool nginx_link_parent(__u64 id, __u32 fd, __u64 now, struct thread_ctx *out)
{
	/* A global function (verified once; its stack is its own) */
	if (!out)
		return false;
	struct nginx_link_key k = { .tgid = id >> 32, .fd = fd };
	struct nginx_link *l = bpf_map_lookup_elem(&spanbridge_nginx_link_v1, &k);
	if (!l || l->tid != (__u32)id || l->ts_ns > now || now - l->ts_ns > NGINX_LINK_MAX_AGE_NS) {
		count(SYS_SKIP_NGINX_UNLINKED);
		return false;
	}
	struct conn_key dk = { .tgid = id >> 32, .fd = l->downstream_fd };
	struct conn_state *ds = bpf_map_lookup_elem(&conns, &dk);
	if (!ds || ds->role != SYS_ROLE_SERVER || ds->phase != PHASE_REQUEST || ds->head_open) {
		count(SYS_SKIP_NGINX_UNLINKED);
		return false;
	}
	linked_parent(out, now, &ds->ctx, ds->incoming_span_id, ds->has_incoming);
	return true;
}

#endif
