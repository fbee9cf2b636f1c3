/* Byte helpers every tracer uses; BPF has no libc (no memcmp, no tolower). */
#ifndef SPANBRIDGE_BYTES_H
#define SPANBRIDGE_BYTES_H

/* a == b for 8-byte multiples (ids); no memcmp in BPF. */
static __always_inline bool ids_equal(const void *a, const void *b, int n)
{
	__u64 x, y, d = 0;
#pragma unroll
	for (int i = 0; i < 16; i += 8) {
		if (i >= n)
			break;
		__builtin_memcpy(&x, (const char *)a + i, 8);
		__builtin_memcpy(&y, (const char *)b + i, 8);
		d |= x ^ y;
	}
	return d == 0;
}

/* ASCII lower case (header names are case-insensitive). */
static __always_inline __u8 lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

#endif
