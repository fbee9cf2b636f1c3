/* Go HTTP/1 client calls traced from syscall tracepoints (setting go.client_path: syscall), with
 * no per-request uprobe. Once per connection, (*net/http.persistConn).writeLoop entry (the
 * connection's writer goroutine starting; bpf/go_http/go_http_client_lean.h) records which
 * persistConn owns the connection's write buffer, persistConn.bw.buf: the bytes writeLoop hands to
 * write(2) when it flushes a request. The syscall tracer's client write
 * (bpf/sys_http/sys_http_go_client.h) finds the persistConn by the syscall's buffer address, checks
 * that it still owns that buffer, and follows net/http's hand-over to the goroutine that asked for
 * the call: roundTrip sends the request to writeLoop (pc.writech), then a requestAndChan naming its
 * response channel into pc.reqch (buffered, 1; readLoop takes it only once the response's first
 * byte has arrived), then parks receiving on that response channel. So while the request is
 * written, pc.reqch holds the call's requestAndChan and the caller's sudog waits first in the
 * response channel's recvq: reqch -> hchan.buf[recvx].ch -> hchan.recvq.first -> sudog.g -> goid,
 * whose server span (or that of the goroutine that started it: depth 1, g.parentGoid) is the call's
 * parent (bpf/common/go_server_ctx.h). A caller not parked yet (nearly always: not even handed
 * over, so nothing in the connection leads to it) is named by the roundTrip probe's record of the
 * call (struct go_client_caller) while that probe is attached, which such writes bring about at
 * low call rates; else the call has no parent, counted (SYS_SKIP_GO_CLIENT_UNPARKED), never
 * another's. A connection whose writer started
 * before the attach is recorded by the adoption probe at its next call's roundTrip entry, attached
 * at once when the process holds client connections at the attach and again while such connections
 * show up (spanbridge_go_client_unknown_v1).
 * Keying by the buffer, not by the fd read through net.Conn, needs no interface type check: a TLS
 * connection writes records from another buffer, so an HTTPS call never matches (those calls have
 * no span on this path: docs/limits.md).
 * Every offset comes from the binary's DWARF (the agent's go_offsets), copied into the connection's
 * entry so the syscall tracer needs nothing of the Go tracer's but these maps.
 * Pinned by name so both objects share the maps. Needs go_server_ctx.h and sys_http_go_link.h. */
#ifndef SPANBRIDGE_GO_CLIENT_CTX_H
#define SPANBRIDGE_GO_CLIENT_CTX_H

struct go_client_key {
	__u32 tgid;
	__u32 _pad;
	__u64 buf; /* persistConn.bw.buf's array: the address write(2) gets */
};

/* go_client_conn.flags */
#define GO_CLIENT_F_PARENT_GOID (1 << 0) /* look at g.parentGoid too (go.max_goroutine_depth > 0) */

/* One client connection: its persistConn and the offsets the hand-over is followed with. */
struct go_client_conn {
	__u64 pc;            /* *net/http.persistConn */
	__u32 pconn_bw;      /* persistConn.bw (*bufio.Writer) */
	__u32 bufio_buf;     /* bufio.Writer.buf */
	__u32 pconn_reqch;   /* persistConn.reqch (chan requestAndChan) */
	__u32 chan_qcount;   /* runtime.hchan.qcount */
	__u32 chan_dataqsiz; /* runtime.hchan.dataqsiz */
	__u32 chan_buf;      /* runtime.hchan.buf */
	__u32 chan_elemsize; /* runtime.hchan.elemsize (uint16) */
	__u32 chan_recvx;    /* runtime.hchan.recvx */
	__u32 chan_recvq;    /* runtime.hchan.recvq (waitq) */
	__u32 waitq_first;   /* runtime.waitq.first (*sudog) */
	__u32 sudog_g;       /* runtime.sudog.g */
	__u32 sudog_c;       /* runtime.sudog.c (the channel it waits on) */
	__u32 rac_ch;        /* net/http.requestAndChan.ch */
	__u32 g_goid;        /* runtime.g.goid */
	__u32 g_parent_goid; /* runtime.g.parentGoid (OFFSET_ABSENT before Go 1.21) */
	__u32 flags;         /* GO_CLIENT_F_* */
	__u32 pconn_nwrite;  /* net/http.persistConn.nwrite (OFFSET_ABSENT: no caller from roundTrip) */
	__u32 _pad;
};

/* (tgid, persistConn.bw.buf) -> the connection; one entry per connection, written once. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_client_key);
	__type(value, struct go_client_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spanbridge_go_client_conns_v2 SEC(".maps");

/* A call's caller, recorded by the roundTrip probe while it is attached (src/tracers/go-client-adoption.ts),
 * for a write ahead of its caller (the writer goroutine ran before the caller handed the request
 * over: nothing in the connection leads to the caller yet). A persistConn serves one call at a time
 * and counts the bytes it wrote (nwrite): the entry is the call being written only while nwrite is
 * still what it was at that call's roundTrip entry (its request start is its first write). */
struct go_client_caller {
	__u64 pc;          /* *net/http.persistConn */
	__u64 goid;        /* the goroutine that entered roundTrip */
	__u64 parent_goid; /* the goroutine that started it (0: unknown) */
	__s64 nwrite;      /* pc.nwrite then */
};

/* (tgid, persistConn.bw.buf) -> the latest call's caller, while the roundTrip probe is attached. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_client_key);
	__type(value, struct go_client_caller);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spanbridge_go_client_callers_v1 SEC(".maps");

/* Process (tgid) -> client request writes from a buffer no connection entry names: connections
 * whose writer started before the attach. The agent attaches the adoption probe
 * ((*persistConn).roundTrip entry, bpf/go_http/go_http_client_lean.h) when this grows and takes it
 * away once enough calls (or time) went by without growth (src/tracers/go-client-adoption.ts). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spanbridge_go_client_unknown_v1 SEC(".maps");

/* Calling goroutine -> when a dial it asked for began (ktime): (*Transport).dialConn entry leaves
 * it, the call's request write (the syscall tracer, once it knows the caller) takes it, and
 * net/http.stripPassword entry turns one still there into an ERROR span (a call that failed before
 * it wrote anything: bpf/go_http/go_http_client_lean.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct go_link_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spanbridge_go_client_dials_v1 SEC(".maps");

#endif
