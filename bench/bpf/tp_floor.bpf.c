/* The tracepoint floor (bench sections `tpfloor` and `untraced`, bench/sections/tp-floor.ts): an empty
 * program for each syscall tracepoint the agent's syscall tracer may attach (the SEC names of
 * bpf/sys_http/sys_http.bpf.c), so a process pays the kernel's tracepoint dispatch for exactly the agent's set
 * of hooks and nothing else. What that costs is out of the agent's reach on this machine; the
 * agent's own cost is what it adds on top. The bench attaches only the ones the agent attaches
 * (tp-floor.ts's FLOOR_TRACEPOINTS, from the agent's own table): a program here for every one of
 * them, and for a few it no longer uses (the read entries). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define FLOOR(tp)                               \
	SEC("tracepoint/syscalls/" #tp)         \
	int floor_##tp(void *ctx)               \
	{                                       \
		return 0;                       \
	}

FLOOR(sys_exit_accept4)
FLOOR(sys_exit_accept)
FLOOR(sys_enter_connect)
FLOOR(sys_exit_connect)
FLOOR(sys_enter_close)
#define FLOOR_PAIR(name) FLOOR(sys_enter_##name) FLOOR(sys_exit_##name)
FLOOR_PAIR(read)
FLOOR_PAIR(write)
FLOOR_PAIR(readv)
FLOOR_PAIR(writev)
FLOOR_PAIR(recvfrom)
FLOOR_PAIR(sendto)
FLOOR_PAIR(recvmsg)
FLOOR_PAIR(sendmsg)

/* The same hooks through the raw syscall tracepoints (one program for every syscall of every
 * process, called without perf's per-event record): what the dispatch would cost that way. */
SEC("raw_tp/sys_enter")
int floor_raw_sys_enter(void *ctx)
{
	return 0;
}

SEC("raw_tp/sys_exit")
int floor_raw_sys_exit(void *ctx)
{
	return 0;
}
