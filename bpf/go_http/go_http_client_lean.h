/*
 * go.client_path syscall (included by go_http.bpf.c after go_http_client_calls.h): no uprobe fires
 * per request. Once per connection, (*net/http.persistConn).writeLoop entry, on the connection's
 * writer goroutine before it can write anything, records which persistConn owns the connection's
 * write buffer, with the offsets the syscall tracer follows from there to the calling goroutine
 * (bpf/common/go_client_ctx.h). The client span and its parent are the syscall tracer's. A
 * connection opened before the attach is adopted at (*persistConn).roundTrip entry by a probe the
 * agent attaches only while the syscall tracer sees writes from unknown buffers.
 *
 * A call that fails before it has a connection (connection refused, dial timeout, DNS failure)
 * never writes anything, so the syscall path never sees it. Two probes that do not fire per
 * request report it: (*Transport).dialConn entry, once per new connection on the goroutine the
 * caller started for the dial (its g.parentGoid is the caller), remembers when the caller's dial
 * began; net/http.stripPassword entry, which http.Client runs only when a call returns an error
 * (it names the URL in the *url.Error), on the caller's goroutine. A caller with a dial begun and
 * no request written since (the syscall tracer takes the entry when it finds the caller of a
 * write) failed before writing: an ERROR client span from the dial's start to now, with the URL
 * and the same parent a written call gets.
 */
#ifndef SPANBRIDGE_GO_HTTP_CLIENT_LEAN_H
#define SPANBRIDGE_GO_HTTP_CLIENT_LEAN_H

#include "go_client_ctx.h"

/* A dial older than this is not taken for the call failing now (Transport's default dial timeout
 * is 30 s; a Client.Timeout is usually shorter). */
#define GO_CLIENT_DIAL_MAX_AGE_NS (300ULL * 1000 * 1000 * 1000)

/* The server span of the current goroutine (*k, goid of the caller) or of the goroutine that
 * started it (depth 1: g.parentGoid, no per-goroutine probe); NULL outside any server request. */
static __always_inline struct go_server_ctx *lean_server_ctx(struct pt_regs *ctx, const struct go_offsets *off, struct go_link_key *k)
{
	struct go_server_ctx *c = bpf_map_lookup_elem(&spanbridge_go_server_v1, k);
	if (!c && max_goroutine_depth > 0 && off->g_parent_goid != OFFSET_ABSENT) {
		__u64 parent = 0;
		if (!bpf_probe_read_user(&parent, sizeof(parent), GO_G(ctx) + off->g_parent_goid) && parent) {
			struct go_link_key pk = { .tgid = k->tgid, ._pad = 0, .goid = parent };
			c = bpf_map_lookup_elem(&spanbridge_go_server_v1, &pk);
		}
	}
	return c;
}

/* Process (tgid) -> calls the adoption probe saw (go_persist_conn_adopt), read by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} go_client_adopt_calls SEC(".maps");

/* Records persistConn `pc` under its write buffer, with the offsets the syscall tracer follows
 * from it (bpf/common/go_client_ctx.h). dialConn set pc.bw before starting the connection's
 * goroutines, and the buffer stays the connection's for its life (net/http never resets pc.bw).
 * `adopt`: only if absent (the adoption probe fires per request while attached). */
static __always_inline int record_client_conn(void *pc, bool adopt, struct go_client_key *out)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off) {
		count_drop(DROP_NO_OFFSETS);
		return 0;
	}
	__u64 bw = 0;
	struct go_slice buf = {};
	if (!pc || off->pconn_bw == OFFSET_ABSENT || bpf_probe_read_user(&bw, sizeof(bw), pc + off->pconn_bw) || !bw ||
	    bpf_probe_read_user(&buf, sizeof(buf), (void *)bw + off->bufio_buf) || !buf.ptr) {
		count_drop(DROP_READ_FAILED);
		return 0;
	}
	struct go_client_key k = { .tgid = tgid, ._pad = 0, .buf = buf.ptr };
	if (out)
		*out = k;
	if (adopt) {
		struct go_client_conn *known = bpf_map_lookup_elem(&spanbridge_go_client_conns_v2, &k);
		if (known && known->pc == (__u64)pc)
			return 1;
	}
	struct go_client_conn c = {
		.pc = (__u64)pc,
		.pconn_bw = off->pconn_bw,
		.bufio_buf = off->bufio_buf,
		.pconn_reqch = off->pconn_reqch,
		.chan_qcount = off->chan_qcount,
		.chan_dataqsiz = off->chan_dataqsiz,
		.chan_buf = off->chan_buf,
		.chan_elemsize = off->chan_elemsize,
		.chan_recvx = off->chan_recvx,
		.chan_recvq = off->chan_recvq,
		.waitq_first = off->waitq_first,
		.sudog_g = off->sudog_g,
		.sudog_c = off->sudog_c,
		.rac_ch = off->rac_ch,
		.g_goid = off->g_goid,
		.g_parent_goid = off->g_parent_goid,
		.flags = max_goroutine_depth > 0 && off->g_parent_goid != OFFSET_ABSENT ? GO_CLIENT_F_PARENT_GOID : 0,
		.pconn_nwrite = off->pconn_nwrite,
	};
	if (bpf_map_update_elem(&spanbridge_go_client_conns_v2, &k, &c, BPF_ANY)) {
		count_drop(DROP_STATE_MAP_FULL);
		return 0;
	}
	return 1;
}

/* (*persistConn).writeLoop(pc *persistConn): pc in RAX, once per connection, on its writer
 * goroutine before it can write anything. */
SEC("uprobe")
int go_persist_conn_write_loop(struct pt_regs *ctx)
{
	return record_client_conn(GO_ARG1(ctx), false, NULL);
}

/* (*persistConn).roundTrip(pc *persistConn, req): pc in RAX, on the caller's goroutine. Attached
 * only for a while (src/tracers/go-client-adoption.ts): to adopt connections whose writer started
 * before the attach, and to name the caller of a request its writer writes before the caller has
 * handed it over (bpf/common/go_client_ctx.h, struct go_client_caller). */
SEC("uprobe")
int go_persist_conn_adopt(struct pt_regs *ctx)
{
	/* Calls seen while attached: the agent takes the probe away once enough calls went by with no
	 * write from an unknown connection or ahead of its caller, however slow the calls. */
	count_by_tgid(&go_client_adopt_calls, bpf_get_current_pid_tgid() >> 32);
	void *pc = GO_ARG1(ctx);
	struct go_client_key k = {};
	if (!record_client_conn(pc, true, &k))
		return 0;
	struct goroutine_key g;
	const struct go_offsets *off = current_goroutine(ctx, &g);
	struct go_client_caller c = { .pc = (__u64)pc, .goid = g.goid, .parent_goid = 0, .nwrite = 0 };
	if (!off || off->pconn_nwrite == OFFSET_ABSENT || !g.goid ||
	    bpf_probe_read_user(&c.nwrite, sizeof(c.nwrite), pc + off->pconn_nwrite))
		return 0;
	if (off->g_parent_goid != OFFSET_ABSENT && bpf_probe_read_user(&c.parent_goid, sizeof(c.parent_goid), GO_G(ctx) + off->g_parent_goid))
		c.parent_goid = 0;
	if (bpf_map_update_elem(&spanbridge_go_client_callers_v1, &k, &c, BPF_ANY))
		count_drop(DROP_STATE_MAP_FULL);
	return 0;
}

/* (*Transport).dialConn entry, on the dialing goroutine (net/http starts it from the caller's
 * getConn: its parentGoid is the caller). Once per new connection. */
SEC("uprobe")
int go_transport_dial_conn(struct pt_regs *ctx)
{
	struct goroutine_key key;
	const struct go_offsets *off = current_goroutine(ctx, &key);
	if (!off || off->g_parent_goid == OFFSET_ABSENT)
		return 0;
	__u64 parent = 0;
	if (bpf_probe_read_user(&parent, sizeof(parent), GO_G(ctx) + off->g_parent_goid) || !parent)
		return 0;
	struct go_link_key k = { .tgid = key.tgid, ._pad = 0, .goid = parent };
	__u64 now = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&spanbridge_go_client_dials_v1, &k, &now, BPF_ANY))
		count_drop(DROP_STATE_MAP_FULL);
	return 0;
}

/* net/http.stripPassword(u *url.URL) entry: http.Client is returning an error for the request
 * whose URL is u (u in RAX), on the caller's goroutine. Only a call whose dial began after its
 * goroutine's last written request becomes a span here: one that was written is the syscall path's. */
SEC("uprobe")
int go_client_call_failed(struct pt_regs *ctx)
{
	struct goroutine_key key;
	const struct go_offsets *off = current_goroutine(ctx, &key);
	if (!off)
		return 0;
	struct go_link_key k = { .tgid = key.tgid, ._pad = 0, .goid = key.goid };
	__u64 *dial = bpf_map_lookup_elem(&spanbridge_go_client_dials_v1, &k);
	if (!dial)
		return 0;
	__u64 start = *dial;
	bpf_map_delete_elem(&spanbridge_go_client_dials_v1, &k);
	__u64 now = bpf_ktime_get_ns();
	if (start > now || now - start > GO_CLIENT_DIAL_MAX_AGE_NS)
		return 0;
	struct go_server_ctx *c = lean_server_ctx(ctx, off, &k);
	struct go_http_client_event *e = bpf_ringbuf_reserve(&go_http_events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_RINGBUF_FULL);
		return 0;
	}
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	e->type = RECORD_GO_HTTP_CLIENT;
	e->flags = CLIENT_F_ERROR;
	e->flags2 = 0;
	e->status = 0;
	e->_pad1 = 0;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->goid = key.goid;
	e->start_ns = start;
	e->end_ns = now;
	if (c) {
		__builtin_memcpy(e->trace_id, c->ctx.trace_id, 16);
		__builtin_memcpy(e->parent_span_id, c->ctx.span_id, 8);
		e->trace_flags = c->ctx.flags;
		e->flags |= CLIENT_F_LOCAL_PARENT;
	} else {
		new_trace_id(e->trace_id);
		__builtin_memset(e->parent_span_id, 0, 8);
		e->trace_flags = 0x01;
	}
	new_span_id(e->span_id);
	e->method_len = e->scheme_len = e->host_len = e->path_len = e->query_len = 0;
	e->_pad2 = 0;
	void *url = GO_ARG1(ctx);
	if (url) {
		READ_GO_STRING(url, off->url_scheme, e->scheme, CLIENT_SCHEME_MAX, e->scheme_len);
		READ_GO_STRING(url, off->url_host, e->host, CLIENT_HOST_MAX, e->host_len);
		READ_GO_STRING(url, off->url_path, e->path, CLIENT_PATH_MAX, e->path_len);
		READ_GO_STRING(url, off->url_raw_query, e->query, CLIENT_QUERY_MAX, e->query_len);
	}
	bpf_ringbuf_submit(e, ring_wakeup_flags(&go_http_events, ring_wakeup_bytes));
	return 0;
}

#endif
