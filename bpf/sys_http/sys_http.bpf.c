// SPDX-License-Identifier: GPL-2.0
/*
 * Any-language HTTP/1.x tracing from syscall tracepoints (no kprobes, no fentry needed).
 *
 *   sys_exit_accept/accept4  -> a server connection (tuple read from struct sock via the fd table)
 *   sys_enter/exit_connect   -> a client connection
 *   read/readv/recvfrom/recvmsg (exit), write/writev/sendto/sendmsg (enter + exit)
 *                            -> data records with the first SYS_HTTP_CAPTURE bytes of each message
 *   sys_enter_close          -> close record; state freed
 *   sched_process_fork/exec/exit -> children of traced processes traced from their fork; state
 *                               freed at exec and exit (sys_http_lifecycle.h)
 *   first syscall on a connection open before the attach -> taken over (sys_http_adopt.h)
 *
 * Every handler first tests the calling process's bit in traced_bits (sys_http_select.h: one inlined
 * array load, set by the agent; the fork program's half only while a child it traced is alive), so
 * an untraced process pays that and one helper call per hooked syscall; only a process whose bit
 * is set is looked up in traced_tgids.
 *
 * Trace context is decided here, never in user space:
 *   server request (a read that begins with a request line), decided when its head is complete,
 *     however many reads that takes (sys_http_server_head.h): continue a valid incoming
 *     traceparent; else the same-node client request found under the mirrored TCP tuple (black-box
 *     correlation, used once, within correlation_window_ns); else a new trace. The thread becomes
 *     "in a server request" until the response starts.
 *   client request start (a write that begins with a request line, decided at syscall ENTER so the
 *     context is stored before the peer can read the bytes): child of the thread's server request
 *     when exactly one is active on that thread (thread-per-request runtimes), else a new trace;
 *     stored under the connection tuple for the server side to find.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "record_types.h"
#include "trace_context.h"
#include "http_head.h"
#include "sys_http.h"
#include "sys_http_go_link.h"
#include "go_abi.h"
#include "go_offsets.h"
#include "go_server_ctx.h"
#include "go_client_ctx.h"
#include "ring_wakeup.h"
#include "bytes.h"
#include "counters.h"
/* Socket-level injection (sk_msg) writes the client contexts decided here into the requests:
 * the contract is bpf/common/sk_inject.h (pending entry per sending thread). Built in when present. */
#if __has_include("sk_inject.h")
#include "sk_inject.h"
#define SYS_HTTP_SK_INJECT 1
#endif

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define SOCK_STREAM 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115

/* Settings, set by the agent before load. */
const volatile __u64 correlation_window_ns = 5ULL * 1000 * 1000 * 1000;
const volatile __u64 thread_ctx_max_age_ns = 60ULL * 1000 * 1000 * 1000;
const volatile __u32 max_connections = 16384;
/* Leave each client request's context for the sk_msg injector (bpf/common/sk_inject.h). */
const volatile bool sk_inject_pending = false;
/* Wake the agent only once this many bytes wait in sys_http_events (0: the kernel's default,
 * every record while the agent keeps up); bpf/common/ring_wakeup.h. */
const volatile __u64 ring_wakeup_bytes = 0;

#include "sys_http_state.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct traced_process);
} traced_tgids SEC(".maps");

#include "sys_http_select.h"

/* A plain hash (not LRU), so a connection is never forgotten silently: inserts beyond
 * max_connections are refused and counted; entries go at close or process exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn_state);
} conns SEC(".maps");

/* Index 0: number of entries in conns (kept by this program). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} conn_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tuple_key);
	__type(value, struct client_request);
} client_requests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct thread_ctx);
} thread_ctxs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct syscall_args);
} args_by_tid SEC(".maps");

/* Leaves *a as the calling thread's syscall arguments (args_by_tid), in place over its entry when
 * it has one (ARGS_TAKEN or not). Returns nonzero when the map is full. */
static __always_inline long args_put(__u64 id, const struct syscall_args *a)
{
	struct syscall_args *old = bpf_map_lookup_elem(&args_by_tid, &id);
	if (old) {
		*old = *a;
		return 0;
	}
	return bpf_map_update_elem(&args_by_tid, &id, a, BPF_ANY);
}

/* The calling thread's syscall arguments, NULL when none waits (or they were taken). */
static __always_inline struct syscall_args *args_get(__u64 id)
{
	struct syscall_args *a = bpf_map_lookup_elem(&args_by_tid, &id);
	return a && a->kind != ARGS_TAKEN ? a : NULL;
}

/* Takes the calling thread's entry: it stays, marked, for the thread's next syscall to write. */
static __always_inline void args_drop(__u64 id)
{
	struct syscall_args *a = bpf_map_lookup_elem(&args_by_tid, &id);
	if (a)
		a->kind = ARGS_TAKEN;
}

/* Per-CPU record under construction: the message's first bytes are copied into e.data, scanned
 * for traceparent, and only the captured part is sent (bpf_ringbuf_output of header + capture),
 * so a 100-byte request costs ~260 bytes of ring, not the whole struct. */
struct scratch {
	struct sys_http_data_event e;
	__u8 slack[64]; /* header scans may look a few bytes past the capture */
#ifdef SYS_HTTP_SK_INJECT
	struct sk_inject_tracestate ts; /* an incoming tracestate being copied */
	struct sk_inject_pending pending; /* built here, not on the stack (512-byte limit incl. calls) */
#endif
	struct client_request creq; /* likewise */
	struct syscall_args args; /* likewise: the data syscall whose exit is being handled */
	struct thread_ctx nginx_parent; /* likewise: the downstream request of an nginx upstream write,
					 * or the server span of a Go client call */
	struct trace_context app;   /* likewise */
	struct trace_context parent; /* a server request's incoming traceparent, parsed (decide_server_context):
				      * in the map, so the parse's bytes are stored as they come, not spilled */
	struct head_reader head;    /* the request head being read (server) */
	__u32 scan_pos;             /* the head scan's next byte (sys_http_server_head.h) */
	__u32 exit_mode;            /* the traced process's mode, for sys_data_exit */
	__u32 client_mode;          /* likewise, for sys_client_write_enter */
	__u32 frame_pos;            /* a request's framing's next byte (request_end, sys_http_client_write.h) */
	/* The traced process's entry (offsets for Go), copied by the data syscall's own program, which
	 * looked it up anyway: the shared path reads no hash for it. */
	struct traced_process proc;
	struct iov_cache iovc; /* the data syscall's first iovecs (sys_http_bytes.h) */
	__u8 chunk[SYS_HTTP_CAPTURE]; /* head bytes past the capture, read 1 KiB at a time */
	__u8 chunk_slack[16]; /* the head scan reads 2 x 8 bytes at a time (sys_http_server_head.h) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_buf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} sys_http_events SEC(".maps");

/* Server connections whose request head goes on in later reads: the reader's state until the
 * head is complete (bpf/sys_http/sys_http_server_head.h). LRU: a lost entry decides with nothing (counted). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct conn_key);
	__type(value, struct head_reader);
} heads SEC(".maps");

#ifdef SYS_HTTP_SK_INJECT
/* The incoming tracestate of a server request, keyed by that request's span id (its 8 bytes as a
 * u64): a client call linked to the request, by whichever mechanism (thread, asyncio task, ...),
 * sends it on (W3C). LRU: a request's entry outlives its response for fire-and-forget calls. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct sk_inject_tracestate);
} request_tracestates SEC(".maps");
#endif

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SYS_HTTP_DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sys_http_drops SEC(".maps");

/* Keep the record types in BTF so their TypeScript view can be generated from this object. */
const struct sys_http_conn_event *_unused_sys_http_conn_event __attribute__((unused));
const struct sys_http_data_event *_unused_sys_http_data_event __attribute__((unused));
const struct sys_http_route_event *_unused_sys_http_route_event __attribute__((unused));
const enum sys_http_drop_reason *_unused_sys_http_drop_reason __attribute__((unused));
const enum sys_http_role *_unused_sys_http_role __attribute__((unused));
const enum sys_http_direction *_unused_sys_http_direction __attribute__((unused));
const enum sys_http_syscall *_unused_sys_http_syscall __attribute__((unused));

static __always_inline void count(__u32 reason)
{
	counter_inc(&sys_http_drops, reason);
}

/* The calling process's SYS_MODE_* bits, 0 when it is not traced: the first thing every program
 * asks, so an unselected process stops at its bit (sys_http_select.h) before any hash lookup. */
static __always_inline __u32 traced_mode(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!select_maybe(tgid))
		return 0;
	struct traced_process *p = bpf_map_lookup_elem(&traced_tgids, &tgid);
	if (!p)
		return 0;
	select_adopted(id);
	return p->mode;
}

#include "sys_http_sock.h"

#include "sys_http_adopt.h"
#include "sys_http_lifecycle.h"
#include "sys_http_go_server.h"
#include "sys_http_java.h"

#include "sys_http_node_link.h"

#include "sys_http_conn_events.h"

#include "sys_http_bytes.h"
#include "sys_http_asyncio.h"


#include "sys_http_server_head.h"
#include "sys_http_client_write.h"
#include "sys_http_pipelined.h"
#include "sys_http_nginx_link.h"
#include "sys_http_go_client.h"

/* ---- decisions at request starts ------------------------------------------------------------- */

/* A Go server read a request: leave the mirrored client request's context for the Go tracer,
 * keyed by the reading goroutine (user R14 at syscall entry). */
static __always_inline void go_link_store(struct conn_state *cs, const struct traced_process *tp)
{
	struct client_request *cr = bpf_map_lookup_elem(&client_requests, &cs->tuple);
	if (!cr)
		return;
	__u64 now = bpf_ktime_get_ns();
	if (cr->ts_ns > now || now - cr->ts_ns > correlation_window_ns) {
		count(SYS_SKIP_BLACKBOX_STALE);
		bpf_map_delete_elem(&client_requests, &cs->tuple);
		return;
	}
	struct go_link_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, ._pad = 0, .goid = 0 };
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__u64 g = 0;
	if (!regs || bpf_probe_read_kernel(&g, sizeof(g), &regs->r14) || !g ||
	    bpf_probe_read_user(&k.goid, sizeof(k.goid), (void *)(g + tp->goid_offset)) || !k.goid)
		return;
	struct go_link_parent p = { .ts_ns = now };
	p.ctx = cr->ctx;
	if (!bpf_map_update_elem(&spanbridge_go_link_v1, &k, &p, BPF_ANY)) {
		count(SYS_LINK_BLACKBOX);
		bpf_map_delete_elem(&client_requests, &cs->tuple);
	}
}

/* ---- data syscalls ----------------------------------------------------------------------------- */

/* The data syscalls' heavy paths exist once, as programs the per-syscall ones tail-call: the
 * verifier checks each once rather than once per syscall (8 exits and 4 writes). */
enum data_path {
	DATA_PATH_EXIT = 0,         /* sys_data_exit: every data syscall's exit */
	DATA_PATH_CLIENT_WRITE = 1, /* sys_client_write_enter: a client request about to be written */
	DATA_PATH_PIPELINED = 2,    /* sys_pipelined_read: a server read's pipelined requests (sys_http_pipelined.h) */
};

int sys_data_exit(struct trace_event_raw_sys_exit *ctx);
int sys_client_write_enter(struct trace_event_raw_sys_enter *ctx);
int sys_pipelined_read(struct trace_event_raw_sys_exit *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__uint(key_size, sizeof(__u32)); /* no BTF key type: the kernel refuses one for a prog array */
	__array(values, int(void *));
} data_paths SEC(".maps") = {
	.values = {
		[DATA_PATH_EXIT] = (void *)&sys_data_exit,
		[DATA_PATH_CLIENT_WRITE] = (void *)&sys_client_write_enter,
		[DATA_PATH_PIPELINED] = (void *)&sys_pipelined_read,
	},
};

/* A write-like syscall on a client connection where a request may start: none is in flight, or
 * the previous one was framed to its last byte (pipelining). */
static __always_inline bool client_request_write(const struct conn_state *cs, __u8 kind)
{
	return cs->role == SYS_ROLE_CLIENT && (kind & 1) &&
	       (cs->phase != PHASE_REQUEST || (cs->req_known && cs->req_left == 0));
}

/* A write-like syscall's entry: only a client request start keeps anything until the exit (its
 * context, decided now, before the bytes leave, so the server end finds it). Reads have no entry
 * program: their exit takes fd, buffer and count from the task's saved user registers. */
static __always_inline int on_write_enter(struct trace_event_raw_sys_enter *ctx, __u8 kind)
{
	__u32 mode = traced_mode();
	if (!(mode & SYS_MODE_TRACE))
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key key = { .tgid = id >> 32, .fd = ctx->args[0] };
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &key);
	if (!cs)
		cs = adopt_connection(&key);
	if (!cs)
		return 0;
	cs->write_enter_ns = bpf_ktime_get_ns();
	if (!client_request_write(cs, kind))
		return 0;
	/* A Go process's client connections tracked before its client spans moved to uprobes. */
	if ((mode & SYS_MODE_GO_SERVER) && !(mode & SYS_MODE_GO_CLIENT))
		return 0;
	struct syscall_args a = {};
	a.fd = ctx->args[0];
	a.buf = ctx->args[1];
	a.count = ctx->args[2];
	a.kind = kind;
	if (args_put(id, &a)) {
		count(SYS_DROP_ARGS_FULL);
		return 0;
	}
	bpf_tail_call(ctx, &data_paths, DATA_PATH_CLIENT_WRITE);
	count(SYS_DROP_TAIL_CALL);
	return 0;
}

#include "sys_http_client_decide.h"

/* The syscall's first three arguments (fd, buffer/iovec/msghdr, count) from the user registers
 * saved at its entry (rdi, rsi, rdx: contiguous in pt_regs as dx, si, di); data syscalls do not
 * change them. */
struct data_regs {
	__u64 dx, si, di;
};

/* The shared path of every data syscall's exit, tail-called with s->args (fd, buffer, count,
 * kind) and s->exit_mode set by the syscall's own program (data_exit_dispatch below). */
static __always_inline int on_data_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!s)
		return 0;
	/* From the scratch, not looked up again: and the verifier, knowing nothing of its bits here,
	 * does not walk the path once per combination the caller's tests left. */
	__u32 mode = s->exit_mode;
	__u64 id = bpf_get_current_pid_tgid();
	long ret = ctx->ret;
	/* The arguments in the scratch, not on the stack (512 bytes with the calls below, 6.1). */
	struct syscall_args *ap = &s->args;
	__u32 kind = ap->kind;
	if (ret <= 0 || kind > SYS_CALL_SENDMSG)
		return 0;
	__u64 nread = ret; /* this syscall's bytes (ret grows by a held prefix below) */
	struct conn_key key = { .tgid = id >> 32, .fd = ap->fd };
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &key);
	if (!cs || cs->phase == PHASE_NOT_HTTP)
		return 0;
	if ((kind & 1) && cs->role == SYS_ROLE_CLIENT) {
		/* A client request start decided at the entry (sys_client_write_enter). */
		struct syscall_args *a = args_get(id);
		if (a) {
			if (a->kind == kind && a->fd == key.fd) /* else another syscall's, whose exit was not seen */
				*ap = *a;
			a->kind = ARGS_TAKEN;
		}
	}

	__u64 ptr = 0, seg = 0;
	if (first_segment_kept(ap, &ptr, &seg, &s->iovc))
		return 0;
	__u8 egress = ap->kind & 1;
	/* A request start may arrive in reads shorter than a method ("GET /sp", "lit HTTP/1.1..."):
	 * the kernel keeps up to 7 such bytes and checks them with the next read. */
	__u32 plen = 0;
	if (cs->role == SYS_ROLE_SERVER && !egress && !cs->head_open)
		plen = cs->prefix_len & 7;
	if (plen)
		__builtin_memcpy(s->e.data, cs->prefix, 8);
	__u64 cap = seg < (__u64)ret ? seg : (__u64)ret;
	if (cap > SYS_HTTP_CAPTURE - plen)
		cap = SYS_HTTP_CAPTURE - plen;
	/* The bound is checked on the register passed as the size (older verifiers, 6.1, do not carry
	 * it over from a copy the compiler kept elsewhere). */
	__u64 rd = cap;
	asm volatile("" : "+r"(rd));
	if (rd == 0 || rd > SYS_HTTP_CAPTURE)
		return 0;
	if (bpf_probe_read_user(s->e.data + plen, rd, (void *)ptr))
		return 0;
	cap += plen;
	ret += plen;
	if (cap > SYS_HTTP_CAPTURE)
		cap = SYS_HTTP_CAPTURE;

	__u8 flags = 0;
	__u8 head_more = 0; /* server: this read continues a head that is still open */
	if (cs->role == SYS_ROLE_SERVER) {
		if (!egress && cs->head_open) {
			head_more = 1;
		} else if (!egress) {
			/* While a request is open, only reads that asked for so few bytes: Go's 1-byte
			 * background read (net/http connReader.backgroundRead) takes the first byte of a
			 * request pipelined behind the one being served, and the rest comes in the next read. */
			if (cap < 8 && maybe_request_prefix(s->e.data, cap) && (cs->phase != PHASE_REQUEST || seg < 8)) {
				__builtin_memcpy(cs->prefix, s->e.data, 8);
				cs->prefix_len = cap;
				return 0;
			}
			cs->prefix_len = 0;
			if (cs->phase != PHASE_REQUEST && is_request_start(s->e.data, cap)) {
				flags = SYS_F_REQUEST_START;
			} else if (cs->phase == PHASE_REQUEST && is_request_start(s->e.data, cap)) {
				/* Another request before the response (pipelining), or a body that looks like
				 * one: user space frames it; these ids serve only the former. */
				flags = SYS_F_SPARE_IDS;
			} else if (cs->phase == PHASE_IDLE) {
				idle_not_http(cs);
				if (cs->phase == PHASE_NOT_HTTP && (mode & SYS_MODE_GO_SERVER))
					go_server_not_http1(key.tgid);
				return 0;
			}
		} else {
			/* The response of a request pipelined behind the answered one starts a response too. */
			if ((cs->phase == PHASE_REQUEST || (cs->phase == PHASE_RESPONSE && cs->pipelined)) &&
			    is_response_start(s->e.data, cap)) {
				if (cs->phase == PHASE_RESPONSE)
					cs->pipelined -= 1;
				flags = SYS_F_RESPONSE_START;
				cs->phase = PHASE_RESPONSE;
				/* a response before the head ended: decided below, then released */
				head_more = cs->head_open ? 2 : 0;
				if (!head_more)
					thread_release(cs, key.tgid);
			} else if (cs->phase == PHASE_IDLE) {
				idle_not_http(cs);
				return 0;
			}
		}
	} else {
		if (egress) {
			if (ap->start) {
				flags = SYS_F_REQUEST_START | ap->flags;
				cs->phase = PHASE_REQUEST;
				cs->ctx = ap->ctx;
				/* Bytes of the last framed request still to come (pipelining needs it whole). */
				cs->req_known = ap->last_end != FRAME_UNKNOWN && ap->last_end >= (__u64)ret;
				cs->req_left = cs->req_known ? ap->last_end - ret : 0;
			} else if (cs->phase == PHASE_REQUEST && cs->req_known) {
				if ((__u64)ret <= cs->req_left)
					cs->req_left -= ret;
				else
					cs->req_known = 0; /* more than the request: what follows is not framed */
			} else if (cs->phase == PHASE_IDLE) {
				if (mode & SYS_MODE_GO_CLIENT)
					go_client_tls_seen(key.tgid, s->e.data, cap);
				idle_not_http(cs);
				return 0;
			}
		} else {
			if (cs->phase == PHASE_REQUEST && is_response_start(s->e.data, cap)) {
				flags = SYS_F_RESPONSE_START;
				cs->phase = PHASE_RESPONSE;
			} else if (cs->phase == PHASE_IDLE) {
				idle_not_http(cs);
				return 0;
			}
		}
	}

	if (flags & (SYS_F_REQUEST_START | SYS_F_RESPONSE_START))
		cs->adopt_budget = 0; /* in step with the messages now */
	if (!(mode & SYS_MODE_TRACE)) {
		/* Go: responses are not watched (writes are not hooked), so the phase stays "request";
		 * every read that begins with a request line is the next keep-alive request. */
		if (cs->role == SYS_ROLE_SERVER && (flags & (SYS_F_REQUEST_START | SYS_F_SPARE_IDS))) {
			cs->phase = PHASE_REQUEST;
			go_link_store(cs, &s->proc);
		}
		return 0;
	}
	if (!cs->announced) {
		cs->announced = 1;
		emit_conn_open(cs, key.fd);
	}
	struct sys_http_data_event *e = &s->e;
	__u64 now = bpf_ktime_get_ns();
	bool pipelined = false; /* a server read that may hold requests pipelined behind its first */
	{
		e->type = RECORD_SYS_HTTP_DATA;
		e->direction = egress ? SYS_DIR_EGRESS : SYS_DIR_INGRESS;
		e->role = cs->role;
		e->flags = flags;
		e->syscall = ap->kind;
		e->capture_len = cap;
		e->pid = id >> 32;
		e->tid = (__u32)id;
		e->fd = key.fd;
		e->flags2 = 0;
		e->route_len = 0;
		__builtin_memset(e->_pad_route, 0, sizeof(e->_pad_route));
		__builtin_memset(e->_pad_data, 0, sizeof(e->_pad_data));
		e->conn_id = cs->conn_id;
		/* a write: its entry time (sys_http_data_event.ts_ns), taken once */
		e->ts_ns = egress && cs->write_enter_ns && cs->write_enter_ns <= now ? cs->write_enter_ns : now;
		if (egress)
			cs->write_enter_ns = 0;
		e->len = ret;
		if ((__u64)ret > cap && ret > SYS_HTTP_CAPTURE) {
			e->flags |= SYS_F_TRUNCATED;
			count(SYS_SKIP_CAPTURE_TRUNCATED);
		}
		/* The last bytes only when they are not in the capture (user space reads them only then). */
		e->tail_len = (__u64)ret > cap ? data_tail(ret) : 0;
	}

	if (cs->role == SYS_ROLE_SERVER && (flags & SYS_F_REQUEST_START)) {
		cs->phase = PHASE_REQUEST;
		/* Decided even if the record is then lost, so the thread and the peer stay consistent. */
		server_request_start(cs, &key, s, ptr, seg, nread, plen ? 0 : cap, now, e, mode);
		/* Bytes behind a head that ended in this read: a body, or requests pipelined behind it.
		 * Only then can the read hold a further request: its spare slots get contexts (new roots
		 * unless decided in sys_pipelined_read); otherwise they say "none" (no span id). */
		cs->pipelined = 0;
		pipelined = s->head.done == HEAD_COMPLETE && !(e->flags2 & SYS_F2_CONTEXT_PENDING) && s->head.seen < nread;
		no_spare_ids(e); /* filled by sys_pipelined_read when pipelined */
	} else if (head_more) {
		__builtin_memset(e->parent_span_id, 0, 8);
		server_head_more(cs, &key, s, ptr, seg, nread, plen ? 0 : cap, now, e, mode, head_more == 1);
		if (head_more == 2)
			thread_release(cs, key.tgid);
	} else if (flags & SYS_F_REQUEST_START) {
		__builtin_memcpy(e->parent_span_id, ap->parent_span_id, 8);
		e->flags2 = (ap->pipelined ? SYS_F2_PIPELINED : 0) | (ap->forwarded ? SYS_F2_FORWARDED : 0) |
			    (ap->task_parent ? SYS_F2_TASK_PARENT : 0) | (ap->downstream_parent ? SYS_F2_DOWNSTREAM_PARENT : 0) | (ap->node_parent ? SYS_F2_NODE_PARENT : 0);
		if (ap->extra) {
			/* Client requests pipelined in this write: the ids the sk_msg program also got. */
			e->flags |= SYS_F_SPARE_IDS;
			e->flags2 |= SYS_F2_SPARES;
			e->spare_remote = 0;
			__builtin_memset(e->_pad_spare, 0, sizeof(e->_pad_spare));
#pragma unroll
			for (int k = 0; k < SYS_HTTP_SPARE_IDS; k++) {
				__builtin_memcpy(e->spare_trace_ids[k], ap->ctx.trace_id, 16);
				__builtin_memcpy(e->spare_span_ids[k], ap->extra_span_ids[k], 8);
				e->spare_trace_flags[k] = ap->ctx.flags;
			}
		}
	} else if (flags & SYS_F_SPARE_IDS) {
		no_spare_ids(e); /* filled by sys_pipelined_read */
		pipelined = true;
		__builtin_memset(e->parent_span_id, 0, 8);
	} else {
		__builtin_memset(e->parent_span_id, 0, 8);
	}
	__builtin_memcpy(e->trace_id, cs->ctx.trace_id, 16);
	__builtin_memcpy(e->span_id, cs->ctx.span_id, 8);
	e->trace_flags = cs->ctx.flags;
	if ((mode & SYS_MODE_GO_SERVER) && (flags & SYS_F_RESPONSE_START) && cs->role == SYS_ROLE_SERVER)
		go_server_response(cs, &s->proc, e, cap);
	if ((mode & SYS_MODE_GO_CLIENT) && (flags & SYS_F_RESPONSE_START) && cs->role == SYS_ROLE_CLIENT)
		go_client_response(cs, id >> 32, e);
	if (pipelined) {
		bpf_tail_call(ctx, &data_paths, DATA_PATH_PIPELINED);
		count(SYS_DROP_TAIL_CALL); /* sent with no spare contexts: user space counts the requests */
	}
	__u64 size = offsetof(struct sys_http_data_event, data) + (cap & (SYS_HTTP_CAPTURE | (SYS_HTTP_CAPTURE - 1))) +
		     (e->route_len & (SYS_HTTP_ROUTE_MAX | (SYS_HTTP_ROUTE_MAX - 1)));
	if (size > sizeof(*e) || (e->flags2 & SYS_F2_SPARES))
		size = sizeof(*e); /* the spare contexts are behind data */
	if (bpf_ringbuf_output(&sys_http_events, e, size, ring_wakeup_flags(&sys_http_events, ring_wakeup_bytes)))
		count(SYS_DROP_RINGBUF_FULL);
	return 0;
}

/* Tail-called by every data syscall's exit program. */
SEC("tracepoint")
int sys_data_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_data_exit(ctx);
}

/* A data syscall's exit: the shared path runs only for traced processes' transfers (a read of a
 * Go process traced for black-box links only, SYS_MODE_GO_LINK, too). */
static __always_inline int data_exit_dispatch(struct trace_event_raw_sys_exit *ctx, __u8 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	long ret = ctx->ret;
	/* A read that returned nothing (EAGAIN: Go and Node read until it) stops before any hash. */
	if (!select_maybe(tgid) || (ret <= 0 && !(kind & 1)))
		return 0;
	struct traced_process *p = bpf_map_lookup_elem(&traced_tgids, &tgid);
	if (!p)
		return 0;
	select_adopted(id);
	__u32 mode = p->mode;
	if (!(mode & SYS_MODE_TRACE) && !((mode & SYS_MODE_GO_LINK) && !(kind & 1)))
		return 0;
	/* Only a tracked connection's transfer goes on (a connection open before the attach is taken
	 * over here, at its first one): other fds of a traced process (files, pipes, eventfds) stop. */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	struct data_regs r;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &zero);
	if (!s || !regs || bpf_probe_read_kernel(&r, sizeof(r), &regs->dx))
		return 0;
	struct conn_key key = { .tgid = tgid, .fd = r.di };
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &key);
	if (!cs && ret > 0)
		cs = adopt_connection(&key);
	if (!cs)
		return 0;
	/* (A Go process's client connections tracked before its client spans moved to uprobes are not.) */
	if (ret > 0 && cs->phase != PHASE_NOT_HTTP &&
	    !(cs->role == SYS_ROLE_CLIENT && (mode & SYS_MODE_GO_SERVER) && !(mode & SYS_MODE_GO_CLIENT))) {
		__builtin_memset(&s->args, 0, sizeof(s->args));
		s->args.fd = key.fd;
		s->args.buf = r.si;
		s->args.count = r.dx;
		s->args.kind = kind;
		s->exit_mode = mode;
		s->proc = *p;
		bpf_tail_call(ctx, &data_paths, DATA_PATH_EXIT);
		count(SYS_DROP_TAIL_CALL);
	}
	/* a client request start decided at the entry and not sent */
	if ((kind & 1) && cs->role == SYS_ROLE_CLIENT)
		args_drop(id);
	return 0;
}

#define READ_PROBE(name, kind)                                              \
	SEC("tracepoint/syscalls/sys_exit_" #name)                           \
	int sys_exit_##name(struct trace_event_raw_sys_exit *ctx)            \
	{                                                                    \
		return data_exit_dispatch(ctx, kind);                        \
	}

#define WRITE_PROBES(name, kind)                                            \
	SEC("tracepoint/syscalls/sys_enter_" #name)                          \
	int sys_enter_##name(struct trace_event_raw_sys_enter *ctx)          \
	{                                                                    \
		return on_write_enter(ctx, kind);                            \
	}                                                                    \
	READ_PROBE(name, kind)

READ_PROBE(read, SYS_CALL_READ)
WRITE_PROBES(write, SYS_CALL_WRITE)
READ_PROBE(readv, SYS_CALL_READV)
WRITE_PROBES(writev, SYS_CALL_WRITEV)
READ_PROBE(recvfrom, SYS_CALL_RECVFROM)
WRITE_PROBES(sendto, SYS_CALL_SENDTO)
READ_PROBE(recvmsg, SYS_CALL_RECVMSG)
WRITE_PROBES(sendmsg, SYS_CALL_SENDMSG)
