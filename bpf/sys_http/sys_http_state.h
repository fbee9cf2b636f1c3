/* bpf/sys_http/sys_http.bpf.c: the kernel-side state of the syscall tracer (per process, per connection,
 * per thread, per syscall in flight); kept in its maps, never sent as records. */
#ifndef SPANBRIDGE_SYS_HTTP_STATE_H
#define SPANBRIDGE_SYS_HTTP_STATE_H

/* Per traced process: SYS_MODE_* bits. */
enum sys_http_mode {
	SYS_MODE_TRACE = 1, /* report spans for this process */
	SYS_MODE_THREAD_LINK = 2, /* link client calls to the thread's server request */
	SYS_MODE_GO_LINK = 4, /* Go process (spans come from the Go tracer): only find black-box
	   * parents for its server requests (bpf/common/sys_http_go_link.h) */
	SYS_MODE_INHERITED = 8, /* traced because its parent was, from its fork (sys_http_lifecycle.h) */
	SYS_MODE_ASYNCIO = 16, /* Python asyncio: client calls on event-loop threads take their task's
	   * server request (sys_http_asyncio.h) */
	SYS_MODE_NGINX_LINK = 32, /* nginx: link an upstream request to the downstream request it serves
	   * (bpf/sys_http/sys_http_nginx_link.h), never to the thread's */
	SYS_MODE_GO_SERVER = 64, /* with SYS_MODE_TRACE: a Go process whose server spans come from this path
	   * (go.server_path: syscall); its client calls stay the Go tracer's, so
	   * its client connections are not tracked (bpf/sys_http/sys_http_go_server.h) */
	SYS_MODE_GO_CLIENT = 128, /* with SYS_MODE_GO_SERVER: its client calls are traced here too
	   * (go.client_path: syscall), parented by the server span its persistConn.roundTrip
	   * uprobe left for the write's buffer (bpf/sys_http/sys_http_go_client.h) */
};
/* In BTF (the TypeScript view is generated from it: src/events/structs.generated.ts). */
const enum sys_http_mode *_unused_sys_http_mode __attribute__((unused));

enum conn_phase {
	PHASE_IDLE = 0,     /* nothing seen yet */
	PHASE_REQUEST = 1,  /* request being received (server) or sent (client) */
	PHASE_RESPONSE = 2, /* response being sent (server) or received (client) */
	PHASE_NOT_HTTP = 3, /* first bytes were not HTTP/1.x: ignored until closed */
};

struct conn_key {
	__u32 tgid;
	__u32 fd;
};

/* The connection seen from the client towards the server: the same key on both ends. */
struct tuple_key {
	__u8 client_addr[16];
	__u8 server_addr[16];
	__u16 client_port;
	__u16 server_port;
};

struct conn_state {
	__u64 conn_id;
	struct trace_context ctx; /* the current request's span */
	struct tuple_key tuple;
	__u32 owner_tid;  /* server: the thread that read the current request */
	__u8 role;
	__u8 phase;
	__u8 thread_active; /* server: counted in owner thread's thread_ctx */
	__u8 announced;     /* the open record was sent */
	__u8 family;
	__u8 prefix_len; /* server: bytes of a request start that came in a read shorter than 8 */
	__u8 req_known;  /* client: req_left is known (the request's framing was seen) */
	__u8 adopt_budget; /* taken over while open: messages left before "not HTTP" (sys_http_adopt.h) */
	__u8 prefix[8];
	__u32 req_left;  /* client, req_known: bytes of the current request still to be written */
	__u8 head_open;  /* server: the request's head goes on in later reads (its reader is in heads) */
	__u8 has_incoming; /* server: the current request came with a valid traceparent naming ... */
	__u8 pipelined;  /* server: requests decided in a read behind the current one, not yet answered */
	__u8 _pad2;
	__u8 incoming_span_id[8]; /* ... this parent span (a proxy forwarding it: bpf/sys_http/sys_http_nginx_link.h) */
	__u64 goid; /* server, SYS_MODE_GO_SERVER: the goroutine serving the connection (net/http's
		     * conn.serve reads every request and writes every response), read from TLS once */
	__u64 node_parser; /* server, Node.js: its HTTP parser's async id (bpf/sys_http/sys_http_node_link.h) */
	__u64 go_conn; /* server, SYS_MODE_GO_SERVER: the connection's *net/http.conn (from
			* spanbridge_go_conns_v1 at its first response, then kept: one lookup per connection) */
	/* The entry time of the write in progress (0: none seen), the time its record carries: see
	 * sys_http_data_event.ts_ns. */
	__u64 write_enter_ns;
};

/* A client request waiting for the server end of its connection (black-box correlation). */
struct client_request {
	__u64 ts_ns;
	struct trace_context ctx; /* the client span */
	__u32 tgid;
	__u32 _pad;
};

/* Server requests active on one thread; a client call links only when exactly one is. */
struct thread_ctx {
	__u64 ts_ns;
	struct trace_context ctx;
	__u32 active;
	__u32 ambiguous; /* several were active at once: no link until all are answered */
	/* The request came with a valid traceparent naming this parent span: a client request that
	 * carries the same value forwards it (a proxy) and is not an application span of its own. */
	__u8 incoming_span_id[8];
	__u32 has_incoming;
	__u32 _pad;
};

struct syscall_args {
	__u64 fd;
	__u64 buf; /* buffer, iovec array or msghdr */
	__u64 count;
	__u8 kind; /* enum sys_http_syscall */
	__u8 start; /* write: a client request start decided at enter */
	__u8 flags;
	__u8 forwarded; /* write, start: the request forwards its thread's incoming traceparent */
	__u8 task_parent; /* write, start: parent from the asyncio task (sys_http_asyncio.h) */
	__u8 downstream_parent; /* write, start: parent from nginx's downstream request (sys_http_nginx_link.h) */
	__u8 node_parent; /* write, start: parent from node's async ids (sys_http_node_link.h) */
	__u8 _pad;
	struct trace_context ctx;
	__u8 parent_span_id[8];
	/* write, start: further requests pipelined in the same write (their offsets and span ids;
	 * same trace, parent and flags as ctx) and where the last framed request ends */
	__u8 extra;
	__u8 pipelined; /* the request start follows a complete request still awaiting its response */
	__u16 extra_off[SYS_HTTP_SPARE_IDS];
	__u32 last_end; /* FRAME_UNKNOWN when its framing was not seen */
	__u8 extra_span_ids[SYS_HTTP_SPARE_IDS][8];
	__u32 _pad2;
};

#define FRAME_UNKNOWN 0xffffffff

/* syscall_args.kind of a thread's args_by_tid entry that was taken: entries are written in place
 * and marked taken instead of inserted and deleted per syscall (an LRU update allocates a node
 * and swaps it in under the bucket lock, a delete takes the lock again: ~0.3-0.5 us per client
 * request together). Only the thread itself writes and reads its entry, one after the other. */
#define ARGS_TAKEN 0xff

/* A vectored syscall's first iovecs, read by first_segment_kept in one user read and taken by
 * read_tail from here (bpf/sys_http/sys_http_bytes.h): Node writes a response as [head, body],
 * whose tail is in the second (each user read ~80 ns: 3 per such response instead of 5). */
struct iov_cache {
	struct iovec v[2];
	__u64 iov;    /* the iovec array */
	__u64 iovcnt; /* its length */
	__u32 n;      /* iovecs in v (0: none kept: not vectored, or not read) */
	__u32 _pad;
};

/* A client request's parent found by a mechanism other than the thread (nginx's downstream
 * request, node's async ids, Go's roundTrip hand-over) as a thread context with exactly one active
 * request, so the client decision (sys_http_client_decide.h) treats every mechanism alike. */
static __always_inline void linked_parent(struct thread_ctx *out, __u64 now, const struct trace_context *ctx,
					  const __u8 *incoming_span_id, __u32 has_incoming)
{
	out->ts_ns = now;
	out->ctx = *ctx;
	out->active = 1;
	out->ambiguous = 0;
	__builtin_memcpy(out->incoming_span_id, incoming_span_id, 8);
	out->has_incoming = has_incoming;
	out->_pad = 0;
}

/* Per traced process (tgid), written by the agent. */
struct traced_process {
	__u32 mode;        /* SYS_MODE_* */
	__u32 goid_offset; /* SYS_MODE_GO_LINK, SYS_MODE_GO_SERVER: offset of runtime.g.goid */
	/* SYS_MODE_GO_SERVER: g is at fsbase + g_tls_offset (resolved per executable by the agent);
	 * the route's path from a connection: net/http.conn.curReq, response.req, Request.Pattern
	 * (OFFSET_ABSENT: no route from Go, e.g. Pattern before Go 1.23) */
	__s32 g_tls_offset;
	__u32 conn_cur_req;
	__u32 resp_req;
	__u32 req_pattern;
	/* SYS_MODE_GO_SERVER: accepted connections whose first bytes were not HTTP/1.x (TLS, HTTP/2):
	 * their requests have no span on this path; the agent moves the process to uprobes. */
	__u32 go_not_http1;
	/* SYS_MODE_GO_CLIENT: client connections whose first write was a TLS handshake (HTTPS calls):
	 * those calls have no span on this path; the agent moves the process's client spans to uprobes. */
	__u32 go_client_tls;
};

#endif
