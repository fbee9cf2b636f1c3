// SPDX-License-Identifier: GPL-2.0
/*
 * Lockdown-proof traceparent injection at the socket layer (no bpf_probe_write_user).
 *
 *   sock_ops (cgroup v2 root): BPF_SOCK_OPS_TCP_CONNECT_CB runs in the connecting process's
 *       context: connections of selected processes (sk_inject_tgids) are remembered by socket
 *       cookie; BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB then puts them in the SOCKHASH sk_inject_socks.
 *   sk_msg (on that SOCKHASH): runs in the sending thread's context for every message sent on
 *       those connections. When the thread has a pending context (bpf/common/sk_inject.h, left moments
 *       before by the tracer that decided the client span) and the message starts with an
 *       HTTP/1.x request line, `traceparent: 00-<trace>-<span>-<flags>\r\n` is inserted right
 *       after the request line (bpf_msg_push_data + bpf_msg_pull_data), and after the request line
 *       of each further request the owner found pipelined in the same send, with the ids it decided
 *       for them. The pending entry is consumed either way; TLS, HTTP/2, garbage and request lines longer than the window pass
 *       untouched and are counted. A request that already carries a traceparent is never changed.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "trace_context.h"
#include "sk_inject.h"
#include "bytes.h"
#include "counters.h"

char LICENSE[] SEC("license") = "GPL";

#define SK_PASS 1
#define SOL_TCP_ 6     /* linux/tcp.h values (vmlinux.h has no macros) */
#define TCP_NODELAY_ 1

/* Settings, set by the agent before load. */
const volatile __u64 pending_max_age_ns = SK_INJECT_MAX_AGE_NS;

#define SK_WINDOW 4096   /* bytes of a message inspected (request line + headers) */
#define SK_METHOD_MAX 16 /* longest method accepted in a request line */
#define TS_LINE_MAX (SK_INJECT_TRACESTATE_MAX + 14) /* "tracestate: " + value + CRLF */
#define SPLIT_MAX_HEAD 16384 /* a head spread over sends longer than this is left alone */

/* Processes whose outgoing connections are registered (host tgid -> 1 selected by the agent,
 * 2 inherited at fork). The kernel keeps it over the lifecycle, like the syscall tracer's
 * traced_tgids: a forked child inherits it (its first connect is already registered), exec and
 * exit remove it (the agent re-decides). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} sk_inject_tgids SEC(".maps");

/* Socket cookie -> tgid, between connect() and the handshake's end. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u32);
} sk_inject_connecting SEC(".maps");

/* Established outgoing connections of selected processes; the sk_msg program is attached here.
 * Sockets leave the map by themselves when they close. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* socket cookie */
	__type(value, __u64);
} sk_inject_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SK_INJECT_OUTCOME_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sk_inject_counters SEC(".maps");

struct sk_scratch {
	char bytes[2 * SK_WINDOW];
	/* What one request gets: the traceparent line, then (when there is one) the tracestate line
	 * "tracestate: " + value + "\r\n" at TRACEPARENT_LINE_LEN; sized for the 1023 index mask. */
	char ins[1024];
	struct sk_inject_pending p; /* the pending entry being served (kept off the 512-byte stack) */
	struct trace_context extra_ctx;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sk_scratch);
} sk_inject_scratch SEC(".maps");

/* Keep the types in BTF so their TypeScript view can be generated from this object. */
const struct sk_inject_pending *_unused_sk_inject_pending __attribute__((unused));
const struct sk_inject_result *_unused_sk_inject_result __attribute__((unused));
const struct sk_inject_tracestate *_unused_sk_inject_tracestate __attribute__((unused));
const enum sk_inject_outcome *_unused_sk_inject_outcome __attribute__((unused));

static __always_inline void count(__u32 outcome)
{
	counter_inc(&sk_inject_counters, outcome);
}

SEC("raw_tp/sched_process_fork")
int sk_inject_process_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	if (!bpf_map_lookup_elem(&sk_inject_tgids, &ptgid))
		return 0;
	__u32 pid = BPF_CORE_READ(child, pid);
	__u32 tgid = BPF_CORE_READ(child, tgid);
	if (pid != tgid)
		return 0; /* a thread */
	__u8 inherited = 2;
	bpf_map_update_elem(&sk_inject_tgids, &tgid, &inherited, BPF_ANY);
	return 0;
}

/* Exec and exit run for every process on the machine: a lookup (lock-free) first, and the delete
 * (which takes the bucket's lock) only for a registered one. */
static __always_inline void forget(__u32 tgid)
{
	if (bpf_map_lookup_elem(&sk_inject_tgids, &tgid))
		bpf_map_delete_elem(&sk_inject_tgids, &tgid);
}

SEC("tracepoint/sched/sched_process_exec")
int sk_inject_process_exec(void *ctx)
{
	forget(bpf_get_current_pid_tgid() >> 32);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int sk_inject_process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)id == (__u32)(id >> 32))
		forget(id >> 32);
	return 0;
}

SEC("sockops")
int sk_inject_sockops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;
	if (op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
		/* connect() of the process itself: process context. The tgid comes from the task:
		 * sock_ops may call bpf_get_current_pid_tgid only since 6.10 (6.1 refuses it). */
		struct task_struct *task = bpf_get_current_task_btf();
		__u32 tgid = task->tgid;
		if (!bpf_map_lookup_elem(&sk_inject_tgids, &tgid))
			return 1;
		__u64 cookie = bpf_get_socket_cookie(skops);
		bpf_map_update_elem(&sk_inject_connecting, &cookie, &tgid, BPF_ANY);
	} else if (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB) {
		/* The handshake's end (softirq: the current task is anyone). */
		__u64 cookie = bpf_get_socket_cookie(skops);
		if (!bpf_map_lookup_elem(&sk_inject_connecting, &cookie))
			return 1;
		bpf_map_delete_elem(&sk_inject_connecting, &cookie);
		/* An inserted header makes the kernel send a request in more than one piece (the sk_msg
		 * scatterlist); with Nagle on, the last piece waits for the peer's delayed ACK: +40 ms
		 * per request on a kept-alive connection (measured: nginx upstream keep-alive, p50 0.4 ms
		 * -> 43.9 ms). Nagle off on the sockets that may get a header (same bytes, sent at once):
		 * 0.54 ms. Failing leaves the socket as it was (counted). */
		int one = 1;
		if (bpf_setsockopt(skops, SOL_TCP_, TCP_NODELAY_, &one, sizeof(one)))
			count(SK_INJECT_NODELAY_FAILED);
		if (bpf_sock_hash_update(skops, &sk_inject_socks, &cookie, BPF_NOEXIST))
			count(SK_INJECT_SOCK_MAP_FULL);
		else
			count(SK_INJECT_SOCK_ADDED);
	}
	return 1;
}

/* x & m, kept by the compiler so that the verifier sees the bound. */
#define MASKED(x, m)                                              \
	({                                                        \
		__u64 __v = (x);                                  \
		asm volatile("%0 &= %1" : "+r"(__v) : "i"(m));    \
		__v;                                              \
	})

struct find_ctx {
	const char *b;
	__u32 from;
	__u32 len;
	__s32 found;
	__u32 _pad;
};

/* First CR or LF at or after `from`. */
static long find_eol(__u32 i, struct find_ctx *fc)
{
	__u32 at = fc->from + i;
	if (at >= fc->len || at >= SK_WINDOW)
		return 1;
	char c = fc->b[MASKED(at, SK_WINDOW - 1)];
	if (c == '\r' || c == '\n') {
		fc->found = at;
		return 1;
	}
	return 0;
}

#define HEAD_END -2

/* Walks header lines from `from`: found = offset of a `traceparent:` line, HEAD_END at the blank
 * line ending the head, -1 when the window ends first. */
static long find_traceparent(__u32 i, struct find_ctx *fc)
{
	__u32 at = fc->from + i;
	if (at >= fc->len || at >= SK_WINDOW)
		return 1;
	const char *b = fc->b;
	if (at > fc->from && b[MASKED(at - 1, SK_WINDOW - 1)] != '\n')
		return 0;
	if (b[MASKED(at, SK_WINDOW - 1)] == '\r' || b[MASKED(at, SK_WINDOW - 1)] == '\n') {
		fc->found = HEAD_END;
		return 1;
	}
	if (at + 12 > fc->len)
		return 0; /* too short to be a traceparent line: keep looking for the head's end */
	const char want[] = "traceparent:";
	for (int k = 0; k < 12; k++) {
		char c = b[MASKED(at + k, 2 * SK_WINDOW - 1)];
		if (k < 11)
			c = lower(c);
		if (c != want[k])
			return 0;
	}
	fc->found = at;
	return 1;
}

struct ts_copy_ctx {
	const char *src;
	char *dst;
	__u32 len;
	__u32 bad;
};

/* Copies value byte i after "tracestate: "; only printable ASCII (no CR/LF can ever be sent). */
static long ts_copy(__u32 i, struct ts_copy_ctx *tc)
{
	if (i >= tc->len || i >= SK_INJECT_TRACESTATE_MAX)
		return 1;
	char c = tc->src[MASKED(i, SK_INJECT_TRACESTATE_MAX - 1)];
	if (c < 0x20 || c > 0x7e) {
		tc->bad = 1;
		return 1;
	}
	tc->dst[MASKED(TRACEPARENT_LINE_LEN + 12 + i, 1023)] = c;
	return 0;
}

struct method_ctx {
	const char *b;
	__u32 from;
	__u32 m; /* offset of the SP after the method, relative to `from` */
	__u32 bad;
	__u32 _pad;
};

/* The method: 1..16 uppercase letters, then SP. */
static long scan_method(__u32 i, struct method_ctx *mc)
{
	char c = mc->b[MASKED(mc->from + i, 2 * SK_WINDOW - 1)];
	if (c == ' ') {
		mc->m = i;
		return 1;
	}
	if (c < 'A' || c > 'Z' || i >= SK_METHOD_MAX) {
		mc->bad = 1;
		return 1;
	}
	return 0;
}

/* Builds `tracestate: <value>\r\n` after the traceparent line in s->ins from the owner's value
 * (taken and removed). Returns its length, 0 when there is none to send (missing, too long, not
 * printable). */
static __always_inline __u32 prepare_tracestate(__u64 id, struct sk_scratch *s)
{
	struct sk_inject_tracestate *t = bpf_map_lookup_elem(&spanbridge_sk_inject_tracestate_v2, &id);
	if (!t)
		return 0;
	__u32 len = t->len;
	__u32 bad = len == 0 || len > SK_INJECT_TRACESTATE_MAX;
	if (!bad) {
		const char head[] = "tracestate: ";
		__builtin_memcpy(s->ins + TRACEPARENT_LINE_LEN, head, 12);
		struct ts_copy_ctx tc = { .src = t->value, .dst = s->ins, .len = len, .bad = 0 };
		bpf_loop(SK_INJECT_TRACESTATE_MAX, ts_copy, &tc, 0);
		bad = tc.bad;
		s->ins[MASKED(TRACEPARENT_LINE_LEN + 12 + len, 1023)] = '\r';
		s->ins[MASKED(TRACEPARENT_LINE_LEN + 13 + len, 1023)] = '\n';
	}
	bpf_map_delete_elem(&spanbridge_sk_inject_tracestate_v2, &id);
	return bad ? 0 : len + 14;
}

/* Checks the request that starts at `from` in the inspected copy: `METHOD SP target SP HTTP/1.x
 * CRLF`, and (unless the owner did) that its head has no traceparent. On SK_INJECT_DONE, *line_end
 * is the offset right after the request line's CRLF. */
static __noinline __u32 check_request(const char *b, __u32 from, __u32 n, bool headers_checked, __u32 *line_end)
{
	if (from + 16 > n || from >= SK_WINDOW) /* shorter than "GET / HTTP/1.1\r\n" */
		return SK_INJECT_SKIP_NOT_HTTP;
	struct method_ctx mc = { .b = b, .from = from, .m = 0, .bad = 0 };
	bpf_loop(SK_METHOD_MAX + 1, scan_method, &mc, 0);
	__u32 m = from + mc.m;
	if (mc.bad || mc.m == 0 || mc.m > SK_METHOD_MAX)
		return SK_INJECT_SKIP_NOT_HTTP;
	/* target SP HTTP/1.x CRLF */
	struct find_ctx fc = { .b = b, .from = m + 1, .len = n, .found = -1 };
	bpf_loop(SK_WINDOW, find_eol, &fc, 0);
	if (fc.found < 0)
		return SK_INJECT_SKIP_LINE_TOO_LONG;
	__u32 cr = fc.found;
	if (cr >= SK_WINDOW - 1 || cr < m + 11)
		return SK_INJECT_SKIP_NOT_HTTP;
	if (cr + 1 >= n)
		return SK_INJECT_SKIP_LINE_TOO_LONG;
	const char *v = b + MASKED(cr - 9, SK_WINDOW - 1);
	if (b[MASKED(cr, SK_WINDOW - 1)] != '\r' || b[MASKED(cr + 1, SK_WINDOW - 1)] != '\n' || v[0] != ' ' ||
	    v[1] != 'H' || v[2] != 'T' || v[3] != 'T' || v[4] != 'P' || v[5] != '/' || v[6] != '1' ||
	    v[7] != '.' || v[8] < '0' || v[8] > '9' || cr - 9 <= m + 1)
		return SK_INJECT_SKIP_NOT_HTTP;
	*line_end = cr + 2;
	if (!headers_checked) {
		struct find_ctx hc = { .b = b, .from = cr + 2, .len = n, .found = -1 };
		bpf_loop(SK_WINDOW, find_traceparent, &hc, 0);
		if (hc.found >= 0)
			return SK_INJECT_SKIP_HAS_TRACEPARENT;
		if (hc.found != HEAD_END)
			return SK_INJECT_SKIP_HEAD_TOO_LONG;
	}
	return SK_INJECT_DONE;
}

/* Inserts s->ins (the traceparent line, then tslen bytes of tracestate line) at `at` of the
 * message in one push. Returns the bytes inserted (0 = none: the message is left as it was). */
static __noinline __u32 insert_lines(struct sk_msg_md *msg, __u32 at, __u32 tslen, struct sk_scratch *s)
{
	if (tslen > TS_LINE_MAX)
		tslen = 0;
	__u32 total = TRACEPARENT_LINE_LEN + tslen;
	if (at > 4 * SK_WINDOW)
		return 0;
	if (bpf_msg_push_data(msg, at, total, 0))
		return 0;
	if (bpf_msg_pull_data(msg, at, at + total, 0)) {
		bpf_msg_pop_data(msg, at, total, 0);
		return 0;
	}
	char *d = (void *)(long)msg->data;
	void *data_end = (void *)(long)msg->data_end;
	if ((void *)(d + TRACEPARENT_LINE_LEN) > data_end) {
		bpf_msg_pop_data(msg, at, total, 0);
		return 0;
	}
	__builtin_memcpy(d, s->ins, TRACEPARENT_LINE_LEN);
	for (__u32 i = TRACEPARENT_LINE_LEN; i < TRACEPARENT_LINE_LEN + TS_LINE_MAX; i++) {
		if (i >= total)
			break;
		char *at_i = d + i;
		if ((void *)(at_i + 1) > data_end) {
			bpf_msg_pop_data(msg, at, total, 0);
			return 0;
		}
		*at_i = s->ins[MASKED(i, 1023)];
	}
	if (tslen)
		count(SK_INJECT_TRACESTATE_DONE);
	return total;
}

/* After lines were inserted: the message's first bytes (the heads and what was inserted) become
 * one scatterlist element again. tcp_bpf_push hands each element to its own tcp_sendmsg_locked
 * call, and on these TCP_NODELAY sockets each goes out as a segment of its own: a reader on
 * another CPU could take a head cut at an insertion point (a pipelined request's head cut that way
 * gets no context: bpf/sys_http/sys_http_pipelined.h), and each cut costs the server a read. */
#define SK_COALESCE_MAX (2 * SK_WINDOW) /* an order-1 allocation at most */
static __always_inline void coalesce_head(struct sk_msg_md *msg)
{
	__u32 n = msg->size;
	if (n > SK_COALESCE_MAX)
		n = SK_COALESCE_MAX;
	if (n && bpf_msg_pull_data(msg, 0, n, 0))
		count(SK_INJECT_COALESCE_FAILED);
}

/* Copies the message's first bytes (up to the window) into s->bytes; returns how many, 0 on failure. */
static __always_inline __u32 copy_window(struct sk_msg_md *msg, struct sk_scratch *s)
{
	__u32 size = msg->size;
	__u32 n = size < SK_WINDOW ? size : SK_WINDOW;
	if (n == 0 || bpf_msg_pull_data(msg, 0, n, 0))
		return 0;
	void *data = (void *)(long)msg->data;
	void *data_end = (void *)(long)msg->data_end;
	if (data + n > data_end)
		n = data_end - data;
	if (n == 0 || n > SK_WINDOW || bpf_probe_read_kernel(s->bytes, MASKED(n, 2 * SK_WINDOW - 1), data))
		return 0;
	return n;
}

#include "sk_inject_split.h"

/* The owner found, in the request it hands over, the traceparent its own server request came in
 * with (a proxy forwarding it): that value is overwritten with the client span's context, in
 * place. Only a 55-byte value of the same trace, in the first request's head within the window,
 * followed by CRLF; anything else is left as the application sent it. */
static __noinline __u32 replace_forwarded(struct sk_msg_md *msg, struct sk_scratch *s, __u32 n)
{
	__u32 line_end = 0;
	__u32 first = check_request(s->bytes, 0, n, true, &line_end);
	if (first != SK_INJECT_DONE)
		return first == SK_INJECT_SKIP_NOT_HTTP ? first : SK_INJECT_SKIP_REPLACE;
	struct find_ctx hc = { .b = s->bytes, .from = line_end, .len = n, .found = -1 };
	bpf_loop(SK_WINDOW, find_traceparent, &hc, 0);
	if (hc.found < 0)
		return SK_INJECT_SKIP_REPLACE;
	__u32 v = hc.found + 12;
	for (int k = 0; k < 4; k++) {
		char c = s->bytes[MASKED(v, 2 * SK_WINDOW - 1)];
		if (c == ' ' || c == '\t')
			v++;
	}
	if (v + TRACEPARENT_LEN + 1 >= n || v >= SK_WINDOW ||
	    s->bytes[MASKED(v + TRACEPARENT_LEN, 2 * SK_WINDOW - 1)] != '\r')
		return SK_INJECT_SKIP_REPLACE;
	format_traceparent_line(s->ins, &s->p.ctx, 't');
	/* "00-" and the trace id: the same trace, version 00 */
	for (int k = 0; k < 35; k++)
		if (s->bytes[MASKED(v + k, 2 * SK_WINDOW - 1)] != s->ins[13 + k])
			return SK_INJECT_SKIP_REPLACE;
	if (bpf_msg_pull_data(msg, v, v + TRACEPARENT_LEN, 0))
		return SK_INJECT_SKIP_PUSH_FAILED;
	char *d = (void *)(long)msg->data;
	void *data_end = (void *)(long)msg->data_end;
	if ((void *)(d + TRACEPARENT_LEN) > data_end)
		return SK_INJECT_SKIP_PUSH_FAILED;
	__builtin_memcpy(d, s->ins + 13, TRACEPARENT_LEN);
	return SK_INJECT_REPLACED;
}

/* The first request of the message (the pending context) and then each further request the
 * owner found pipelined in the same send (extra ids at their offsets in the send): every one that
 * has no traceparent gets its own. Offsets in `s->bytes` are the send's; `shift` counts what was
 * inserted before. Returns the first request's outcome; the others are counted. */
static __always_inline __u32 inspect_and_inject(struct sk_msg_md *msg, struct sk_scratch *s, __u64 id)
{
	const struct sk_inject_pending *p = &s->p;
	__u64 now = bpf_ktime_get_ns();
	if (now < p->ts_ns || now - p->ts_ns > pending_max_age_ns)
		return SK_INJECT_SKIP_STALE;
	__u32 size = msg->size;
	if (size < 16) /* shorter than "GET / HTTP/1.1\r\n" */
		return SK_INJECT_SKIP_NOT_HTTP;
	__u32 n = copy_window(msg, s);
	if (!n)
		return SK_INJECT_SKIP_PUSH_FAILED;
	if (n < 16)
		return SK_INJECT_SKIP_NOT_HTTP;
	if (p->flags & SK_INJECT_F_REPLACE)
		return replace_forwarded(msg, s, n);

	__u32 line_end = 0;
	__u32 first = check_request(s->bytes, 0, n, p->flags & SK_INJECT_F_HEADERS_CHECKED, &line_end);
	if ((first == SK_INJECT_SKIP_LINE_TOO_LONG || first == SK_INJECT_SKIP_HEAD_TOO_LONG) && n == size && n < SK_WINDOW)
		return start_split(msg, s, id, n); /* the head goes on in the thread's next send(s) */
	if (first != SK_INJECT_DONE)
		return first;
	__u32 tslen = (p->flags & SK_INJECT_F_TRACESTATE) ? prepare_tracestate(id, s) : 0;
	if (p->flags & SK_INJECT_F_TRACESTATE && !tslen)
		count(SK_INJECT_TRACESTATE_SKIPPED);
	format_traceparent_line(s->ins, &p->ctx, 't');
	__u32 shift = insert_lines(msg, line_end, tslen, s);
	if (!shift)
		return SK_INJECT_SKIP_PUSH_FAILED;

	__u32 extra = p->extra < SK_INJECT_MAX_EXTRA ? p->extra : SK_INJECT_MAX_EXTRA;
#pragma unroll
	for (int k = 0; k < SK_INJECT_MAX_EXTRA; k++) {
		if (k >= extra)
			continue;
		__u32 outcome = check_request(s->bytes, p->extra_off[k], n, false, &line_end);
		if (outcome == SK_INJECT_DONE) {
			s->extra_ctx = p->ctx;
			__builtin_memcpy(s->extra_ctx.span_id, p->extra_span_ids[k], 8);
			format_traceparent_line(s->ins, &s->extra_ctx, 't');
			__u32 added = insert_lines(msg, line_end + shift, tslen, s);
			if (added)
				shift += added;
			else
				outcome = SK_INJECT_SKIP_PUSH_FAILED;
		}
		count(outcome == SK_INJECT_DONE ? SK_INJECT_PIPELINED_DONE : SK_INJECT_PIPELINED_SKIPPED);
	}
	coalesce_head(msg);
	return SK_INJECT_DONE;
}

SEC("sk_msg")
int sk_inject_msg(struct sk_msg_md *msg)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sk_inject_pending *pp = bpf_map_lookup_elem(&spanbridge_sk_inject_pending_v2, &id);
	__u32 zero = 0;
	if (!pp || !pp->ts_ns) {
		/* No new request: a head still open from an earlier send of this socket? */
		struct bpf_sock *sk = msg->sk;
		struct sk_inject_split *st = sk ? bpf_sk_storage_get(&sk_inject_splits, sk, 0, 0) : NULL;
		struct sk_scratch *s = st && st->phase ? bpf_map_lookup_elem(&sk_inject_scratch, &zero) : NULL;
		if (s) {
			__u32 outcome = continue_split(msg, st, s);
			if (outcome)
				count(outcome);
		}
		return SK_PASS;
	}
	struct sk_scratch *s = bpf_map_lookup_elem(&sk_inject_scratch, &zero);
	if (!s) {
		pp->ts_ns = 0;
		return SK_PASS;
	}
	s->p = *pp;
	/* Taken in place (bpf/common/sk_inject.h, sk_inject_pending_put): the entry stays for the thread's next request,
	 * which then writes it in place too, with no LRU delete here nor allocation there. */
	pp->ts_ns = 0;
	/* A new request: whatever head an earlier send left open is over. */
	struct sk_inject_split *prev = msg->sk ? bpf_sk_storage_get(&sk_inject_splits, msg->sk, 0, 0) : NULL;
	if (prev && prev->phase) {
		prev->phase = SPLIT_NONE;
		count(SK_INJECT_SPLIT_SKIPPED);
	}
	count(SK_INJECT_MSG_SEEN);
	__u32 outcome = inspect_and_inject(msg, s, id);
	count(outcome);
	bool sent = outcome == SK_INJECT_DONE || outcome == SK_INJECT_REPLACED;
	if (s->p.cookie && !(sent && (s->p.flags & SK_INJECT_F_SKIPS_ONLY))) {
		struct sk_inject_result_key k = { .tgid = id >> 32, ._pad = 0, .cookie = s->p.cookie };
		struct sk_inject_result r = { .ts_ns = bpf_ktime_get_ns(), .outcome = outcome, ._pad = 0 };
		bpf_map_update_elem(&spanbridge_sk_inject_result_v1, &k, &r, BPF_ANY);
	}
	return SK_PASS;
}
