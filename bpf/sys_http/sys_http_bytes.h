/* bpf/sys_http/sys_http.bpf.c: HTTP/1.x request and response starts, and reading a message's bytes (first
 * segment, last bytes) from the syscall's buffers. Included by sys_http.bpf.c. */
#ifndef SPANBRIDGE_SYS_HTTP_BYTES_H
#define SPANBRIDGE_SYS_HTTP_BYTES_H

/* ---- HTTP/1.x recognition ---------------------------------------------------------------- */

/* A request line starts with a known method, one space and an origin/absolute/asterisk form. */
static __always_inline int is_request_start(const __u8 *p, __u32 n)
{
	if (n < 8)
		return 0;
	__u8 sp, c;
	if (p[0] == 'G' && p[1] == 'E' && p[2] == 'T') {
		sp = p[3];
		c = p[4];
	} else if (p[0] == 'P' && p[1] == 'U' && p[2] == 'T') {
		sp = p[3];
		c = p[4];
	} else if (p[0] == 'P' && p[1] == 'O' && p[2] == 'S' && p[3] == 'T') {
		sp = p[4];
		c = p[5];
	} else if (p[0] == 'H' && p[1] == 'E' && p[2] == 'A' && p[3] == 'D') {
		sp = p[4];
		c = p[5];
	} else if (p[0] == 'P' && p[1] == 'A' && p[2] == 'T' && p[3] == 'C' && p[4] == 'H') {
		sp = p[5];
		c = p[6];
	} else if (p[0] == 'T' && p[1] == 'R' && p[2] == 'A' && p[3] == 'C' && p[4] == 'E') {
		sp = p[5];
		c = p[6];
	} else if (p[0] == 'D' && p[1] == 'E' && p[2] == 'L' && p[3] == 'E' && p[4] == 'T' && p[5] == 'E') {
		sp = p[6];
		c = p[7];
	} else if (p[0] == 'O' && p[1] == 'P' && p[2] == 'T' && p[3] == 'I' && p[4] == 'O' && p[5] == 'N' &&
		   p[6] == 'S') {
		sp = p[7];
		c = '*';
	} else if (p[0] == 'C' && p[1] == 'O' && p[2] == 'N' && p[3] == 'N' && p[4] == 'E' && p[5] == 'C' &&
		   p[6] == 'T') {
		sp = p[7];
		c = '/';
	} else {
		return 0;
	}
	return sp == ' ' && (c == '/' || c == '*' || c == 'h');
}

/* Could these fewer than 8 bytes begin a request line? (upper-case method, then " /...") */
static __always_inline int maybe_request_prefix(const __u8 *p, __u32 n)
{
	int in_method = 1, bad = 0;
#pragma unroll
	for (int i = 0; i < 7; i++) {
		__u8 c = p[i];
		int live = i < n;
		if (live && in_method && c == ' ' && i >= 3)
			in_method = 0;
		else if (live && in_method && (c < 'A' || c > 'Z'))
			bad = 1;
		else if (live && !in_method && (c <= ' ' || c >= 0x7f))
			bad = 1;
	}
	return !bad;
}

static __always_inline int is_response_start(const __u8 *p, __u32 n)
{
	return n >= 8 && p[0] == 'H' && p[1] == 'T' && p[2] == 'T' && p[3] == 'P' && p[4] == '/' &&
	       p[5] == '1' && p[6] == '.';
}

/* ---- reading a message's bytes --------------------------------------------------------------- */

/* The iovec array of a vectored syscall (its msghdr's for recvmsg/sendmsg): 0 when none. */
static __always_inline __u64 iov_array(const struct syscall_args *a, __u64 *iovcnt)
{
	__u64 iov = a->buf;
	*iovcnt = a->count;
	if (a->kind == SYS_CALL_RECVMSG || a->kind == SYS_CALL_SENDMSG) {
		struct user_msghdr msg;
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)a->buf))
			return 0;
		iov = (__u64)msg.msg_iov;
		*iovcnt = msg.msg_iovlen;
	}
	return *iovcnt ? iov : 0;
}

static __always_inline bool plain_buffer(__u8 kind)
{
	return kind == SYS_CALL_READ || kind == SYS_CALL_WRITE || kind == SYS_CALL_RECVFROM || kind == SYS_CALL_SENDTO;
}

/* First segment of the message: (pointer, length) for plain buffers, first iovec otherwise; with
 * `c`, the first two iovecs are read at once and kept there for read_tail. */
static __always_inline int first_segment_kept(const struct syscall_args *a, __u64 *ptr, __u64 *len, struct iov_cache *c)
{
	if (c)
		c->n = 0;
	if (plain_buffer(a->kind)) {
		*ptr = a->buf;
		*len = a->count;
		return 0;
	}
	__u64 iovcnt = 0;
	__u64 iov = iov_array(a, &iovcnt);
	if (!iov)
		return -1;
	if (c) {
		c->iov = iov;
		c->iovcnt = iovcnt;
	}
	if (c && iovcnt >= 2 && !bpf_probe_read_user(c->v, sizeof(c->v), (void *)iov)) {
		c->n = 2;
	} else if (c && !bpf_probe_read_user(c->v, sizeof(c->v[0]), (void *)iov)) {
		c->n = 1;
	} else if (!c) {
		struct iovec v;
		if (bpf_probe_read_user(&v, sizeof(v), (void *)iov))
			return -1;
		*ptr = (__u64)v.iov_base;
		*len = v.iov_len;
		return 0;
	} else {
		return -1;
	}
	*ptr = (__u64)c->v[0].iov_base;
	*len = c->v[0].iov_len;
	return 0;
}

static __always_inline int first_segment(const struct syscall_args *a, __u64 *ptr, __u64 *len)
{
	return first_segment_kept(a, ptr, len, 0);
}

/* The last up to SYS_HTTP_TAIL bytes of a message of `total` bytes (within one segment); the
 * iovecs first_segment_kept kept in `c` are not read again. */
static __always_inline __u16 read_tail(const struct syscall_args *a, __u64 total, __u8 *dst, const struct iov_cache *c)
{
	__u64 ptr = 0, len = 0;
	if (plain_buffer(a->kind)) {
		ptr = a->buf;
		len = total;
	} else {
		__u64 iovcnt = c->iovcnt;
		__u64 iov = c->n ? c->iov : iov_array(a, &iovcnt);
		if (!iov)
			return 0;
		__u64 seen = 0;
#pragma unroll
		for (int i = 0; i < 8; i++) {
			if (i >= iovcnt)
				break;
			struct iovec v;
			if (i < 2 && i < c->n)
				v = c->v[i];
			else if (bpf_probe_read_user(&v, sizeof(v), (void *)(iov + i * sizeof(v))))
				return 0;
			if (seen + v.iov_len >= total) {
				ptr = (__u64)v.iov_base;
				len = total - seen;
				break;
			}
			seen += v.iov_len;
		}
		if (!ptr)
			return 0;
	}
	__u64 n = len < SYS_HTTP_TAIL ? len : SYS_HTTP_TAIL;
	if (n == 0)
		return 0;
	if (bpf_probe_read_user(dst, n & (SYS_HTTP_TAIL | (SYS_HTTP_TAIL - 1)), (void *)(ptr + len - n)))
		return 0;
	return n;
}

/* read_tail for the data syscall in this CPU's scratch (its arguments s->args, its iovecs s->iovc)
 * into its record's tail (s->e.tail), as a global function: the iovec walk is verified once, not
 * at each state of sys_data_exit that sends a record. */
__noinline int data_tail(__u64 total)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!s)
		return 0;
	return read_tail(&s->args, total, s->e.tail, &s->iovc);
}

#endif
