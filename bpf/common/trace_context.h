/* W3C trace context, decided in the kernel: parsing an incoming `traceparent` value and making new
 * ids. Everything that may end up in a propagated header is chosen here, never in user space. */
#ifndef SPANBRIDGE_TRACE_CONTEXT_H
#define SPANBRIDGE_TRACE_CONTEXT_H

#define TRACEPARENT_LEN 55 /* 00-<32 hex>-<16 hex>-<2 hex> */

struct trace_context {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 flags;
	__u8 _pad[7];
};

/* Lowercase hex only: W3C forbids uppercase in traceparent. */
static __always_inline int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static __always_inline int hex_byte(const char *s)
{
	int hi = hex_nibble(s[0]);
	int lo = hex_nibble(s[1]);
	if (hi < 0 || lo < 0)
		return -1;
	return (hi << 4) | lo;
}

/* Parses a traceparent value: `v` holds its first bytes (at least TRACEPARENT_LEN + 1 readable),
 * `len` is its true length without optional whitespace. Returns 0 and fills trace_id, span_id (the
 * caller's parent) and flags; -1 when malformed, which callers treat as absent. W3C: version ff is
 * invalid; version 00 is exactly 55 bytes; a later version is read as 00 from its first 55 bytes
 * and accepted when whatever follows starts with '-'. */
static __always_inline int parse_traceparent(const char *v, __u32 len, struct trace_context *out)
{
	int version = hex_byte(v);
	if (version < 0 || version == 0xff)
		return -1;
	if (version == 0 && len != TRACEPARENT_LEN)
		return -1;
	if (len < TRACEPARENT_LEN || (len > TRACEPARENT_LEN && v[TRACEPARENT_LEN] != '-'))
		return -1;
	if (v[2] != '-' || v[35] != '-' || v[52] != '-')
		return -1;
	__u8 nonzero = 0;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		int b = hex_byte(v + 3 + 2 * i);
		if (b < 0)
			return -1;
		out->trace_id[i] = b;
		nonzero |= b;
	}
	if (!nonzero)
		return -1;
	nonzero = 0;
#pragma unroll
	for (int i = 0; i < 8; i++) {
		int b = hex_byte(v + 36 + 2 * i);
		if (b < 0)
			return -1;
		out->span_id[i] = b;
		nonzero |= b;
	}
	if (!nonzero)
		return -1;
	int flags = hex_byte(v + 53);
	if (flags < 0)
		return -1;
	out->flags = flags;
	return 0;
}

/* ---- incoming headers, byte by byte -------------------------------------------------------------
 * One reader for both paths (Go header lines, syscall reads of any language): a header value is
 * fed one byte at a time, so a value split across reads reads the same as one read. */

static __always_inline bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

#define TP_VALUE_KEEP 64 /* the first bytes of a traceparent value kept for parsing (55 + '-' + slack) */

/* The traceparent header(s) of one request. */
struct tp_reader {
	__u32 n;       /* bytes of the current value after its leading whitespace */
	__u32 trimmed; /* n without trailing whitespace: the value's true length */
	__u32 headers; /* traceparent headers seen: W3C, more than one makes the context invalid */
	__u32 _pad;
	char v[TP_VALUE_KEEP];
};

static __always_inline void tp_begin(struct tp_reader *t)
{
	t->headers += 1;
	t->n = 0;
	t->trimmed = 0;
}

static __always_inline void tp_feed(struct tp_reader *t, char c)
{
	if (t->n == 0 && is_ows(c))
		return;
	__u32 n = t->n;
	if (n < TP_VALUE_KEEP)
		t->v[n & (TP_VALUE_KEEP - 1)] = c;
	t->n = n + 1;
	if (!is_ows(c))
		t->trimmed = n + 1;
}

/* 0 with *out filled when exactly one traceparent header came and its value is valid. */
static __always_inline int tp_result(const struct tp_reader *t, struct trace_context *out)
{
	if (t->headers != 1)
		return -1;
	return parse_traceparent(t->v, t->trimmed, out);
}

/* tracestate: W3C list of up to 32 members `key=value`, several headers combined in order (as if
 * joined with ','), optional whitespace around members, empty members allowed and left out. The
 * reader writes the normalised list (members joined by ',', no whitespace around them) and drops
 * the whole value when any member is invalid, there are more than 32, or the list is longer than
 * W3C_TRACESTATE_MAX: an invalid list is never sent on. */
#define W3C_TRACESTATE_MAX 512 /* W3C: vendors SHOULD propagate at least 512 characters */
#define W3C_TRACESTATE_MEMBERS 32
#define W3C_TRACESTATE_KEY_MAX 256
#define W3C_TRACESTATE_VALUE_MAX 256

enum tracestate_state {
	TS_BEFORE = 0, /* before a member's key (whitespace or ',' allowed) */
	TS_KEY = 1,
	TS_VALUE = 2,
	TS_AFTER = 3,  /* whitespace after a value that ended with a tab */
};

enum ts_verdict {
	TS_OK = 0,
	TS_INVALID = 1,  /* a member is malformed (or more than 32) */
	TS_TOO_LONG = 2, /* the normalised list is longer than W3C_TRACESTATE_MAX */
};

struct ts_reader {
	__u16 len;      /* bytes written to out */
	__u16 last_nb;  /* out offset after the current value's last non-space byte */
	__u16 keylen;
	__u16 vallen;
	__u8 state;     /* enum tracestate_state */
	__u8 members;
	__u8 verdict;   /* enum ts_verdict */
	__u8 headers;   /* tracestate headers seen */
	__u32 _pad;
	char out[W3C_TRACESTATE_MAX];
};

static __always_inline bool ts_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' ||
	       c == '/' || c == '@';
}

static __always_inline void ts_put(struct ts_reader *t, char c)
{
	__u32 n = t->len;
	if (n >= W3C_TRACESTATE_MAX) {
		if (t->verdict == TS_OK)
			t->verdict = TS_TOO_LONG;
		return;
	}
	t->out[n & (W3C_TRACESTATE_MAX - 1)] = c;
	t->len = n + 1;
}

/* A member's value ends (',' or the end of the list): trailing spaces are not part of it. */
static __always_inline void ts_end_member(struct ts_reader *t)
{
	if (t->state == TS_KEY || (t->state == TS_VALUE && t->vallen == 0))
		t->verdict = TS_INVALID;
	if (t->state == TS_VALUE || t->state == TS_AFTER) {
		/* a value of spaces only has no non-blank last character */
		if (t->last_nb == 0 || t->out[(t->last_nb - 1) & (W3C_TRACESTATE_MAX - 1)] == '=')
			t->verdict = TS_INVALID;
		else if (t->verdict != TS_TOO_LONG)
			t->len = t->last_nb;
	}
	t->state = TS_BEFORE;
}

/* A tracestate header's value starts: it continues the list of the previous ones. */
static __always_inline void ts_begin(struct ts_reader *t)
{
	if (t->headers++)
		ts_end_member(t);
}

static __always_inline void ts_feed(struct ts_reader *t, char c)
{
	if (t->verdict == TS_INVALID)
		return;
	switch (t->state) {
	case TS_BEFORE:
		if (is_ows(c) || c == ',')
			return; /* empty members are allowed and left out */
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) || t->members >= W3C_TRACESTATE_MEMBERS) {
			t->verdict = TS_INVALID;
			return;
		}
		if (t->members)
			ts_put(t, ',');
		t->members += 1;
		ts_put(t, c);
		t->keylen = 1;
		t->vallen = 0;
		t->state = TS_KEY;
		return;
	case TS_KEY:
		if (c == '=' && t->keylen <= W3C_TRACESTATE_KEY_MAX) {
			ts_put(t, c);
			t->last_nb = 0;
			t->state = TS_VALUE;
			return;
		}
		if (!ts_key_char(c) || t->keylen >= W3C_TRACESTATE_KEY_MAX) {
			t->verdict = TS_INVALID;
			return;
		}
		ts_put(t, c);
		t->keylen += 1;
		return;
	case TS_VALUE:
		if (c == ',') {
			ts_end_member(t);
			return;
		}
		if (c == '\t') {
			t->state = TS_AFTER;
			return;
		}
		if (c < 0x20 || c > 0x7e || c == '=' || t->vallen >= W3C_TRACESTATE_VALUE_MAX + 8) {
			t->verdict = TS_INVALID;
			return;
		}
		ts_put(t, c);
		t->vallen += 1;
		if (c != ' ') {
			if (t->vallen > W3C_TRACESTATE_VALUE_MAX)
				t->verdict = TS_INVALID;
			t->last_nb = t->len;
		}
		return;
	default: /* TS_AFTER */
		if (c == ',')
			ts_end_member(t);
		else if (!is_ows(c))
			t->verdict = TS_INVALID;
		return;
	}
}

/* The list's length in out when it is to be sent on, 0 when there is none or it is dropped. */
static __always_inline __u32 ts_result(struct ts_reader *t)
{
	if (t->headers)
		ts_end_member(t);
	t->headers = 0; /* ends once */
	if (t->verdict != TS_OK || t->members == 0)
		return 0;
	return t->len;
}

static __always_inline void random_bytes(__u8 *dst, int n)
{
#pragma unroll
	for (int i = 0; i < 16; i += 4) {
		if (i >= n)
			break;
		__u32 r = bpf_get_prandom_u32();
		__builtin_memcpy(dst + i, &r, 4);
	}
}

/* A new span id; never all zeros. */
static __always_inline void new_span_id(__u8 id[8])
{
	random_bytes(id, 8);
	if (!(id[0] | id[1] | id[2] | id[3] | id[4] | id[5] | id[6] | id[7]))
		id[7] = 1;
}

/* A new trace id; never all zeros. */
static __always_inline void new_trace_id(__u8 id[16])
{
	random_bytes(id, 16);
	id[15] |= id[0] ? 0 : 1;
}

#define TRACEPARENT_LINE_LEN 70 /* "traceparent: " (13) + TRACEPARENT_LEN + "\r\n" */

/* Writes `<T|t>raceparent: 00-<trace>-<span>-<flags>\r\n` (TRACEPARENT_LINE_LEN bytes) for tc.
 * `first` is the name's first letter: Go writes canonical header names ('T'), the socket path
 * lower case ('t'); HTTP header names are case-insensitive either way. */
static __always_inline void format_traceparent_line(char *out, const struct trace_context *tc, char first)
{
	const char hex[] = "0123456789abcdef";
	const char head[] = "traceparent: 00-";
	__builtin_memcpy(out, head, 16);
	out[0] = first;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		out[16 + 2 * i] = hex[(tc->trace_id[i] >> 4) & 0xf];
		out[17 + 2 * i] = hex[tc->trace_id[i] & 0xf];
	}
	out[48] = '-';
#pragma unroll
	for (int i = 0; i < 8; i++) {
		out[49 + 2 * i] = hex[(tc->span_id[i] >> 4) & 0xf];
		out[50 + 2 * i] = hex[tc->span_id[i] & 0xf];
	}
	out[65] = '-';
	out[66] = hex[(tc->flags >> 4) & 0xf];
	out[67] = hex[tc->flags & 0xf];
	out[68] = '\r';
	out[69] = '\n';
}

#endif
