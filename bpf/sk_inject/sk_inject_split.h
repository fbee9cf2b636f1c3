/* bpf/sk_inject/sk_inject.bpf.c: a request whose head did not end in the first message the thread sent (a
 * request line or a header block written with several send calls). Its context waits with the
 * socket (sk_inject_splits, socket storage) and the header goes in right before the blank line of
 * the message that ends the head. Included by sk_inject.bpf.c after copy_window and insert_lines. */
#ifndef SPANBRIDGE_SK_INJECT_SPLIT_H
#define SPANBRIDGE_SK_INJECT_SPLIT_H

enum split_phase {
	SPLIT_NONE = 0,
	SPLIT_LINE = 1, /* inside the request line */
	SPLIT_HEAD = 2, /* inside the header block */
};

struct sk_inject_split {
	__u64 ts_ns;             /* when the owner decided the context (its pending entry's time) */
	struct trace_context ctx;
	__u32 seen;              /* head bytes seen so far */
	__u32 tslen;             /* tracestate line length in tsline, 0 = none */
	__u8 phase;              /* enum split_phase */
	__u8 partial;            /* bytes of the current, unfinished line so far (capped at 255) */
	__u8 tp_prefix;          /* ... and they are a case-insensitive prefix of "traceparent:" */
	__u8 blank_cr;           /* the current line is a lone CR so far (the blank line starting) */
	__u8 _pad[4];
	char tsline[1024];       /* the tracestate line to send (sized for the 1023 index mask) */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_inject_split);
} sk_inject_splits SEC(".maps");


#define SPLIT_MAX_AGE_NS (1000ULL * 1000 * 1000) /* the head must be complete within 1 s */

struct split_scan {
	const char *b;
	__u32 len;
	__s32 insert_at; /* offset of the blank line (its CR) in this message, -1 = not in it */
	__u32 stop;      /* outcome that ends the wait (SK_INJECT_SKIP_HAS_TRACEPARENT, ...), 0 = none */
	__u8 phase;
	__u8 partial;
	__u8 tp_prefix;
	__u8 blank_cr;
};

/* One byte of a head that goes on over several messages: the request line's end, then header
 * lines (a traceparent line ends the wait: never two), then the blank line. */
static long split_scan_cb(__u32 i, struct split_scan *sc)
{
	if (i >= sc->len || i >= SK_WINDOW)
		return 1;
	char c = sc->b[MASKED(i, SK_WINDOW - 1)];
	if (sc->phase == SPLIT_LINE) {
		if (c == '\n') {
			sc->phase = SPLIT_HEAD;
			sc->partial = 0;
			sc->tp_prefix = 1;
			sc->blank_cr = 0;
		} else if (c != '\r' && (c < 0x20 || c > 0x7e)) {
			sc->stop = SK_INJECT_SPLIT_SKIPPED; /* not a request line after all */
			return 1;
		}
		return 0;
	}
	if (c == '\n') {
		if (sc->partial == 0 || sc->blank_cr) {
			if (sc->blank_cr && i == 0) {
				sc->stop = SK_INJECT_SPLIT_SKIPPED; /* its CR already left with the previous message */
				return 1;
			}
			sc->insert_at = sc->blank_cr ? i - 1 : i;
			return 1;
		}
		sc->partial = 0;
		sc->tp_prefix = 1;
		sc->blank_cr = 0;
		return 0;
	}
	sc->blank_cr = sc->partial == 0 && c == '\r';
	if (sc->tp_prefix && sc->partial < 12) {
		const char want[] = "traceparent:";
		if (lower(c) != want[MASKED(sc->partial, 15)])
			sc->tp_prefix = 0;
		else if (sc->partial == 11) {
			sc->stop = SK_INJECT_SKIP_HAS_TRACEPARENT;
			return 1;
		}
	}
	if (sc->partial < 255)
		sc->partial++;
	return 0;
}

/* The first message holds a request line but not the head's end, and nothing more was sent with
 * it: the context (and tracestate line) wait with the socket for the rest of the head. */
static __always_inline __u32 start_split(struct sk_msg_md *msg, struct sk_scratch *s, __u64 id, __u32 n)
{
	struct bpf_sock *sk = msg->sk;
	if (!sk)
		return SK_INJECT_SPLIT_SKIPPED;
	struct sk_inject_split *st = bpf_sk_storage_get(&sk_inject_splits, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return SK_INJECT_SPLIT_SKIPPED;
	struct split_scan sc = { .b = s->bytes, .len = n, .insert_at = -1, .phase = SPLIT_LINE };
	bpf_loop(SK_WINDOW, split_scan_cb, &sc, 0);
	if (sc.stop || sc.insert_at >= 0) {
		st->phase = SPLIT_NONE;
		return sc.stop ? sc.stop : SK_INJECT_SPLIT_SKIPPED;
	}
	st->ts_ns = s->p.ts_ns;
	st->ctx = s->p.ctx;
	st->seen = n;
	st->phase = sc.phase;
	st->partial = sc.partial;
	st->tp_prefix = sc.tp_prefix;
	st->blank_cr = sc.blank_cr;
	__u32 tslen = (s->p.flags & SK_INJECT_F_TRACESTATE) ? prepare_tracestate(id, s) : 0;
	if (tslen > TS_LINE_MAX)
		tslen = 0;
	st->tslen = tslen;
	for (__u32 i = 0; i < TS_LINE_MAX; i++) {
		if (i >= tslen)
			break;
		st->tsline[MASKED(i, 1023)] = s->ins[MASKED(TRACEPARENT_LINE_LEN + i, 1023)];
	}
	return SK_INJECT_SPLIT_WAIT;
}

/* A later message on a socket whose request head is still open: look for a traceparent and the
 * blank line; insert the waiting context before the blank line. */
static __always_inline __u32 continue_split(struct sk_msg_md *msg, struct sk_inject_split *st, struct sk_scratch *s)
{
	__u64 now = bpf_ktime_get_ns();
	if (now < st->ts_ns || now - st->ts_ns > SPLIT_MAX_AGE_NS) {
		st->phase = SPLIT_NONE;
		return SK_INJECT_SKIP_STALE;
	}
	__u32 n = copy_window(msg, s);
	if (!n) {
		st->phase = SPLIT_NONE;
		return SK_INJECT_SPLIT_SKIPPED;
	}
	struct split_scan sc = {
		.b = s->bytes, .len = n, .insert_at = -1, .phase = st->phase,
		.partial = st->partial, .tp_prefix = st->tp_prefix, .blank_cr = st->blank_cr,
	};
	bpf_loop(SK_WINDOW, split_scan_cb, &sc, 0);
	if (sc.stop) {
		st->phase = SPLIT_NONE;
		return sc.stop;
	}
	if (sc.insert_at < 0) {
		st->seen += n;
		if (n < msg->size || st->seen > SPLIT_MAX_HEAD) {
			st->phase = SPLIT_NONE; /* the head goes on past what is inspected */
			return SK_INJECT_SKIP_HEAD_TOO_LONG;
		}
		st->phase = sc.phase;
		st->partial = sc.partial;
		st->tp_prefix = sc.tp_prefix;
		st->blank_cr = sc.blank_cr;
		return 0; /* still waiting: nothing to count */
	}
	st->phase = SPLIT_NONE;
	format_traceparent_line(s->ins, &st->ctx, 't');
	__u32 tslen = st->tslen <= TS_LINE_MAX ? st->tslen : 0;
	for (__u32 i = 0; i < TS_LINE_MAX; i++) {
		if (i >= tslen)
			break;
		s->ins[MASKED(TRACEPARENT_LINE_LEN + i, 1023)] = st->tsline[MASKED(i, 1023)];
	}
	if (!insert_lines(msg, sc.insert_at, tslen, s))
		return SK_INJECT_SKIP_PUSH_FAILED;
	coalesce_head(msg);
	return SK_INJECT_SPLIT_DONE;
}

#endif
