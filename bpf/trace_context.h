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

/* Parses a traceparent value (at least TRACEPARENT_LEN bytes available in v, `len` is the value's
 * true length). Returns 0 and fills trace_id, span_id (the caller's parent) and flags; -1 when
 * malformed, which callers treat as absent. */
static __always_inline int parse_traceparent(const char *v, __u32 len, struct trace_context *out)
{
	int version = hex_byte(v);
	if (version < 0 || version == 0xff)
		return -1;
	/* Version 00 is exactly 55 bytes; later versions may append "-..." fields. */
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
