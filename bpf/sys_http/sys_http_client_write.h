/* bpf/sys_http/sys_http.bpf.c, client writes: the application's own traceparent in a request being written
 * (the W3C reader of bpf/sys_http/http_head.h) and the framing of requests pipelined behind it. Included by
 * sys_http.bpf.c after sys_http_server_head.h. */
#ifndef SPANBRIDGE_SYS_HTTP_CLIENT_WRITE_H
#define SPANBRIDGE_SYS_HTTP_CLIENT_WRITE_H

/* ---- traceparent in the captured head ---------------------------------------------------------- */

enum header_name {
	HDR_TRACEPARENT = 0,
	HDR_TRACESTATE = 1,
};

struct scan_ctx {
	__u32 len;
	__u32 found; /* offset of the value, 0 = not found */
	__u32 name;  /* enum header_name */
	__u32 _pad;
};

/* Looks for "\n<name>:" at captured offset i; on a match, `found` = the value's offset (after OWS). */
static long scan_header_cb(__u32 i, struct scan_ctx *c)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!s)
		return 1;
	const char traceparent[] = "traceparent";
	const char tracestate[] = "tracestate";
	__u32 nlen = c->name == HDR_TRACESTATE ? 10 : 11;
	if (i + nlen + 2 >= c->len)
		return 1;
	__u32 k = i & (SYS_HTTP_CAPTURE - 1);
	const __u8 *p = s->e.data + k;
	if (p[0] != '\n' || lower(p[1]) != 't')
		return 0;
#pragma unroll
	for (int j = 0; j < 11; j++) {
		char want = c->name == HDR_TRACESTATE ? tracestate[j] : traceparent[j];
		if (j < nlen && lower(p[1 + j]) != want)
			return 0;
	}
	if (p[1 + nlen] != ':')
		return 0;
	__u32 v = k + nlen + 2;
#pragma unroll
	for (int j = 0; j < 4; j++)
		if (v < c->len && (s->e.data[v & (SYS_HTTP_CAPTURE - 1)] == ' ' || s->e.data[v & (SYS_HTTP_CAPTURE - 1)] == '\t'))
			v++;
	c->found = v;
	return 1;
}

/* Offset of the first `name` header's value in the captured head, 0 when there is none. */
static __always_inline __u32 find_header(__u32 len, __u32 name)
{
	struct scan_ctx c = { .len = len, .found = 0, .name = name };
	bpf_loop(SYS_HTTP_CAPTURE, scan_header_cb, &c, 0);
	return c.found;
}

enum tp_found {
	TP_VALID = 0,     /* parsed into *out */
	TP_ABSENT = 1,    /* no traceparent header in the captured bytes */
	TP_MALFORMED = 2, /* one is there but malformed (counted): treated as absent for parents */
	TP_UNREAD = 3,    /* the bytes could not be read */
};

/* The application's own traceparent in a client write's captured bytes (s->e.data), read by the
 * same W3C reader as incoming heads (bpf/sys_http/http_head.h): TP_VALID when the first request's head has
 * exactly one valid one; TP_MALFORMED when it has others, or when only a request pipelined behind
 * it carries one (never taken for the first request's); TP_ABSENT when none is in the capture. */
__noinline int find_traceparent(struct scratch *s, __u32 len, struct trace_context *out)
{
	/* A global function: verified once, not in each state the client decision reaches it in. */
	if (!s || !out)
		return TP_UNREAD;
	head_reset(&s->head);
	struct head_scan hs = { .s = s, .ptr = 0, .len = len, .first = len, .err = 0, .off = 0 };
	s->scan_pos = 0;
	bpf_loop(SYS_HTTP_CAPTURE, head_scan_cb, &hs, 0);
	if (!s->head.tp.headers) {
		bool more = s->head.done == HEAD_COMPLETE && s->head.seen < len;
		return more && find_header(len, HDR_TRACEPARENT) ? TP_MALFORMED : TP_ABSENT;
	}
	if (!tp_result(&s->head.tp, out))
		return TP_VALID;
	count(SYS_SKIP_BAD_TRACEPARENT);
	return TP_MALFORMED;
}


/* ---- client request framing (pipelining) ------------------------------------------------- */

struct frame_ctx {
	__u32 len;      /* captured bytes */
	__u32 head_end; /* offset after the blank line, 0 = not in the capture */
	__u32 cl;       /* Content-Length value (0 when absent) */
	__u32 chunked;  /* Transfer-Encoding present, or Content-Length unreadable */
	__u32 cl_at;    /* offset of the Content-Length value, 0 when absent */
	__u32 in_line;  /* s->frame_pos is inside a line whose start was looked at (or the request line) */
};

struct num_ctx {
	__u32 at;
	__u32 len;
	__u32 v;
	__u32 digits;
	__u32 state; /* 0 leading OWS, 1 digits, 2 done, 3 unreadable */
	__u32 _pad;
};

/* Reads a decimal Content-Length value (at most 9 digits, ended by CR or OWS). */
static long num_cb(__u32 i, struct num_ctx *c)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	__u32 at = c->at + i;
	if (!s || at >= c->len || at >= SYS_HTTP_CAPTURE) {
		c->state = 3;
		return 1;
	}
	__u64 k = at;
	asm volatile("%0 &= %1" : "+r"(k) : "i"(SYS_HTTP_CAPTURE - 1));
	__u8 ch = s->e.data[k];
	if (c->state == 0 && (ch == ' ' || ch == '\t'))
		return 0;
	if (ch >= '0' && ch <= '9' && c->digits < 9) {
		c->v = c->v * 10 + (ch - '0');
		c->digits++;
		c->state = 1;
		return 0;
	}
	c->state = (c->state == 1 && (ch == '\r' || ch == ' ' || ch == '\t')) ? 2 : 3;
	return 1;
}

/* The 8 bytes at p are `name`'s first 8, letters in either case: each letter's 0x20 bit is set
 * before the compare (exact: only 'A'-'Z' become 'a'-'z' that way), other bytes compare as they
 * are. For a literal name, want and mask are constants. */
static __always_inline bool name_word(const __u8 *p, const char *name)
{
	__u64 w, want = 0, mask = 0;
	__builtin_memcpy(&w, p, 8);
#pragma unroll
	for (int i = 0; i < 8; i++) {
		want |= (__u64)(__u8)name[i] << (8 * i);
		if (name[i] >= 'a' && name[i] <= 'z')
			mask |= 0x20ULL << (8 * i);
	}
	return (w | mask) == want;
}

/* One step of a request head's framing at s->frame_pos: at a line start, the blank line ends the head,
 * Content-Length is read, Transfer-Encoding makes the length unknown; then the rest of the line is
 * skipped up to 16 bytes a step (upto_lf, sys_http_server_head.h), not byte by byte: a head's
 * framing takes a step or two per line. The request line's start is never taken for a header. */
static long frame_cb(__u32 i, struct frame_ctx *fc)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!s)
		return 1;
	/* The position lives in the map, not in fc on the stack: the verifier would otherwise track
	 * its exact value per step and never see the steps converge (as the head scan's). */
	__u32 at = s->frame_pos;
	if (at + 1 >= fc->len || at >= SYS_HTTP_CAPTURE)
		return 1;
	__u64 k = at;
	asm volatile("%0 &= %1" : "+r"(k) : "i"(SYS_HTTP_CAPTURE - 1)); /* the bound the verifier sees */
	const __u8 *p = s->e.data + k; /* 16 bytes of slack behind the capture (the route) */
	if (!fc->in_line) {
		if (p[0] == '\r' && p[1] == '\n') {
			fc->head_end = at + 2;
			return 1;
		}
		/* Whole words, no branch per byte (each would double the verifier's states). */
		__u8 c0 = p[0] | 0x20;
		if (c0 == 'c' && at + 16 < fc->len) {
			if (name_word(p, "content-") && name_word(p + 7, "-length:"))
				fc->cl_at = at + 15;
		} else if (c0 == 't' && at + 18 < fc->len) {
			if (name_word(p, "transfer") && name_word(p + 8, "-encodin") && name_word(p + 10, "ncoding:"))
				fc->chunked = 1;
		}
		fc->in_line = 1;
	}
	__u32 avail = fc->len - at;
	__u64 w;
	__builtin_memcpy(&w, p, 8);
	__u32 lf = 0;
	__u32 j = upto_lf(w, avail < 8 ? avail : 8, &lf);
	if (!lf && avail > 8) {
		__builtin_memcpy(&w, p + 8, 8);
		j += upto_lf(w, avail - 8 < 8 ? avail - 8 : 8, &lf);
	}
	if (lf)
		fc->in_line = 0;
	s->frame_pos = at + j;
	return 0;
}

/* Where the request whose head starts at captured offset `pos` ends (head and Content-Length
 * body; may be past the capture), FRAME_UNKNOWN when its head is not all in the `n` captured bytes
 * or its body length is unknown (chunked, unreadable). Client writes and server reads frame alike.
 * A global function: verified once, not at each of its call sites (unrolled loops call it). */
__noinline __u64 request_end(__u32 pos, __u32 n)
{
	struct frame_ctx fc = { .len = n, .in_line = 1 };
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!s)
		return FRAME_UNKNOWN;
	s->frame_pos = pos;
	bpf_loop(SYS_HTTP_CAPTURE, frame_cb, &fc, 0);
	if (!fc.head_end || fc.chunked)
		return FRAME_UNKNOWN;
	if (fc.cl_at) {
		struct num_ctx nc = { .at = fc.cl_at, .len = n };
		bpf_loop(32, num_cb, &nc, 0);
		if (nc.state != 2)
			return FRAME_UNKNOWN;
		fc.cl = nc.v;
	}
	return (__u64)fc.head_end + fc.cl;
}

/* A client write that starts a request (s->e.data, n captured of `total` bytes, no traceparent
 * anywhere in it): finds further requests pipelined behind the first (up to SYS_HTTP_SPARE_IDS,
 * each gets a span id of its own) and where the last framed request ends (FRAME_UNKNOWN when a
 * head is not in the capture, a body is chunked, or other bytes follow a request). */
__noinline int frame_client_write(struct scratch *s, __u32 n, struct syscall_args *a)
{
	/* A global function: verified once, not at each of the four write probes. */
	if (!s || !a)
		return 0;
	__u32 pos = 0;
	a->extra = 0;
	a->last_end = FRAME_UNKNOWN;
#pragma unroll
	for (int k = 0; k <= SYS_HTTP_SPARE_IDS; k++) {
		__u64 end = request_end(pos, n);
		if (end == FRAME_UNKNOWN)
			return 0;
		if (end >= n) {
			a->last_end = end; /* the body goes on past the capture (or ends exactly here) */
			return 0;
		}
		if (k == SYS_HTTP_SPARE_IDS || !is_request_start(s->e.data + (end & (SYS_HTTP_CAPTURE - 1)), n - end))
			return 0; /* more requests than ids, or bytes that are not a request: unknown */
		a->extra_off[k % SYS_HTTP_SPARE_IDS] = end;
		new_span_id(a->extra_span_ids[k % SYS_HTTP_SPARE_IDS]);
		a->extra = k + 1;
		pos = end;
	}
	return 0;
}

#endif
