/* The server side of bpf/sys_http/sys_http.bpf.c: a request's context is decided when its head is complete
 * (bpf/sys_http/http_head.h reads it byte by byte across reads, up to HTTP_HEAD_MAX), still in the kernel
 * and before the handler can run: the application cannot act on a request it has not read.
 * Included by sys_http.bpf.c after its maps and helpers. */
#ifndef SPANBRIDGE_SYS_HTTP_SERVER_HEAD_H
#define SPANBRIDGE_SYS_HTTP_SERVER_HEAD_H

struct head_scan {
	struct scratch *s;
	__u64 ptr;   /* the read's first segment in user memory */
	__u32 len;   /* bytes of it to read */
	__u32 first; /* bytes of it already in the capture (s->e.data): not copied again */
	__u32 err;   /* the bytes could not be read */
	__u32 off;   /* where the head starts in the capture (a request pipelined behind another) */
};

/* Bytes of the first n (1..8) bytes of w (little-endian) up to and including the first '\n';
 * *lf = 1 when that '\n' is among them, else n bytes and *lf = 0. A '\n' is a zero byte of
 * w ^ "\n\n\n\n\n\n\n\n"; the lowest flagged byte is exact (borrows flag only bytes above it), and
 * the bytes up to it are counted by a multiplication, with no branch per byte. */
static __always_inline __u32 upto_lf(__u64 w, __u32 n, __u32 *lf)
{
	const __u64 ones = 0x0101010101010101ULL;
	__u64 x = w ^ 0x0a0a0a0a0a0a0a0aULL;
	__u64 t = (x - ones) & ~x & 0x8080808080808080ULL;
	__u32 c = ((((t & -t) - 1) & ones) * ones) >> 56; /* 1..8; 8 when t == 0 */
	if (t && c <= n) {
		*lf = 1;
		return c;
	}
	*lf = 0;
	return n;
}

/* One step of the head scan at byte hs->pos of this read: from the capture, then from 1 KiB
 * copies of the segment (s->chunk). Where a line does not matter (HL_SKIP: the request line,
 * other headers) up to 16 bytes are taken at once, to the line's end; a line start that cannot
 * begin a header of interest (not CR, LF, 't' or 'T') is such a line from its first byte, in the
 * same step; elsewhere (candidate names, traceparent/tracestate values) one byte goes through
 * head_feed. The result is the byte-by-byte reader's: in HL_SKIP only '\n' changes the state. */
static long head_scan_cb(__u32 step, struct head_scan *hs)
{
	struct scratch *s = hs->s;
	if (!s)
		return 1;
	/* The position lives in the map, not in hs on the stack: the verifier would otherwise track
	 * its exact value per step and never see the steps converge. */
	__u32 i = s->scan_pos;
	if (i >= hs->len)
		return 1;
	const __u8 *src;
	__u32 avail;
	if (i < hs->first) {
		src = s->e.data + ((hs->off + i) & (SYS_HTTP_CAPTURE - 1));
		avail = hs->first - i;
	} else {
		__u32 k = i & (SYS_HTTP_CAPTURE - 1);
		if (k == 0) {
			__u64 n = hs->len - i;
			if (n > SYS_HTTP_CAPTURE)
				n = SYS_HTTP_CAPTURE;
			asm volatile("" : "+r"(n)); /* the bound below is on the register passed (6.1 verifier) */
			if (n == 0 || n > SYS_HTTP_CAPTURE || bpf_probe_read_user(s->chunk, n, (void *)(hs->ptr + i))) {
				hs->err = 1;
				return 1;
			}
		}
		src = s->chunk + k;
		avail = SYS_HTTP_CAPTURE - k;
	}
	if (avail > hs->len - i)
		avail = hs->len - i;
	if (s->head.line == HL_START) {
		__u8 c = *src;
		if (c != '\r' && c != '\n' && lower(c) != 't')
			s->head.line = HL_SKIP; /* what head_feed does with it; counted below */
	}
	if (s->head.line == HL_SKIP) {
		__u64 w;
		__builtin_memcpy(&w, src, 8); /* in the scratch: the capture and chunk have slack behind */
		__u32 lf = 0;
		__u32 j = upto_lf(w, avail < 8 ? avail : 8, &lf);
		if (!lf && avail > 8) {
			__builtin_memcpy(&w, src + 8, 8); /* likewise (16 bytes of slack behind the chunk) */
			j += upto_lf(w, avail - 8 < 8 ? avail - 8 : 8, &lf);
		}
		if (lf)
			s->head.line = HL_START;
		s->head.seen += j;
		s->scan_pos = i + j;
		return 0;
	}
	s->scan_pos = i + 1;
	head_feed(&s->head, *src);
	return s->head.done != HEAD_OPEN;
}

/* Reads the head bytes of this read (the first `len` bytes of its first segment, `total` bytes
 * in all, the first `captured` of them already at the start of s->e.data) into s->head. Returns true when the context can be decided now: the head ended, reached
 * HTTP_HEAD_MAX, or goes on where it cannot be read (further iovecs, unreadable memory). */
static __always_inline bool head_scan(struct scratch *s, __u64 ptr, __u64 len, __u64 total, __u32 captured)
{
	__u32 room = HTTP_HEAD_MAX > s->head.seen ? HTTP_HEAD_MAX - s->head.seen : 0;
	struct head_scan hs = { .s = s, .ptr = ptr, .len = len < room ? len : room, .first = captured, .err = 0, .off = 0 };
	s->scan_pos = 0;
	bpf_loop(HTTP_HEAD_MAX, head_scan_cb, &hs, 0);
	if (s->head.done != HEAD_OPEN)
		return true;
	if (s->head.seen >= HTTP_HEAD_MAX) {
		s->head.done = HEAD_TOO_LONG;
		count(SYS_SKIP_HEAD_TOO_LONG);
		return true;
	}
	if (hs.err || total > len) {
		count(SYS_SKIP_HEAD_UNREAD);
		return true;
	}
	return false;
}

/* head_scan on this CPU's scratch, as a global function: verified once, not again at every state
 * of sys_data_exit that reaches a head read (its bpf_loop callback is verified per call site). */
__noinline int head_scan_read(__u64 ptr, __u64 len, __u64 total, __u32 captured)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!s)
		return 1;
	return head_scan(s, ptr, len, total, captured);
}

#ifdef SYS_HTTP_SK_INJECT
/* Keeps the request's tracestate (all its headers combined, validated; bpf/common/trace_context.h) under
 * the request's span id, for the client calls linked to it. */
static __always_inline void keep_tracestate(struct scratch *s, const struct conn_state *cs)
{
	__u32 n = ts_result(&s->head.ts);
	if (!n) {
		if (s->head.ts.verdict != TS_OK)
			count(SYS_SKIP_TRACESTATE_NOT_KEPT);
		return;
	}
	__builtin_memcpy(s->ts.value, s->head.ts.out, W3C_TRACESTATE_MAX);
	s->ts.len = n;
	s->ts._pad = 0;
	__u64 key;
	__builtin_memcpy(&key, cs->ctx.span_id, 8);
	bpf_map_update_elem(&request_tracestates, &key, &s->ts, BPF_ANY);
}
#endif

/* The context of a server request is decided in two global functions on this CPU's scratch (the
 * head in s->head, the record in s->e), called one after the other: each is verified once, not at
 * each of the many states of sys_data_exit that reach a decision (three call sites), and each has
 * its own stack next to sys_data_exit's (512 bytes for the deepest chain of calls), which one
 * function holding both would exceed. Each looks up the scratch itself, so what it hands helpers
 * as map keys and values is a map value or on its own stack: a global function's pointer
 * arguments are plain memory to the verifier, which 6.1 does not take as a map key. */

/* The request's own context: a valid incoming traceparent > the mirrored same-node client request
 * (black-box) > a new trace. Sets cs->ctx and, in s->e, the parent and how it was found. */
__noinline int server_context(struct conn_state *cs, __u64 now)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!cs || !s)
		return 0;
	struct sys_http_data_event *e = &s->e;
	struct tuple_key tuple = cs->tuple;
	__builtin_memset(e->parent_span_id, 0, 8);
	/* parsed into the scratch: its bytes are stored as they come, not kept in spilled registers */
	if (!tp_result(&s->head.tp, &s->parent)) {
		__builtin_memcpy(cs->ctx.trace_id, s->parent.trace_id, 16);
		__builtin_memcpy(e->parent_span_id, s->parent.span_id, 8);
		cs->ctx.flags = s->parent.flags;
		e->flags |= SYS_F_REMOTE_PARENT;
	} else {
		if (s->head.tp.headers)
			count(SYS_SKIP_BAD_TRACEPARENT);
		struct client_request *cr = bpf_map_lookup_elem(&client_requests, &tuple);
		if (cr && cr->ts_ns <= now && now - cr->ts_ns <= correlation_window_ns) {
			__builtin_memcpy(cs->ctx.trace_id, cr->ctx.trace_id, 16);
			__builtin_memcpy(e->parent_span_id, cr->ctx.span_id, 8);
			cs->ctx.flags = cr->ctx.flags;
			e->flags |= SYS_F_BLACKBOX_PARENT;
			count(SYS_LINK_BLACKBOX);
			bpf_map_delete_elem(&client_requests, &tuple);
		} else {
			if (cr) {
				count(SYS_SKIP_BLACKBOX_STALE);
				bpf_map_delete_elem(&client_requests, &tuple);
			}
			new_trace_id(cs->ctx.trace_id);
			cs->ctx.flags = 0x01;
		}
	}
	new_span_id(cs->ctx.span_id);
	cs->has_incoming = (e->flags & SYS_F_REMOTE_PARENT) ? 1 : 0;
	__builtin_memcpy(cs->incoming_span_id, e->parent_span_id, 8);

#ifdef SYS_HTTP_SK_INJECT
	if (sk_inject_pending && (e->flags & SYS_F_REMOTE_PARENT))
		keep_tracestate(s, cs);
#endif
	return 0;
}

/* The request just decided (cs->ctx, the parent in s->e) for the client calls it makes: asyncio,
 * Node.js, thread and Go links; the thread becomes "in a server request". */
__noinline int server_links(struct conn_state *cs, __u64 now, __u32 mode)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!cs || !s)
		return 0;
	struct sys_http_data_event *e = &s->e;
	__u64 id = bpf_get_current_pid_tgid();
	if (mode & SYS_MODE_ASYNCIO)
		asyncio_head_decided(id, cs, e->fd);
	else if (!(mode & (SYS_MODE_THREAD_LINK | SYS_MODE_NGINX_LINK | SYS_MODE_GO_SERVER)))
		node_head_decided(id, cs, e->fd, s);
	thread_release(cs, id >> 32);
	if (mode & SYS_MODE_THREAD_LINK) {
		struct thread_ctx *tc = bpf_map_lookup_elem(&thread_ctxs, &id);
		if (tc && now - tc->ts_ns <= thread_ctx_max_age_ns) {
			tc->active += 1; /* several active: ambiguous until all are answered */
			tc->ambiguous = 1;
		} else {
			struct thread_ctx n = { .ts_ns = now, .active = 1 };
			n.ctx = cs->ctx;
			if (e->flags & SYS_F_REMOTE_PARENT) {
				__builtin_memcpy(n.incoming_span_id, e->parent_span_id, 8);
				n.has_incoming = 1;
			}
			bpf_map_update_elem(&thread_ctxs, &id, &n, BPF_ANY);
		}
		cs->owner_tid = (__u32)id;
		cs->thread_active = 1;
	}
	if (mode & SYS_MODE_GO_SERVER)
		go_server_store(cs, s, e, now);
	return 0;
}

/* The context of the request whose head s->head holds (the record being built is s->e). */
static __always_inline void decide_server_context(struct conn_state *cs, __u64 now, __u32 mode)
{
	server_context(cs, now);
	server_links(cs, now, mode);
}

/* A read that starts a request: reads its head; decides now when the head is complete, else
 * keeps the reader with the connection (SYS_F2_CONTEXT_PENDING on this record). */
static __always_inline void server_request_start(struct conn_state *cs, const struct conn_key *key, struct scratch *s,
						 __u64 ptr, __u64 seg, __u64 ret, __u32 captured, __u64 now,
						 struct sys_http_data_event *e, __u32 mode)
{
	head_reset(&s->head);
	if (cs->head_open) {
		bpf_map_delete_elem(&heads, key);
		cs->head_open = 0;
	}
	if (head_scan_read(ptr, seg < ret ? seg : ret, ret, captured)) {
		decide_server_context(cs, now, mode);
		return;
	}
	thread_release(cs, key->tgid);
	if (bpf_map_update_elem(&heads, key, &s->head, BPF_ANY)) {
		count(SYS_SKIP_HEAD_UNREAD);
		decide_server_context(cs, now, mode);
		return;
	}
	cs->head_open = 1;
	e->flags2 |= SYS_F2_CONTEXT_PENDING;
	__builtin_memset(e->parent_span_id, 0, 8);
	__builtin_memset(&cs->ctx, 0, sizeof(cs->ctx));
}

/* A later read of a head that is still open (scan = true), or the response starting before the
 * head ended (scan = false): decides once the head is complete (SYS_F2_CONTEXT on this record). */
static __always_inline void server_head_more(struct conn_state *cs, const struct conn_key *key, struct scratch *s,
					     __u64 ptr, __u64 seg, __u64 ret, __u32 captured, __u64 now,
					     struct sys_http_data_event *e, __u32 mode, bool scan)
{
	struct head_reader *h = bpf_map_lookup_elem(&heads, key);
	if (!h) {
		/* evicted (LRU): decided with nothing read */
		count(SYS_SKIP_HEAD_UNREAD);
		head_reset(&s->head);
	} else {
		__builtin_memcpy(&s->head, h, sizeof(s->head));
		if (scan && !head_scan_read(ptr, seg < ret ? seg : ret, ret, captured)) {
			__builtin_memcpy(h, &s->head, sizeof(s->head));
			return;
		}
	}
	bpf_map_delete_elem(&heads, key);
	cs->head_open = 0;
	count(SYS_HEAD_SPLIT);
	e->flags2 |= SYS_F2_CONTEXT;
	decide_server_context(cs, now, mode);
}

#endif
