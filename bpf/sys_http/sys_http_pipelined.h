/* bpf/sys_http/sys_http.bpf.c, server side: HTTP/1.1 requests pipelined into one read. Every request head
 * in the captured bytes gets its context decided here, in order, like the first one: its own
 * valid traceparent, else a new trace (a same-node client's black-box link serves only the first
 * request of a read). Bounded: SYS_HTTP_SPARE_IDS requests behind the first, within the capture
 * (1 KiB); a further one is counted in user space (`pipelined_beyond_spare_ids`), one whose head
 * goes past the capture here (SYS_SKIP_PIPELINED_UNREAD). The requests are not bound to the
 * reading thread or goroutine: they are served later, after the first one's response, where no
 * syscall says when; client calls made while serving them are left unlinked (never linked to the
 * wrong request). Included by sys_http.bpf.c after sys_http_client_write.h. */
#ifndef SPANBRIDGE_SYS_HTTP_PIPELINED_H
#define SPANBRIDGE_SYS_HTTP_PIPELINED_H

/* Fresh contexts for the spare slots: new roots, as user space takes them when a slot is not
 * decided below (a request behind a chunked body). */
static __always_inline void fill_spare_ids(struct sys_http_data_event *e)
{
#pragma unroll
	for (int i = 0; i < SYS_HTTP_SPARE_IDS; i++) {
		new_trace_id(e->spare_trace_ids[i]);
		new_span_id(e->spare_span_ids[i]);
		__builtin_memset(e->spare_parent_span_ids[i], 0, 8);
		e->spare_trace_flags[i] = 0x01;
	}
	e->spare_remote = 0;
	__builtin_memset(e->_pad_spare, 0, sizeof(e->_pad_spare));
	e->flags2 |= SYS_F2_SPARES;
}

/* No spare contexts: a server request start whose read ends with its head (nothing can be
 * pipelined behind it), so no random ids are drawn and none are sent (no SYS_F2_SPARES). */
static __always_inline void no_spare_ids(struct sys_http_data_event *e)
{
	e->flags2 &= ~SYS_F2_SPARES;
}

/* Where the request at captured offset `pos` ends when another may follow it in the `n` captured
 * bytes, else FRAME_UNKNOWN (its end is past the capture or unknown: a chunked body). A global
 * function, like the one below: each is verified once, not once per request of the loop. */
__noinline __u32 pipelined_next(struct scratch *s, __u32 pos, __u32 n)
{
	if (!s)
		return FRAME_UNKNOWN;
	__u64 end = request_end(pos, n);
	return end < n ? end : FRAME_UNKNOWN;
}

/* The request at captured offset `pos` into spare slot k: its own valid traceparent's child, else
 * the slot's new root. Returns 0 when no request head is all there (nothing decided). */
__noinline int decide_pipelined_one(struct scratch *s, __u32 k, __u32 pos, __u32 n)
{
	if (!s || k >= SYS_HTTP_SPARE_IDS || pos >= n || n > SYS_HTTP_CAPTURE)
		return 0;
	__u64 at = pos;
	asm volatile("%0 &= %1" : "+r"(at) : "i"(SYS_HTTP_CAPTURE - 1)); /* the bound the verifier sees */
	if (!is_request_start(s->e.data + at, n - pos))
		return 0;
	head_reset(&s->head);
	struct head_scan hs = { .s = s, .ptr = 0, .len = n - pos, .first = n - pos, .err = 0, .off = pos };
	s->scan_pos = 0;
	bpf_loop(SYS_HTTP_CAPTURE, head_scan_cb, &hs, 0);
	if (s->head.done != HEAD_COMPLETE) {
		count(SYS_SKIP_PIPELINED_UNREAD);
		return 0;
	}
	struct trace_context parent = {};
	if (!tp_result(&s->head.tp, &parent)) {
		__u64 i = k;
		asm volatile("%0 &= 3" : "+r"(i)); /* the bound the verifier sees (k < 3 above) */
		__builtin_memcpy(s->e.spare_trace_ids[i], parent.trace_id, 16);
		__builtin_memcpy(s->e.spare_parent_span_ids[i], parent.span_id, 8);
		s->e.spare_trace_flags[i] = parent.flags;
		s->e.spare_remote |= 1 << i;
	} else if (s->head.tp.headers) {
		count(SYS_SKIP_BAD_TRACEPARENT);
	}
	return 1;
}

/* The requests in the `n` captured bytes of a server read (s->e.data), each in the next spare
 * slot: returns how many were decided. `behind_first`: the read's first request was decided as
 * the connection's current one (SYS_F_REQUEST_START) and is skipped; else the read itself starts
 * with a pipelined request (SYS_F_SPARE_IDS). */
static __always_inline __u32 decide_pipelined(struct scratch *s, bool behind_first, __u32 n)
{
	__u32 pos = behind_first ? pipelined_next(s, 0, n) : 0, decided = 0;
	for (__u32 k = 0; k < SYS_HTTP_SPARE_IDS; k++) {
		if (pos == FRAME_UNKNOWN || !decide_pipelined_one(s, k, pos, n))
			break;
		decided++;
		pos = pipelined_next(s, pos, n);
	}
	return decided;
}

/* Tail-called by sys_data_exit for a server read that may hold pipelined requests (s->e is its
 * record, ids of the first request set): fills the spare slots with new roots, decides them and
 * sends the record (a read that cannot hold one pays for no random ids). A program of its own: the data path's stack (512 bytes with its calls, 6.1)
 * has no room for this one's. */
SEC("tracepoint")
int sys_pipelined_read(struct trace_event_raw_sys_exit *ctx)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!s)
		return 0;
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = s->e.fd };
	__u32 cap = s->e.capture_len;
	if (cap > SYS_HTTP_CAPTURE)
		cap = SYS_HTTP_CAPTURE;
	bool behind_first = s->e.flags & SYS_F_REQUEST_START;
	fill_spare_ids(&s->e);
	__u32 n = decide_pipelined(s, behind_first, cap);
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &key);
	if (cs) {
		if (!behind_first)
			n += cs->pipelined;
		cs->pipelined = n > 0xff ? 0xff : n;
	}
	/* With the spare contexts behind data: the whole struct (pipelining is rare). */
	if (bpf_ringbuf_output(&sys_http_events, &s->e, sizeof(s->e), ring_wakeup_flags(&sys_http_events, ring_wakeup_bytes)))
		count(SYS_DROP_RINGBUF_FULL);
	return 0;
}

#endif
