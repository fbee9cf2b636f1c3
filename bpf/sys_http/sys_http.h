/* Records of the any-language HTTP/1.x tracer on syscall tracepoints (bpf/sys_http/sys_http.bpf.c).
 * Fixed-width fields, explicit padding; the TypeScript view is generated from this object's BTF
 * (scripts/gen-structs.ts -> src/events/structs.generated.ts). */
#ifndef SPANBRIDGE_SYS_HTTP_H
#define SPANBRIDGE_SYS_HTTP_H

/* First bytes of each message copied to the agent (request line, headers, status line). */
#define SYS_HTTP_CAPTURE 1024
/* Last bytes of each message (chunked body terminator "0\r\n\r\n"). */
#define SYS_HTTP_TAIL 8
/* Spare ids for pipelined requests that arrive in one read. */
#define SYS_HTTP_SPARE_IDS 3
/* Bytes of a Go server route (Request.Pattern) sent after a response's captured bytes. */
#define SYS_HTTP_ROUTE_MAX 128

enum sys_http_role {
	SYS_ROLE_SERVER = 1, /* accepted socket */
	SYS_ROLE_CLIENT = 2, /* connected socket */
};

enum sys_http_direction {
	SYS_DIR_INGRESS = 0, /* read by the process */
	SYS_DIR_EGRESS = 1,  /* written by the process */
};

/* sys_http_data_event.flags */
enum sys_http_flag {
	SYS_F_REQUEST_START = 1 << 0, /* the kernel saw a request line: ids below are this request's */
	SYS_F_RESPONSE_START = 1 << 1, /* the kernel saw a status line */
	SYS_F_REMOTE_PARENT = 1 << 2, /* parent from a valid incoming traceparent */
	SYS_F_THREAD_PARENT = 1 << 3, /* client span: parent is the thread's active server span */
	SYS_F_BLACKBOX_PARENT = 1 << 4, /* server span: parent is the same-node client span */
	SYS_F_TRUNCATED = 1 << 5, /* the message was longer than the capture */
	SYS_F_APP_TRACEPARENT = 1 << 7, /* client span: the application sent its own traceparent; its
	   * ids are this span's (never a second header, never other ids) */
	SYS_F_SPARE_IDS = 1 << 6, /* server: a request line was seen while a request was open
	   * (pipelining): the spare contexts are this read's requests', the
	   * first at offset 0, used only if user space finds them. client (with SYS_F_REQUEST_START): further requests
	   * were framed in this write; spare ids are theirs, in order (same trace
	   * and parent as the first), and were injected with them */
};
/* In BTF (the TypeScript view is generated from it: src/events/structs.generated.ts). */
const enum sys_http_flag *_unused_sys_http_flag __attribute__((unused));

/* sys_http_data_event.flags2 */
enum sys_http_flag2 {
	SYS_F2_PIPELINED = 1 << 0, /* client request start written while the previous request, framed
	   * to its last byte, still awaits its response */
	SYS_F2_FORWARDED = 1 << 1, /* client request start: it carried the traceparent the thread's
	   * server request came in with (a proxy forwarding it); the span is
	   * that server span's child and its id replaces the value (sk_msg) */
	SYS_F2_CONTEXT_PENDING = 1 << 2, /* server request start whose head goes on in later reads: its
	   * context is decided when the head is complete, and comes with
	   * SYS_F2_CONTEXT on a later record of the connection */
	SYS_F2_CONTEXT = 1 << 3, /* the pending request's context (trace/span/parent ids, trace flags
	   * and the parent flags) is decided: this record carries it */
	SYS_F2_TASK_PARENT = 1 << 4, /* client request start (with SYS_F_THREAD_PARENT): the parent is the
	   * server request of the writing asyncio task, not of the thread */
	SYS_F2_DOWNSTREAM_PARENT = 1 << 5, /* client request start (with SYS_F_THREAD_PARENT): an nginx
	   * upstream request; the parent is the downstream request it
	   * serves (bpf/sys_http/sys_http_nginx_link.h), not the thread's */
	SYS_F2_NODE_PARENT = 1 << 6, /* client request start (with SYS_F_THREAD_PARENT): a Node.js call;
	   * the parent is the server request whose callback made it, read
	   * from node's async ids (bpf/sys_http/sys_http_node_link.h) */
	SYS_F2_PROPAGATION_SKIPPED = 1 << 7, /* client response start of a Go call (go.client_path
	   * syscall): the sk_msg program left its request without the header
	   * (head longer than it can check, split beyond it, push failed,
	   * stale hand-over): the span says spanbridge.propagation=skipped */
	SYS_F2_SPARES = 1 << 8, /* the spare contexts (spare_* behind data) were sent: the record has
	   * the struct's full size. Without it there are none (no slot holds an id) */
};
/* In BTF (the TypeScript view is generated from it: src/events/structs.generated.ts). */
const enum sys_http_flag2 *_unused_sys_http_flag2 __attribute__((unused));

/* Kernel-side drop and skip counters of this tracer (per-CPU array sys_http_drops). */
enum sys_http_drop_reason {
	SYS_DROP_RINGBUF_FULL = 0,      /* record lost: the agent is not keeping up */
	SYS_DROP_CONN_STATE_FULL = 1,   /* a connection was not tracked: state table at its limit */
	SYS_DROP_ARGS_FULL = 2,         /* syscall arguments could not be kept until exit */
	SYS_SKIP_NOT_HTTP = 3,          /* a traced connection whose first bytes are not HTTP/1.x */
	SYS_SKIP_CAPTURE_TRUNCATED = 4, /* a message longer than the capture (only its start is seen) */
	SYS_SKIP_BAD_TRACEPARENT = 5,   /* incoming traceparent malformed: treated as absent */
	SYS_SKIP_THREAD_AMBIGUOUS = 6,  /* client call on a thread with several active server requests */
	SYS_SKIP_BLACKBOX_STALE = 7,    /* a mirrored client request outside the correlation window */
	SYS_LINK_BLACKBOX = 8,          /* (not a drop) server requests linked to a same-node client */
	SYS_LINK_THREAD = 9,            /* (not a drop) client requests linked to their thread's server span */
	SYS_SKIP_TRACESTATE_NOT_KEPT = 10, /* incoming tracestate invalid (W3C list rules) or longer than
					    * 512 bytes: not sent on */
	SYS_DROP_TAIL_CALL = 11,        /* the shared data path could not be entered (bpf_tail_call failed) */
	SYS_PROC_INHERITED = 12,        /* (not a drop) a forked child of a traced process, traced from its fork */
	SYS_DROP_TRACED_FULL = 13,      /* a forked child could not be traced: traced_tgids at its limit */
	SYS_PROC_EXEC_RELEASED = 14,    /* (not a drop) a traced process exec'd: state freed, the agent re-decides */
	SYS_CONN_ADOPTED = 15,          /* (not a drop) a connection open before the attach taken over at its
					 * first syscall */
	SYS_SKIP_ADOPT_MISMATCH = 16,   /* a registered open connection's fd holds another socket now: not taken */
	SYS_LINK_FORWARDED = 17,        /* (not a drop) client requests forwarding their thread's incoming
					 * traceparent: linked to that server span, the value replaced */
	SYS_SKIP_HEAD_TOO_LONG = 18,    /* a request head longer than HTTP_HEAD_MAX: its context is decided
					 * from the headers within the first 8 KiB */
	SYS_SKIP_HEAD_UNREAD = 19,      /* a request head that goes on where it cannot be read (further
					 * iovecs, unreadable memory, reader state lost): decided from what was read */
	SYS_HEAD_SPLIT = 20,            /* (not a drop) request heads decided in a later read than their start */
	SYS_LINK_ASYNCIO = 21,          /* (not a drop) client requests linked to the server request of their
					 * asyncio task (sys_http_asyncio.h) */
	SYS_SKIP_ASYNCIO_NO_TASK = 22,  /* client request on an asyncio event-loop thread whose current task
					 * belongs to no known server request: left unlinked */
	SYS_ASYNCIO_TASK_INHERITED = 23, /* (not a drop) asyncio tasks created by a task of a request */
	SYS_ASYNCIO_TASK_FROM_HEAD = 24, /* (not a drop) asyncio tasks created in the callback that read
					  * their request's head */
	SYS_ASYNCIO_TASK_WOKEN = 25,    /* (not a drop) asyncio tasks given a request by the callback that
					 * read its head and woke them */
	SYS_LINK_NGINX = 26,            /* (not a drop) nginx upstream requests linked to the downstream request
					 * they serve (bpf/sys_http/sys_http_nginx_link.h) */
	SYS_SKIP_NGINX_UNLINKED = 27,   /* an nginx upstream request start with no fresh link from its
					 * ngx_chain_writer entry, or whose downstream request is not in flight:
					 * left unlinked (never the thread's request) */
	SYS_SKIP_GO_GOID_UNREAD = 28,   /* a Go server request (go.server_path: syscall) whose goroutine could not
					 * be read from TLS: client calls made on it are not linked to it */
	SYS_SKIP_GO_ROUTE_UNREAD = 29,  /* a Go server response whose route could not be read (connection
					 * served before the attach, or memory unreadable): no http.route from Go */
	SYS_LINK_NODE = 30,             /* (not a drop) Node.js client requests linked to the server request whose
					 * callback made them (bpf/sys_http/sys_http_node_link.h) */
	SYS_SKIP_NODE_UNLINKED = 31,    /* a Node.js client request start no rule of sys_http_node_link.h links
					 * (after an await, undici/fetch, a worker thread, no request): left unlinked */
	SYS_SKIP_NODE_NO_PARSER = 32,   /* a Node.js server request whose parser could not be read (not the main
					 * thread, not node's HTTP parser, memory unreadable): its calls stay unlinked */
	SYS_SKIP_THREAD_POOLED = 33,    /* client call on a Java ForkJoinPool worker (virtual-thread carriers
					 * among them) with a server request active: not linked, the request
					 * may be another task's (bpf/sys_http/sys_http_java.h) */
	SYS_LINK_JAVA_CONNECT = 34,     /* (not a drop) JDK HttpClient requests linked to the server request of
					 * the thread that connected their connection (bpf/sys_http/sys_http_java.h) */
	SYS_SKIP_JAVA_CONNECT_GONE = 35, /* a JDK HttpClient connection's first request written after the
					  * request of the thread that connected it was no longer active there */
	SYS_SKIP_PIPELINED_UNREAD = 36, /* a request pipelined in one read whose head goes past the capture:
					 * a new trace (its traceparent is not read) */
	SYS_LINK_GO_CLIENT = 37,        /* (not a drop) Go client requests (go.client_path: syscall) linked to the
					 * server span of the goroutine that asked for them (sys_http_go_client.h) */
	SYS_SKIP_GO_CLIENT_UNPARKED = 38, /* a Go client request written before its caller had handed it over
					   * and parked on the response (a race of the writer goroutine): a new
					   * trace, never another call's parent */
	SYS_SKIP_GO_CLIENT_STALE = 39,  /* a Go client request from a buffer its recorded persistConn no longer
					 * owns: a new trace, the record forgotten */
	SYS_SKIP_GO_CLIENT_NO_CONN = 40, /* a Go client request on a connection whose writer started before the
					  * attach (no writeLoop probe hit), not adopted yet: a new trace */
	SYS_LINK_GO_FORWARD = 41,       /* (not a drop) Go client requests whose caller was not found that forward
					 * the traceparent exactly one server request of the process came in with:
					 * that server span's children (sys_http_go_forward.h) */
	SYS_SKIP_GO_FORWARD_PARENT_UNKNOWN = 42, /* a Go client request whose caller was not found that forwards a
						  * traceparent server requests of the process came in with, not
						  * exactly one in flight: the forwarded parent, an id of its own */
	SYS_HTTP_DROP_MAX = 43,
};

/* RECORD_SYS_HTTP_CONN_OPEN (sent before a connection's first HTTP record) and
 * RECORD_SYS_HTTP_CONN_CLOSE (close(2) of a connection that carried HTTP). */
struct sys_http_conn_event {
	__u8 type;
	__u8 role;
	__u8 family; /* AF_INET or AF_INET6 of the socket; addresses are always 16-byte IPv6
		      * (IPv4 as ::ffff:a.b.c.d) */
	__u8 _pad0;
	__u16 local_port;
	__u16 remote_port;
	__u32 pid;
	__u32 tid;
	__u32 fd;
	__u32 _pad1;
	__u64 conn_id;
	__u64 ts_ns;
	__u8 local_addr[16];
	__u8 remote_addr[16];
};

/* RECORD_SYS_HTTP_DATA: one read or write on a traced HTTP connection. */
struct sys_http_data_event {
	__u8 type;
	__u8 direction;
	__u8 role;
	__u8 flags;
	__u8 trace_flags;
	__u8 syscall; /* enum sys_http_syscall, for diagnostics */
	__u16 capture_len;
	__u32 pid;
	__u32 tid;
	__u32 fd;
	__u16 tail_len;
	__u16 flags2; /* SYS_F2_* */
	__u64 conn_id;
	/* Ingress: the syscall's exit (the bytes are there). Egress: its entry: the peer may read the
	 * bytes before the syscall returns (another CPU), never before it began, so a server span
	 * (its response's last write) ends no later, and a client span (its request's first write)
	 * starts no later, than the peer saw them. */
	__u64 ts_ns;
	__u64 len;   /* bytes transferred (the syscall's return value) */
	/* Set with SYS_F_REQUEST_START: the trace context decided for this request. */
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 parent_span_id[8];
	/* A Go server response's first write (go.server_path syscall): bytes of the route its request
	 * matched (Request.Pattern, at most SYS_HTTP_ROUTE_MAX), sent right after the captured bytes:
	 * data[capture_len .. capture_len + route_len). 0: none. One record per response, not two. */
	__u16 route_len;
	__u8 _pad_route[2];
	/* The message's last bytes, when they are past the capture (tail_len 0 otherwise). */
	__u8 tail[SYS_HTTP_TAIL];
	__u8 _pad_data[4];
	/* A record is sent as the fields above + capture_len + route_len bytes of data: each record
	 * crosses to the agent's CPU, where every 64 bytes cost the writer a cache-line transfer
	 * (~75 ns at saturation), so what only pipelining needs comes after data, sent only then. */
	__u8 data[SYS_HTTP_CAPTURE + SYS_HTTP_ROUTE_MAX];
	/* With SYS_F2_SPARES only (then the record is the whole struct). Server request starts and
	 * server reads with SYS_F_SPARE_IDS: the contexts of further requests pipelined in the same
	 * read, in order (bpf/sys_http/sys_http_pipelined.h): each continues its own valid traceparent
	 * (its bit in spare_remote, parent in spare_parent_span_ids) or is a new trace. Client request
	 * starts with SYS_F_SPARE_IDS: see that flag. */
	__u8 spare_trace_ids[SYS_HTTP_SPARE_IDS][16];
	__u8 spare_span_ids[SYS_HTTP_SPARE_IDS][8];
	__u8 spare_parent_span_ids[SYS_HTTP_SPARE_IDS][8];
	__u8 spare_trace_flags[SYS_HTTP_SPARE_IDS];
	__u8 spare_remote; /* bit i: spare i's parent is its request's incoming traceparent */
	__u8 _pad_spare[4];
};

/* RECORD_SYS_HTTP_ROUTE: the route a Go server request matched (its Request.Pattern), as a record
 * of its own. The programs now send it inside the response's data record (route_len); user space
 * still reads this record type. */
struct sys_http_route_event {
	__u8 type;
	__u8 _pad0[3];
	__u32 pid;
	__u64 conn_id;
	__u32 route_len; /* true length; route holds at most SYS_HTTP_ROUTE_MAX bytes */
	__u32 _pad1;
	char route[SYS_HTTP_ROUTE_MAX];
};

enum sys_http_syscall {
	SYS_CALL_READ = 0,
	SYS_CALL_WRITE = 1,
	SYS_CALL_READV = 2,
	SYS_CALL_WRITEV = 3,
	SYS_CALL_RECVFROM = 4,
	SYS_CALL_SENDTO = 5,
	SYS_CALL_RECVMSG = 6,
	SYS_CALL_SENDMSG = 7,
};

#endif
