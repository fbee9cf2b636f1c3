/* bpf/sys_http/sys_http.bpf.c, Go client calls (SYS_MODE_GO_CLIENT, go.client_path: syscall): the parent of
 * a request a Go process writes is the server span of the goroutine that asked for it, found from
 * the write's buffer with no uprobe on the request (bpf/common/go_client_ctx.h): the buffer names
 * the connection's persistConn (its writeLoop probe, once per connection), the persistConn's reqch
 * the call's response channel, that channel's waiting sudog the caller. Never the thread's: the
 * Transport's writeLoop goroutine writes for whichever goroutine asked. Included by sys_http.bpf.c
 * after its maps and sys_http_state.h. */
#ifndef SPANBRIDGE_SYS_HTTP_GO_CLIENT_H
#define SPANBRIDGE_SYS_HTTP_GO_CLIENT_H

#include "go_client_ctx.h"

/* A request written ahead of its caller (it has not handed the request over, or not parked on the
 * response yet): its caller as the roundTrip probe recorded it while attached, only if that record
 * is this call's (the connection has written nothing since: nwrite unchanged), in *goid and
 * *parent_goid (src/tracers/go-client-adoption.ts says when the probe is attached). */
static __always_inline bool go_client_ahead(const struct go_client_conn *c, const struct go_client_key *key, __u64 *goid,
					    __u64 *parent_goid)
{
	struct go_client_caller *r = bpf_map_lookup_elem(&spanbridge_go_client_callers_v1, key);
	__s64 nwrite = 0;
	if (!r || r->pc != c->pc || c->pconn_nwrite == OFFSET_ABSENT ||
	    bpf_probe_read_user(&nwrite, sizeof(nwrite), (void *)(c->pc + c->pconn_nwrite)) || nwrite != r->nwrite || !r->goid) {
		count(SYS_SKIP_GO_CLIENT_UNPARKED);
		return false;
	}
	*goid = r->goid;
	*parent_goid = r->parent_goid;
	count(SYS_LINK_GO_CLIENT_AHEAD);
	return true;
}

/* The start of a runtime.hchan (qcount, dataqsiz, buf, elemsize, recvx: offsets 0..56 in every Go
 * release since 1.17) and of a runtime.sudog (g at 0 .. c at 80), each read in one user read instead
 * of one per field (each ~60-80 ns here). Per CPU: the 6.1 verifier adds this global function's
 * stack to its caller's (512 bytes together). */
#define GO_HCHAN_WINDOW 64
#define GO_SUDOG_WINDOW 96
struct go_client_block {
	__u8 b[GO_SUDOG_WINDOW];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct go_client_block);
} go_client_blocks SEC(".maps");

/* The field of `size` bytes (8 or 2) at `off` of a block read at its start; false when outside. */
static __always_inline bool block_field(const struct go_client_block *blk, __u32 off, __u32 size, __u32 window, __u64 *out)
{
	if (off > window - size)
		return false;
	__u64 at = off;
	asm volatile("%0 &= %1" : "+r"(at) : "i"(127)); /* the bound the verifier sees, checked below */
	if (at > GO_SUDOG_WINDOW - 8)
		return false;
	__u64 v = 0;
	__builtin_memcpy(&v, &blk->b[at], 8);
	*out = size == 2 ? (v & 0xffff) : v;
	return true;
}

/* The goroutine parked on the response channel of the call the persistConn of `c` is writing, or
 * 0: the connection's entry is stale (its persistConn no longer owns `buf`; counted), or the caller
 * has not handed over or parked yet (*ahead set: go_client_ahead). Each read is checked against the
 * one before it, so a half-updated channel gives no goroutine rather than another's. Few stack
 * slots, reused: this runs in a global function under sys_client_write_enter, whose stacks the 6.1
 * verifier adds up (512 bytes together). */
static __always_inline __u64 go_client_caller(const struct go_client_conn *c, __u64 buf, struct go_client_key *key, bool *ahead)
{
	__u64 p = 0, resc = 0, v = 0, chbuf = 0;
	__u32 zero = 0;
	struct go_client_block *blk = bpf_map_lookup_elem(&go_client_blocks, &zero);
	if (!blk)
		return 0;
	if (bpf_probe_read_user(&p, sizeof(p), (void *)(c->pc + c->pconn_bw)) || !p ||
	    bpf_probe_read_user(&p, sizeof(p), (void *)(p + c->bufio_buf)) || p != buf) {
		/* A freed persistConn whose buffer address came back to another: never its parent. */
		bpf_map_delete_elem(&spanbridge_go_client_conns_v2, key);
		count(SYS_SKIP_GO_CLIENT_STALE);
		return 0;
	}
	/* p: reqch; its hchan's first bytes: qcount (1: handed over), dataqsiz, buf, elemsize, recvx */
	if (bpf_probe_read_user(&p, sizeof(p), (void *)(c->pc + c->pconn_reqch)) || !p ||
	    bpf_probe_read_user(blk->b, GO_HCHAN_WINDOW, (void *)p) ||
	    !block_field(blk, c->chan_qcount, 8, GO_HCHAN_WINDOW, &v) || v != 1) {
		*ahead = true; /* not handed over yet */
		return 0;
	}
	__u64 elemsize = 0, recvx = 0, dataqsiz = 0;
	if (!block_field(blk, c->chan_dataqsiz, 8, GO_HCHAN_WINDOW, &dataqsiz) || dataqsiz != 1 ||
	    !block_field(blk, c->chan_buf, 8, GO_HCHAN_WINDOW, &chbuf) || !chbuf ||
	    !block_field(blk, c->chan_elemsize, 2, GO_HCHAN_WINDOW, &elemsize) || c->rac_ch + 8 > elemsize ||
	    !block_field(blk, c->chan_recvx, 8, GO_HCHAN_WINDOW, &recvx) || recvx != 0 ||
	    bpf_probe_read_user(&resc, sizeof(resc), (void *)(chbuf + c->rac_ch)) || !resc ||
	    /* p: the first waiting sudog; its first bytes: g ... c (the channel it waits on) */
	    bpf_probe_read_user(&p, sizeof(p), (void *)(resc + c->chan_recvq + c->waitq_first)) || !p ||
	    bpf_probe_read_user(blk->b, GO_SUDOG_WINDOW, (void *)p) ||
	    !block_field(blk, c->sudog_c, 8, GO_SUDOG_WINDOW, &v) || v != resc ||
	    !block_field(blk, c->sudog_g, 8, GO_SUDOG_WINDOW, &v) || !v) {
		count(SYS_GO_CLIENT_UNPARKED_QUEUED);
		*ahead = true;
		return 0;
	}
	return v;
}

/* go_client_parent's answers */
enum go_client_found {
	GO_CLIENT_NO_CONN = 0, /* the buffer is no known persistConn's */
	GO_CLIENT_NO_PARENT = 1, /* a net/http persistConn's request (never pipelined), with no parent found */
	GO_CLIENT_LINKED = 2, /* ... and *out holds its parent */
};

/* A client request start written from buffer `buf` by process `tgid`: fills *out as a thread
 * context with exactly one active request (the server span of the call; its incoming tracestate is
 * found under its span id like any server request's), and returns GO_CLIENT_LINKED;
 * GO_CLIENT_NO_CONN when the buffer is no known connection's (one opened before the attach: counted
 * for the agent, which adopts it, src/tracers/go-client-adoption.ts); GO_CLIENT_NO_PARENT when the
 * caller cannot be found (go_client_caller), or it serves no server request (a new trace). */
__noinline int go_client_parent(__u32 tgid, __u64 buf, __u64 now, struct thread_ctx *out)
{
	/* A global function (verified once; its stack is its own). The key is built here: a map key
	 * must be on the stack or in a map value (a global function's pointer arguments are neither
	 * to the 6.1 verifier). */
	if (!out)
		return GO_CLIENT_NO_CONN;
	struct go_client_key key = { .tgid = tgid, ._pad = 0, .buf = buf };
	struct go_client_conn *c = bpf_map_lookup_elem(&spanbridge_go_client_conns_v2, &key);
	if (!c) {
		count(SYS_SKIP_GO_CLIENT_NO_CONN);
		count_by_tgid(&spanbridge_go_client_unknown_v1, tgid);
		return GO_CLIENT_NO_CONN;
	}
	/* Written once per connection and never changed in place: read through the map value. */
	__u32 g_goid = c->g_goid, g_parent_goid = c->g_parent_goid, flags = c->flags;
	bool ahead = false;
	__u64 parent_goid = 0;
	__u64 g = go_client_caller(c, buf, &key, &ahead);
	struct go_link_key k = { .tgid = tgid, ._pad = 0, .goid = 0 };
	if (g) {
		if (bpf_probe_read_user(&k.goid, sizeof(k.goid), (void *)(g + g_goid)) || !k.goid)
			return GO_CLIENT_NO_PARENT;
	} else if (!ahead || !go_client_ahead(c, &key, &k.goid, &parent_goid)) {
		return GO_CLIENT_NO_PARENT;
	}
	/* The call has written its request: a failure from here on is this path's span, not a dial's.
	 * Looked up first (lock-free): a dial is pending once per new connection, and a delete of a
	 * missing key still takes the bucket's lock (~0.2 us a request). */
	if (bpf_map_lookup_elem(&spanbridge_go_client_dials_v1, &k))
		bpf_map_delete_elem(&spanbridge_go_client_dials_v1, &k);
	struct go_server_ctx *s = bpf_map_lookup_elem(&spanbridge_go_server_v1, &k);
	/* The parent goroutine only when the caller serves no request itself (a goroutine its handler
	 * started): read here, not per call (a write ahead of its caller has it from the probe's record). */
	if (!s && (flags & GO_CLIENT_F_PARENT_GOID) && g &&
	    bpf_probe_read_user(&parent_goid, sizeof(parent_goid), (void *)(g + g_parent_goid)))
		parent_goid = 0;
	if (!s && (flags & GO_CLIENT_F_PARENT_GOID) && parent_goid) {
		k.goid = parent_goid;
		s = bpf_map_lookup_elem(&spanbridge_go_server_v1, &k);
	}
	if (!s)
		return GO_CLIENT_NO_PARENT;
	linked_parent(out, now, &s->ctx, s->parent_span_id, (s->flags & GO_SERVER_F_REMOTE_PARENT) ? 1 : 0);
	count(SYS_LINK_GO_CLIENT);
	return GO_CLIENT_LINKED;
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
