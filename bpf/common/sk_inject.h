/* Socket-level traceparent injection (bpf/sk_inject/sk_inject.bpf.c): the contract between the tracers that
 * DECIDE a client span's context (Go uprobes in bpf/go_http/go_http.bpf.c; the syscall tracer for other
 * languages) and the sk_msg program that WRITES it into the outgoing request.
 *
 * A tracer that wants the next HTTP/1.x request a thread sends to carry a traceparent puts an
 * entry in spanbridge_sk_inject_pending_v2 keyed by that thread (bpf_get_current_pid_tgid()),
 * right before the thread's send. The sk_msg program runs in the sending thread's context, takes
 * the entry (always: it sets its ts_ns to 0, which means none, and leaves it in place for the
 * thread's next request; sk_inject_pending_put), and inserts the header when the message is a
 * request without one. It reports the outcome in spanbridge_sk_inject_result_v1 under {tgid, cookie}, so the owner
 * can flag its client record (the cookie is the owner's: Go uses the *http.Request pointer; 0 =
 * no report; SK_INJECT_F_SKIPS_ONLY: only the outcomes that left the request without it).
 * Both maps are pinned by name so that every object shares them. */
#ifndef SPANBRIDGE_SK_INJECT_H
#define SPANBRIDGE_SK_INJECT_H

/* A pending entry older than this when the thread sends is stale and dropped (counted). */
#define SK_INJECT_MAX_AGE_NS (200ULL * 1000 * 1000)

/* pending flags */
#define SK_INJECT_F_HEADERS_CHECKED (1 << 0) /* the owner saw the whole header block: no traceparent */
#define SK_INJECT_F_TRACESTATE (1 << 1) /* a tracestate waits in spanbridge_sk_inject_tracestate_v2 */
#define SK_INJECT_F_REPLACE (1 << 2) /* the request carries the traceparent its sender's own server
				      * request came in with (a proxy forwarding it): overwrite that
				      * value (same trace, same length) with ctx instead of inserting */
#define SK_INJECT_F_SKIPS_ONLY (1 << 3) /* the owner reads only outcomes that left the request without
					 * the context: none is stored for an inserted or replaced one
					 * (no hash update per request; the owner's lookup misses) */

/* Longest tracestate value propagated (W3C allows 32 members; longer values are not propagated). */
#define SK_INJECT_TRACESTATE_MAX W3C_TRACESTATE_MAX

/* Further requests pipelined in one send that can get their own header. */
#define SK_INJECT_MAX_EXTRA 3

struct sk_inject_pending {
	__u64 ts_ns;
	__u64 cookie;
	struct trace_context ctx; /* the client span: trace id, span id, flags */
	__u8 flags;
	__u8 extra; /* requests pipelined behind the first in the same send (<= SK_INJECT_MAX_EXTRA) */
	__u16 extra_off[SK_INJECT_MAX_EXTRA]; /* where each starts in the send (before any insertion) */
	/* their client spans: the same trace, parent and flags as ctx, these span ids */
	__u8 extra_span_ids[SK_INJECT_MAX_EXTRA][8];
};

struct sk_inject_result_key {
	__u32 tgid;
	__u32 _pad;
	__u64 cookie;
};

/* outcomes (also the indexes of the per-CPU counters in sk_inject.bpf.c) */
enum sk_inject_outcome {
	SK_INJECT_DONE = 0,              /* traceparent inserted after the request line */
	SK_INJECT_SKIP_STALE = 1,        /* pending entry too old: dropped */
	SK_INJECT_SKIP_NOT_HTTP = 2,     /* not an HTTP/1.x request line (TLS, HTTP/2, garbage) */
	SK_INJECT_SKIP_LINE_TOO_LONG = 3, /* no end of request line within the inspected window */
	SK_INJECT_SKIP_HAS_TRACEPARENT = 4, /* the request already carries one: never two */
	SK_INJECT_SKIP_HEAD_TOO_LONG = 5, /* headers longer than the window and not checked by the owner */
	SK_INJECT_SKIP_PUSH_FAILED = 6,  /* bpf_msg_push_data/pull_data failed: left (or restored) untouched */
	SK_INJECT_SOCK_ADDED = 7,        /* a connection of a selected process entered the SOCKHASH */
	SK_INJECT_SOCK_MAP_FULL = 8,     /* the SOCKHASH was full: that connection is not injected */
	SK_INJECT_MSG_SEEN = 9,          /* messages the sk_msg program saw with a pending entry */
	SK_INJECT_TRACESTATE_DONE = 10,  /* the incoming tracestate was inserted after the traceparent */
	SK_INJECT_TRACESTATE_SKIPPED = 11, /* not inserted: missing, too long, not printable, push failed */
	SK_INJECT_PIPELINED_DONE = 12,   /* a further request pipelined in the same send got its header */
	SK_INJECT_PIPELINED_SKIPPED = 13, /* ... was left alone (has one, not a request, push failed) */
	SK_INJECT_SPLIT_WAIT = 14,       /* request head not ended in its first send: waits with the socket */
	SK_INJECT_SPLIT_DONE = 15,       /* ... inserted before the blank line of a later send */
	SK_INJECT_SPLIT_SKIPPED = 16,    /* ... left alone (blank line's CR already sent, not a request,
					  * a new request first) */
	SK_INJECT_REPLACED = 17,         /* a forwarded traceparent value was overwritten in place with ctx */
	SK_INJECT_SKIP_REPLACE = 18,     /* ... could not be (not found in the window, another trace, not
					  * 55 bytes): left as the application sent it */
	SK_INJECT_NODELAY_FAILED = 19, /* TCP_NODELAY could not be set on a registered connection: its
					 * requests may wait for the peer's delayed ACK (Nagle) */
	SK_INJECT_COALESCE_FAILED = 20, /* the head region with its inserted lines could not be made one
					 * scatterlist element (no memory): sent as several segments */
	SK_INJECT_OUTCOME_MAX = 21,
};

struct sk_inject_result {
	__u64 ts_ns;
	__u32 outcome; /* enum sk_inject_outcome */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid of the sending thread */
	__type(value, struct sk_inject_pending);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spanbridge_sk_inject_pending_v2 SEC(".maps");

/* Leaves *p for the current thread's next send. Written in place over the thread's entry when it
 * has one (taken or not): only this thread writes it and only its own send reads it, one after the
 * other, so no lock is needed; the LRU map allocates an element only for a thread's first. */
static __always_inline void sk_inject_pending_put(__u64 id, const struct sk_inject_pending *p)
{
	struct sk_inject_pending *old = bpf_map_lookup_elem(&spanbridge_sk_inject_pending_v2, &id);
	if (old)
		*old = *p;
	else
		bpf_map_update_elem(&spanbridge_sk_inject_pending_v2, &id, p, BPF_ANY);
}

/* The tracestate to send with the pending traceparent (the incoming request's value, W3C). */
struct sk_inject_tracestate {
	__u32 len;
	__u32 _pad;
	char value[SK_INJECT_TRACESTATE_MAX];
};

/* Keyed like the pending entry (sending thread); read only when its SK_INJECT_F_TRACESTATE is set. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct sk_inject_tracestate);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spanbridge_sk_inject_tracestate_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sk_inject_result_key);
	__type(value, struct sk_inject_result);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spanbridge_sk_inject_result_v1 SEC(".maps");

/* Owner side: takes (and removes) the outcome for cookie. Returns -1 when there is none. */
static __always_inline int sk_inject_take_result(__u32 tgid, __u64 cookie)
{
	struct sk_inject_result_key k = { .tgid = tgid, ._pad = 0, .cookie = cookie };
	struct sk_inject_result *r = bpf_map_lookup_elem(&spanbridge_sk_inject_result_v1, &k);
	if (!r)
		return -1;
	int outcome = r->outcome;
	bpf_map_delete_elem(&spanbridge_sk_inject_result_v1, &k);
	return outcome;
}

#endif
