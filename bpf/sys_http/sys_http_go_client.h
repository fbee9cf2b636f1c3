/* bpf/sys_http/sys_http.bpf.c, Go client calls (SYS_MODE_GO_CLIENT, go.client_path: syscall): the parent of
 * a request a Go process writes is the server span its persistConn.roundTrip uprobe found
 * (bpf/common/go_client_ctx.h), looked up by the write's buffer address, never the thread's: the
 * Transport's writeLoop goroutine writes for whichever goroutine asked. Included by sys_http.bpf.c
 * after its maps and sys_http_state.h. */
#ifndef SPANBRIDGE_SYS_HTTP_GO_CLIENT_H
#define SPANBRIDGE_SYS_HTTP_GO_CLIENT_H

#include "go_client_ctx.h"

/* A client request start written from buffer `buf` by process `tgid`: fills *out as a thread
 * context with exactly one active request (the server span of the call; its incoming tracestate is
 * found under its span id like any server request's), and returns true; false when no fresh entry names this buffer (a call
 * outside any server request, or one whose uprobe hit is older than GO_CLIENT_MAX_AGE_NS). The
 * entry is taken: a later request on the connection gets its own at its own roundTrip. */
__noinline bool go_client_parent(__u32 tgid, __u64 buf, __u64 now, struct thread_ctx *out)
{
	/* A global function (verified once; its stack is its own). The key is built here: a map key
	 * must be on the stack or in a map value (a global function's pointer arguments are neither
	 * to the 6.1 verifier). */
	if (!out)
		return false;
	struct go_client_key key = { .tgid = tgid, ._pad = 0, .buf = buf };
	struct go_client_key *k = &key;
	struct go_client_call *c = bpf_map_lookup_elem(&spanbridge_go_client_v1, k);
	if (!c)
		return false;
	bool fresh = c->ts_ns <= now && now - c->ts_ns <= GO_CLIENT_MAX_AGE_NS;
	if (fresh)
		linked_parent(out, now, &c->server.ctx, c->server.parent_span_id,
			      (c->server.flags & GO_SERVER_F_REMOTE_PARENT) ? 1 : 0);
	bpf_map_delete_elem(&spanbridge_go_client_v1, k);
	return fresh;
}

/* A client connection of a Go process on this path wrote a TLS handshake record first (an HTTPS
 * call: ciphertext, no span here); told to the agent through the process's entry. */
static __always_inline void go_client_tls_seen(__u32 tgid, const __u8 *data, __u64 len)
{
	if (len < 3 || data[0] != 0x16 || data[1] != 0x03) /* handshake, TLS 1.x record version */
		return;
	struct traced_process *tp = bpf_map_lookup_elem(&traced_tgids, &tgid);
	if (tp)
		__sync_fetch_and_add(&tp->go_client_tls, 1);
}

/* The response of a Go call begins: whether the sk_msg program inserted the header into its
 * request (bpf/common/sk_inject.h; its outcome is left under the connection's id, the cookie the decision
 * gave it). A request it left alone is said on the response record, for the span's
 * spanbridge.propagation=skipped, as on the uprobe path. The entry is taken either way. */
static __always_inline void go_client_response(struct conn_state *cs, __u32 tgid, struct sys_http_data_event *e)
{
#ifdef SYS_HTTP_SK_INJECT
	if (!sk_inject_pending)
		return;
	int outcome = sk_inject_take_result(tgid, cs->conn_id);
	switch (outcome) {
	case SK_INJECT_SKIP_STALE:
	case SK_INJECT_SKIP_LINE_TOO_LONG:
	case SK_INJECT_SKIP_HEAD_TOO_LONG:
	case SK_INJECT_SKIP_PUSH_FAILED:
	case SK_INJECT_SPLIT_SKIPPED:
	case SK_INJECT_SKIP_REPLACE:
		e->flags2 |= SYS_F2_PROPAGATION_SKIPPED;
		break;
	default: /* inserted, replaced, the application's own, still waiting for the head's end */
		break;
	}
#endif
}

#endif
