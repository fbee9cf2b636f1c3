/* The minimal capture (bench sections `capfloor`, `capfloornode`, bench/sections/capture-floor.ts):
 * what any syscall-layer HTTP tracer must at least do for a selected process, on the same 17
 * syscall tracepoints the agent attaches (the bench attaches cap_<tracepoint> for each of
 * tp-floor.ts's FLOOR_TRACEPOINTS):
 *   - every hit: the selected-process lookup (a hash keyed by tgid, as the agent's traced_tgids);
 *   - a read's exit (read, readv, recvfrom, recvmsg) that returned data: the buffer's address from
 *     the task's saved registers (no entry program, as the agent), a copy of the first 256 bytes
 *     (OBI's request head) into one ring-buffer record;
 *   - a write's entry (write, writev, sendto, sendmsg): a copy of the first 128 bytes (OBI's
 *     response capture) into one ring-buffer record;
 *   - records wake user space as the agent's do (bpf/common/ring_wakeup.h, 64 KiB by default).
 * No connection state, no parsing, no context: whatever a tracer adds beyond this is its own. A
 * vector (readv/writev/sendmsg/recvmsg) is copied from its first element only. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ring_wakeup.h"

char LICENSE[] SEC("license") = "GPL";

#define HEAD_CAPTURE 256
#define RESPONSE_CAPTURE 128

const volatile __u64 ring_wakeup_bytes = 64 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} selected_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} records SEC(".maps");

/* Index 0: records the ring had no room for. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct record {
	__u64 ts_ns;
	__u32 tgid;
	__u32 tid;
	__s32 fd;
	__u32 kind; /* 0: read, 1: write */
	__u64 len;  /* bytes the syscall read or was asked to write */
	__u32 copied;
	__u32 _pad;
	__u8 data[];
};

struct user_iovec {
	__u64 base;
	__u64 len;
};

static __always_inline bool selected(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	return bpf_map_lookup_elem(&selected_tgids, &tgid) != NULL;
}

/* The first buffer of a vector (iov) or of a msghdr's vector (msg): its address, or 0. */
static __always_inline __u64 first_iov_base(__u64 iov)
{
	struct user_iovec v = {};
	if (!iov || bpf_probe_read_user(&v, sizeof(v), (void *)iov))
		return 0;
	return v.base;
}

static __always_inline __u64 msg_first_base(__u64 msg)
{
	__u64 iov = 0;
	/* struct user_msghdr: msg_name (8), msg_namelen (4 + 4 padding), msg_iov */
	if (!msg || bpf_probe_read_user(&iov, sizeof(iov), (void *)(msg + 16)))
		return 0;
	return first_iov_base(iov);
}

/* One record: the header and the first `cap` bytes of buf (fewer when len is shorter). */
static __always_inline void emit(__s32 fd, __u64 buf, __u64 len, __u32 kind, const __u32 cap)
{
	if (!buf)
		return;
	struct record *r = bpf_ringbuf_reserve(&records, sizeof(*r) + cap, 0);
	if (!r) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&drops, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
		return;
	}
	__u64 id = bpf_get_current_pid_tgid();
	r->ts_ns = bpf_ktime_get_ns();
	r->tgid = id >> 32;
	r->tid = (__u32)id;
	r->fd = fd;
	r->kind = kind;
	r->len = len;
	r->_pad = 0;
	__u32 n = len < cap ? (__u32)len : cap;
	if (n > cap)
		n = cap;
	r->copied = bpf_probe_read_user(r->data, n, (void *)buf) ? 0 : n;
	bpf_ringbuf_submit(r, ring_wakeup_flags(&records, ring_wakeup_bytes));
}

/* A read's exit: its fd and buffer from the registers saved at the syscall's entry. */
static __always_inline int read_exit(struct trace_event_raw_sys_exit *ctx, int vector)
{
	long ret = ctx->ret;
	if (ret <= 0 || !selected())
		return 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__u64 di = 0, si = 0;
	if (!regs || bpf_probe_read_kernel(&di, sizeof(di), &regs->di) || bpf_probe_read_kernel(&si, sizeof(si), &regs->si))
		return 0;
	__u64 buf = vector == 1 ? first_iov_base(si) : vector == 2 ? msg_first_base(si) : si;
	emit((__s32)di, buf, ret, 0, HEAD_CAPTURE);
	return 0;
}

static __always_inline int write_enter(struct trace_event_raw_sys_enter *ctx, int vector)
{
	if (!selected())
		return 0;
	__u64 a1 = ctx->args[1];
	__u64 buf = vector == 1 ? first_iov_base(a1) : vector == 2 ? msg_first_base(a1) : a1;
	emit((__s32)ctx->args[0], buf, ctx->args[2], 1, RESPONSE_CAPTURE);
	return 0;
}

#define READ_EXIT(name, vector)                                       \
	SEC("tracepoint/syscalls/sys_exit_" #name)                     \
	int cap_sys_exit_##name(struct trace_event_raw_sys_exit *ctx)  \
	{                                                              \
		return read_exit(ctx, vector);                         \
	}

#define WRITE_ENTER(name, vector)                                      \
	SEC("tracepoint/syscalls/sys_enter_" #name)                     \
	int cap_sys_enter_##name(struct trace_event_raw_sys_enter *ctx) \
	{                                                               \
		return write_enter(ctx, vector);                        \
	}

/* The other hooks a tracer needs (connection lifecycle, write results): the lookup only. */
#define LOOKUP(tp)                             \
	SEC("tracepoint/syscalls/" #tp)        \
	int cap_##tp(void *ctx)                \
	{                                      \
		selected();                    \
		return 0;                      \
	}

READ_EXIT(read, 0)
READ_EXIT(recvfrom, 0)
READ_EXIT(readv, 1)
READ_EXIT(recvmsg, 2)
WRITE_ENTER(write, 0)
WRITE_ENTER(sendto, 0)
WRITE_ENTER(writev, 1)
WRITE_ENTER(sendmsg, 2)
LOOKUP(sys_exit_accept4)
LOOKUP(sys_exit_accept)
LOOKUP(sys_enter_connect)
LOOKUP(sys_exit_connect)
LOOKUP(sys_enter_close)
LOOKUP(sys_exit_write)
LOOKUP(sys_exit_writev)
LOOKUP(sys_exit_sendto)
LOOKUP(sys_exit_sendmsg)
