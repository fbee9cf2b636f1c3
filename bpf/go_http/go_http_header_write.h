/*
 * The outgoing request's headers (included by go_http.bpf.c after go_http_client_calls.h), on the
 * Transport's write goroutine: (*Request).write entry finds the client call (through the Header
 * map for the Transport's copies), Header.writeSubset entry/RETs scan what was serialised (an
 * application's traceparent, a forwarded one) and inject (bpf_probe_write_user) or arm the sk_msg
 * hand-over, which persistConnWriter.Write (the flush) moves to the flushing thread.
 */
#ifndef SPANBRIDGE_GO_HTTP_HEADER_WRITE_H
#define SPANBRIDGE_GO_HTTP_HEADER_WRITE_H

SEC("uprobe")
int go_request_write(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off)
		return 0;
	/* (*Request).write(r *Request, w io.Writer, ...): r in RAX, w (itab, data) in RBX/RCX. */
	struct req_key rkey = { .tgid = tgid, .req = (__u64)GO_ARG1(ctx) };
	if (!bpf_map_lookup_elem(&client_requests, &rkey)) {
		/* The Transport's copy of a request with a body: found by its Header map. */
		struct header_key hk = { .tgid = tgid };
		if (off->req_header == OFFSET_ABSENT ||
		    bpf_probe_read_user(&hk.header, sizeof(hk.header), (void *)rkey.req + off->req_header) || !hk.header)
			return 0;
		struct header_owner *o = bpf_map_lookup_elem(&client_by_header, &hk);
		if (!o || !o->req)
			return 0; /* not a traced call, or two share the map (counted at roundTrip's return) */
		rkey.req = o->req;
		if (!bpf_map_lookup_elem(&client_requests, &rkey))
			return 0;
	}
	struct goroutine_key gkey;
	if (goroutine_key_of(ctx, off, &gkey))
		return 0;
	struct pending_write p = { .req = rkey.req, .writer = (__u64)GO_ARG3(ctx), .n_start = -1, .flushed = 0 };
	bpf_map_update_elem(&pending_writes, &gkey, &p, BPF_ANY);
	return 0;
}

SEC("uprobe")
int go_header_write_subset(struct pt_regs *ctx)
{
	struct goroutine_key gkey;
	const struct go_offsets *off = current_goroutine(ctx, &gkey);
	if (!off)
		return 0;
	struct pending_write *p = bpf_map_lookup_elem(&pending_writes, &gkey);
	/* Header.writeSubset(h Header, w io.Writer, ...): h in RAX, w (itab, data) in RBX/RCX.
	 * Only the first call after Request.write (the request's own headers), on its writer. */
	if (!p || p->n_start >= 0 || (__u64)GO_ARG3(ctx) != p->writer)
		return 0;
	__s64 n = -1;
	if (bpf_probe_read_user(&n, sizeof(n), (void *)p->writer + off->bufio_n) || n < 0)
		return 0;
	p->n_start = n;
	return 0;
}

/* persistConnWriter.Write is where the connection's bufio.Writer flushes to. A flush between
 * writeSubset's entry and return means part of the headers already left: they cannot be
 * inspected, so nothing is injected (an application's traceparent may be among them). */
SEC("uprobe")
int go_persist_conn_writer_write(struct pt_regs *ctx)
{
	struct goroutine_key gkey;
	const struct go_offsets *off = current_goroutine(ctx, &gkey);
	if (!off)
		return 0;
	__u32 tgid = gkey.tgid;
	struct pending_write *p = bpf_map_lookup_elem(&pending_writes, &gkey);
	if (p && p->n_start >= 0)
		p->flushed = 1;
	if (socket_injection) {
		/* The write syscall follows on this OS thread: hand the armed context (if any) to the
		 * sk_msg program under this thread's id; any other flush clears the thread's entry so
		 * that a stale context can never reach another request. */
		__u64 id = bpf_get_current_pid_tgid();
		struct sk_inject_pending *a = bpf_map_lookup_elem(&sk_armed, &gkey);
		if (a && !(p && p->n_start >= 0)) {
			a->ts_ns = bpf_ktime_get_ns();
			if (a->flags & SK_INJECT_F_TRACESTATE) {
				struct req_key rk = { .tgid = tgid, ._pad = 0, .req = a->cookie };
				struct sk_inject_tracestate *t = bpf_map_lookup_elem(&client_tracestate, &rk);
				if (!t || bpf_map_update_elem(&spanbridge_sk_inject_tracestate_v2, &id, t, BPF_ANY))
					a->flags &= ~SK_INJECT_F_TRACESTATE;
			}
			bpf_map_update_elem(&spanbridge_sk_inject_pending_v2, &id, a, BPF_ANY);
			bpf_map_delete_elem(&sk_armed, &gkey);
		} else {
			bpf_map_delete_elem(&spanbridge_sk_inject_pending_v2, &id);
		}
	}
	return 0;
}

struct scan_ctx {
	const char *bytes;
	__u32 len;
	__s32 found; /* offset of the value after "traceparent:" + OWS, or -1 */
};

/* The captured line starting at i is header `want` (n bytes, its name matched case-insensitively,
 * then ':'). A header line starts at 0 or after '\n'. */
static __always_inline bool header_line_at(const char *b, __u32 i, const char *want, int n)
{
	if (i > 0 && b[(i - 1) & (SCAN_MAX - 1)] != '\n')
		return false;
	for (int k = 0; k < n; k++) {
		char c = b[(i + k) & (SCAN_MAX + 127)];
		if (k < n - 1)
			c = lower(c);
		if (c != want[k])
			return false;
	}
	return true;
}

static long scan_line(__u32 i, struct scan_ctx *sc)
{
	if (i + 12 > sc->len || i >= SCAN_MAX)
		return 1;
	const char want[] = "traceparent:";
	if (!header_line_at(sc->bytes, i, want, 12))
		return 0;
	const char *b = sc->bytes;
	__u32 v = i + 12;
	for (int k = 0; k < 4; k++) {
		char c = b[v & (SCAN_MAX + 127)];
		if (c == ' ' || c == '\t')
			v++;
	}
	sc->found = v;
	return 1;
}

/* Like scan_line, for a `tracestate:` line. */
static long scan_tracestate_line(__u32 i, struct scan_ctx *sc)
{
	if (i + 11 > sc->len || i >= SCAN_MAX)
		return 1;
	const char want[] = "tracestate:";
	if (!header_line_at(sc->bytes, i, want, 11))
		return 0;
	sc->found = i;
	return 1;
}

/* At the RETs of Header.writeSubset: the request's headers are in the writer's buffer. Either
 * the application set a traceparent (use its ids; never add a second), or inject ours. */
static __always_inline int write_subset_ret(struct pt_regs *ctx, const bool inject)
{
	struct goroutine_key gkey;
	const struct go_offsets *off = current_goroutine(ctx, &gkey);
	if (!off)
		return 0;
	__u32 tgid = gkey.tgid;
	struct pending_write *p = bpf_map_lookup_elem(&pending_writes, &gkey);
	if (!p || p->n_start < 0)
		return 0;
	struct pending_write pw = *p;
	bpf_map_delete_elem(&pending_writes, &gkey);
	struct req_key rkey = { .tgid = tgid, .req = pw.req };
	struct client_request *c = bpf_map_lookup_elem(&client_requests, &rkey);
	if (!c)
		return 0;

	/* The writer: buf []byte (ptr, len, cap) and n. A bufio.Writer's buf has len == cap. */
	struct go_slice buf = {};
	__s64 n = -1;
	void *w = (void *)pw.writer;
	if (bpf_probe_read_user(&buf, sizeof(buf), w + off->bufio_buf) ||
	    bpf_probe_read_user(&n, sizeof(n), w + off->bufio_n) || !buf.ptr || buf.len != buf.cap ||
	    buf.cap <= 0 || buf.cap > (1 << 24) || n < 0 || n > buf.len) {
		count_drop(INJECT_SKIP_BAD_WRITER);
		c->flags |= CLIENT_F_INJECT_SKIPPED;
		return 0;
	}
	if (pw.flushed || n < pw.n_start) {
		/* The buffer was flushed mid-headers: what was written cannot be inspected. */
		count_drop(INJECT_SKIP_FLUSHED);
		c->flags |= CLIENT_F_INJECT_SKIPPED;
		return 0;
	}
	__u64 len = n - pw.n_start;
	if (len > SCAN_MAX) {
		count_drop(INJECT_SKIP_SCAN_LIMIT);
		c->flags |= CLIENT_F_INJECT_SKIPPED;
		return 0;
	}
	__u32 zero = 0;
	struct scan_scratch *s = bpf_map_lookup_elem(&scan_scratch_map, &zero);
	if (!s)
		return 0;
	if (len > 0 && bpf_probe_read_user(s->bytes, len & (SCAN_MAX | (SCAN_MAX - 1)), (void *)(buf.ptr + pw.n_start)))
		return 0;
	struct scan_ctx sc = { .bytes = s->bytes, .len = len, .found = -1 };
	if (len >= 12)
		bpf_loop(SCAN_MAX, scan_line, &sc, 0);
	if (sc.found >= 0) {
		/* The application's own traceparent: respected; if valid, it is this span's context. */
		struct trace_context app = {};
		__u32 v = sc.found;
		__u32 vlen = 0;
		/* value length up to the CR */
		if (v + TRACEPARENT_LEN + 2 <= len && v < SCAN_MAX &&
		    s->bytes[(v + TRACEPARENT_LEN) & (SCAN_MAX + 127)] == '\r')
			vlen = TRACEPARENT_LEN;
		if (vlen && !parse_traceparent(s->bytes + (v & (SCAN_MAX - 1)), vlen, &app) && c->has_incoming &&
		    ids_equal(app.trace_id, c->ctx.trace_id, 16) && ids_equal(app.span_id, c->incoming_span_id, 8)) {
			/* The traceparent its server request came in with, forwarded (a proxy): not a span
			 * of the application's. The client span stays the server span's child and the
			 * value is replaced by its own (same length: nothing else moves). */
			c->flags2 |= CLIENT_F2_FORWARDED;
			count_drop(INJECT_FORWARDED);
			if (inject) {
				char line[TRACEPARENT_LINE_LEN];
				format_traceparent_line(line, &c->ctx, 'T');
				/* [n_start + v, n_start + v + 55) lies inside the bytes just scanned, inside buf. */
				if (buf.len != buf.cap || pw.n_start + v + TRACEPARENT_LEN > n ||
				    bpf_probe_write_user((void *)(buf.ptr + pw.n_start + v), line + 13, TRACEPARENT_LEN)) {
					count_drop(INJECT_SKIP_BAD_WRITER);
					c->flags |= CLIENT_F_INJECT_SKIPPED;
				} else {
					c->flags |= CLIENT_F_INJECTED;
				}
			} else if (socket_injection) {
				struct sk_inject_pending a = { .cookie = pw.req, .flags = SK_INJECT_F_HEADERS_CHECKED | SK_INJECT_F_REPLACE };
				a.ts_ns = bpf_ktime_get_ns();
				a.ctx = c->ctx;
				bpf_map_update_elem(&sk_armed, &gkey, &a, BPF_ANY);
			}
			return 0;
		}
		if (vlen && !parse_traceparent(s->bytes + (v & (SCAN_MAX - 1)), vlen, &app)) {
			__builtin_memcpy(c->ctx.trace_id, app.trace_id, 16);
			__builtin_memcpy(c->ctx.span_id, app.span_id, 8);
			c->ctx.flags = app.flags;
			c->flags |= CLIENT_F_APP_TRACEPARENT;
		} else {
			c->flags |= CLIENT_F_APP_TP_INVALID;
		}
		count_drop(INJECT_SKIP_APP_HEADER);
		return 0;
	}
	if (!inject) {
		if (socket_injection) {
			struct sk_inject_pending a = { .cookie = pw.req, .flags = SK_INJECT_F_HEADERS_CHECKED };
			/* tracestate goes along unless the application wrote its own */
			if (bpf_map_lookup_elem(&client_tracestate, &rkey)) {
				struct scan_ctx tc = { .bytes = s->bytes, .len = len, .found = -1 };
				if (len >= 11)
					bpf_loop(SCAN_MAX, scan_tracestate_line, &tc, 0);
				if (tc.found < 0)
					a.flags |= SK_INJECT_F_TRACESTATE;
			}
			a.ts_ns = bpf_ktime_get_ns();
			a.ctx = c->ctx;
			bpf_map_update_elem(&sk_armed, &gkey, &a, BPF_ANY);
		}
		return 0;
	}
	if (buf.cap - n < TRACEPARENT_LINE_LEN) {
		count_drop(INJECT_SKIP_NO_ROOM);
		c->flags |= CLIENT_F_INJECT_SKIPPED;
		return 0;
	}
	char line[TRACEPARENT_LINE_LEN];
	format_traceparent_line(line, &c->ctx, 'T');
	/* Bounds verified above: [buf.ptr + n, buf.ptr + n + 70) lies inside the buffer. */
	if (bpf_probe_write_user((void *)(buf.ptr + n), line, TRACEPARENT_LINE_LEN)) {
		count_drop(INJECT_SKIP_BAD_WRITER);
		c->flags |= CLIENT_F_INJECT_SKIPPED;
		return 0;
	}
	__s64 new_n = n + TRACEPARENT_LINE_LEN;
	if (bpf_probe_write_user(w + off->bufio_n, &new_n, sizeof(new_n))) {
		count_drop(INJECT_SKIP_BAD_WRITER);
		c->flags |= CLIENT_F_INJECT_SKIPPED;
		return 0;
	}
	c->flags |= CLIENT_F_INJECTED;
	count_drop(INJECT_DONE);
	return 0;
}

/* Loaded where bpf_probe_write_user is forbidden: still honours an application's traceparent. */
SEC("uprobe")
int go_header_write_subset_ret(struct pt_regs *ctx)
{
	return write_subset_ret(ctx, false);
}

/* Loaded only where bpf_probe_write_user is allowed (lockdown none + CAP_SYS_ADMIN): the same
 * logic, and it writes the header. The agent disables one of the two before load. */
SEC("uprobe")
int go_header_write_subset_ret_inject(struct pt_regs *ctx)
{
	return write_subset_ret(ctx, true);
}

#endif
