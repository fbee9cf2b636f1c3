// SPDX-License-Identifier: GPL-2.0
/*
 * nginx reverse proxy linking (bpf/common/nginx_link.h): a uprobe at ngx_chain_writer entry, attached per
 * traced nginx process, reads ctx->connection (upstream) -> c->data (the request) -> r->connection
 * (downstream) and leaves (pid, upstream fd) -> downstream fd for the syscall tracer. Read-only:
 * nothing in nginx is written. The request is checked by its signature ("HTTP") before anything
 * is stored; any other shape is refused and counted, never guessed.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "nginx_link.h"
#include "counters.h"

char LICENSE[] SEC("license") = "GPL";

/* Offsets of the fields read, set by the agent from its per-version table (src/discovery/nginx). */
const volatile __u32 writer_connection_off = 16; /* ngx_chain_writer_ctx_t.connection */
const volatile __u32 connection_data_off = 0;    /* ngx_connection_t.data */
const volatile __u32 connection_fd_off = 24;     /* ngx_connection_t.fd (int) */
const volatile __u32 request_signature_off = 0;  /* ngx_http_request_t.signature (uint32) */
const volatile __u32 request_connection_off = 8; /* ngx_http_request_t.connection */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NGINX_LINK_REASON_MAX);
	__type(key, __u32);
	__type(value, __u64);
} nginx_link_counts SEC(".maps");

const enum nginx_link_reason *_unused_nginx_link_reason __attribute__((unused));

static __always_inline void count(__u32 reason)
{
	counter_inc(&nginx_link_counts, reason);
}

/* fds of a process are small non-negative ints; a value past this is not an fd (bad read). */
#define NGINX_FD_MAX (1 << 24)

SEC("uprobe")
int nginx_chain_writer(struct pt_regs *ctx)
{
	count(NGINX_LINK_HIT);
	__u64 writer = PT_REGS_PARM1(ctx);
	__u64 up = 0, r = 0, down = 0;
	__s32 up_fd = -1, down_fd = -1;
	__u32 sig = 0;
	if (!writer || bpf_probe_read_user(&up, sizeof(up), (void *)(writer + writer_connection_off)) || !up ||
	    bpf_probe_read_user(&r, sizeof(r), (void *)(up + connection_data_off)) || !r ||
	    bpf_probe_read_user(&up_fd, sizeof(up_fd), (void *)(up + connection_fd_off)) ||
	    bpf_probe_read_user(&sig, sizeof(sig), (void *)(r + request_signature_off))) {
		count(NGINX_SKIP_UNREAD);
		return 0;
	}
	if (sig != NGX_HTTP_SIGNATURE) {
		count(NGINX_SKIP_NOT_REQUEST);
		return 0;
	}
	if (bpf_probe_read_user(&down, sizeof(down), (void *)(r + request_connection_off)) || !down ||
	    bpf_probe_read_user(&down_fd, sizeof(down_fd), (void *)(down + connection_fd_off))) {
		count(NGINX_SKIP_UNREAD);
		return 0;
	}
	if (up_fd < 0 || down_fd < 0 || up_fd >= NGINX_FD_MAX || down_fd >= NGINX_FD_MAX || up_fd == down_fd) {
		count(NGINX_SKIP_BAD_FD);
		return 0;
	}
	__u64 id = bpf_get_current_pid_tgid();
	struct nginx_link_key k = { .tgid = id >> 32, .fd = up_fd };
	struct nginx_link v = { .ts_ns = bpf_ktime_get_ns(), .tid = (__u32)id, .downstream_fd = down_fd };
	if (bpf_map_update_elem(&spanbridge_nginx_link_v1, &k, &v, BPF_ANY)) {
		count(NGINX_DROP_MAP_FULL);
		return 0;
	}
	count(NGINX_LINK_STORED);
	return 0;
}
