/*
 * go.client_path syscall (included by go_http.bpf.c after go_http_client_calls.h): the one uprobe
 * of a client call, (*net/http.persistConn).roundTrip entry, on the caller's goroutine after the
 * Transport picked the connection. The client span itself is the syscall tracer's
 * (bpf/go_client_ctx.h); here only which server span it belongs to.
 */
#ifndef SPANBRIDGE_GO_HTTP_CLIENT_LEAN_H
#define SPANBRIDGE_GO_HTTP_CLIENT_LEAN_H

#include "go_client_ctx.h"

/* (*persistConn).roundTrip(pc *persistConn, req *transportRequest): pc in RAX. */
SEC("uprobe")
int go_persist_conn_round_trip(struct pt_regs *ctx)
{
	struct goroutine_key key;
	const struct go_offsets *off = current_goroutine(ctx, &key);
	if (!off)
		return 0;
	void *pc = GO_ARG1(ctx);
	__u64 bw = 0;
	struct go_slice buf = {};
	if (!pc || off->pconn_bw == OFFSET_ABSENT || bpf_probe_read_user(&bw, sizeof(bw), pc + off->pconn_bw) || !bw ||
	    bpf_probe_read_user(&buf, sizeof(buf), (void *)bw + off->bufio_buf) || !buf.ptr) {
		count_drop(DROP_READ_FAILED);
		return 0;
	}
	struct go_client_key ck = { .tgid = key.tgid, ._pad = 0, .buf = buf.ptr };
	struct go_link_key k = { .tgid = key.tgid, ._pad = 0, .goid = key.goid };
	struct go_server_ctx *c = bpf_map_lookup_elem(&spanbridge_go_server_v1, &k);
	if (!c && max_goroutine_depth > 0 && off->g_parent_goid != OFFSET_ABSENT) {
		/* A goroutine the handler started (depth 1): g.parentGoid, no per-goroutine probe. */
		__u64 parent = 0;
		if (!bpf_probe_read_user(&parent, sizeof(parent), GO_G(ctx) + off->g_parent_goid) && parent) {
			k.goid = parent;
			c = bpf_map_lookup_elem(&spanbridge_go_server_v1, &k);
		}
	}
	if (!c) {
		/* Not inside a server request: a new trace, decided at the write; nothing older may stay. */
		bpf_map_delete_elem(&spanbridge_go_client_v1, &ck);
		return 0;
	}
	struct go_client_call call = { .ts_ns = bpf_ktime_get_ns() };
	call.server = *c;
	if (bpf_map_update_elem(&spanbridge_go_client_v1, &ck, &call, BPF_ANY))
		count_drop(DROP_STATE_MAP_FULL);
	return 0;
}

#endif
