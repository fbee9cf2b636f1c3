/* bpf/sys_http/sys_http.bpf.c, Node.js processes: the parent of a client request is the server request whose
 * callback made it, read from node's own async bookkeeping without a uprobe (docs/node-async-linking.md).
 *
 * Node numbers its async resources (doubles in `async_id_fields_`: [0] the execution id of the
 * callback running now, [1] its trigger id, [2] the last id given out). An HTTP server connection's
 * requests run their handlers in callbacks of its parser resource (execution id P), and a resource
 * created in such a callback (a timer, a tick, a new client socket) has trigger P. Everything is
 * reached from libuv's static default loop: watchers[fd] -> uv_tcp_t -> data = node's TCPWrap
 * (checked by its vtable pointer) -> its StreamBase listener (the Parser after parser.consume(),
 * checked by vtable pointer) -> P; TCPWrap -> realm -> Environment -> async_id_fields_.
 *
 * At a server request's head (decided at its read's exit, before node runs the handler) the kernel
 * keeps, under P, the request's context and lo = [2] (ids above it were given out after the read).
 * A client request start written on the main thread is linked when:
 *   1. [0] == P: written synchronously in a callback of that parser: its current request;
 *   2. [1] == P: written in a resource created in a callback of P; its id [0] says which request
 *      (above the current request's lo: the current; between the previous one's lo and it: the previous);
 *   3. the connection's first request, its socket's TCPWrap created in a callback of P (trigger P),
 *      its id placing it as in 2 (http.Agent binds a new socket to the request that made it).
 * Anything else (microtasks run with [0] = [1] = 0: calls after an `await`, undici/fetch) is left
 * unlinked and counted, never guessed. The agent writes node_procs per process (offsets by node
 * version, src/discovery/node.ts); without an entry nothing here runs. */
#ifndef SPANBRIDGE_SYS_HTTP_NODE_LINK_H
#define SPANBRIDGE_SYS_HTTP_NODE_LINK_H

/* Per Node.js process (tgid), written by the agent; `fields` is learned by the kernel. */
struct node_proc {
	__u64 loop;        /* address of libuv's default_loop_struct */
	__u64 tcp_vptr;    /* vtable pointer of a node::TCPWrap */
	__u64 parser_vptr; /* vtable pointer of a Parser's StreamListener part */
	__u64 fields;      /* async_id_fields_ (0 until the first server request read) */
	__u16 loop_watchers;   /* uv_loop_t.watchers */
	__u16 loop_nwatchers;  /* uv_loop_t.nwatchers */
	__u16 stream_io;       /* uv_stream_t.io_watcher */
	__u16 io_fd;           /* uv__io_t.fd */
	__u16 wrap_async_id;   /* AsyncWrap.async_id_ (double) */
	__u16 wrap_trigger_id; /* AsyncWrap.trigger_async_id_ (double) */
	__u16 wrap_realm;      /* BaseObject.realm_ */
	__u16 realm_env;       /* Realm.env_ */
	__u16 env_fields;      /* Environment: async_hooks_.async_id_fields_ buffer */
	__u16 stream_listener; /* TCPWrap: StreamResource.listener_ */
	__u16 listener_parser; /* Parser: its StreamListener part (listener - this = the Parser) */
	__u16 connect_reg; /* offset in struct pt_regs of the register that holds the uv_tcp_t at
			    * libuv's connect() call (uv__tcp_connect keeps it in rbx), NODE_NO_REG: none */
};

#define NODE_NO_REG 0xffff

/* A client socket node connected: its TCPWrap's ids (read at the connect, when libuv has not
 * registered its watcher yet), for its first request (rule 3). */
struct node_conn {
	__u64 conn_id;
	__u64 id;      /* the TCPWrap's async id (double bits) */
	__u64 trigger; /* its trigger id: the callback it was created in */
};

/* One server request of a parser: its context and the id counter at its head's read. */
struct node_req {
	__u64 lo;
	struct trace_context ctx;
	__u8 incoming_span_id[8];
	__u8 has_incoming;
	__u8 valid;
	__u8 _pad[6];
};

/* Requests of one server connection's parser (P): the current and the one before (keep-alive). */
struct node_parser {
	struct node_req cur;
	struct node_req prev;
};

struct node_parser_key {
	__u32 tgid;
	__u32 _pad;
	__u64 id; /* the parser's async id, as the double's bits */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct node_proc);
} node_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct node_parser_key);
	__type(value, struct node_parser);
} node_parsers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct conn_key);
	__type(value, struct node_conn);
} node_conns SEC(".maps");

/* One server request: its parser's id and the id counter at its head's read. */
struct node_req_key {
	__u32 tgid;
	__u32 _pad;
	__u64 parser;
	__u64 lo;
};

#ifdef SYS_HTTP_SK_INJECT
/* The incoming tracestate of a server request (valid, with its valid traceparent), sent on with
 * the client requests linked to it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct node_req_key);
	__type(value, struct sk_inject_tracestate);
} node_tracestates SEC(".maps");
#endif

/* Built here, not on the stack (512 bytes with the callers' frames on 6.1). */
struct node_scratch_area {
	struct node_parser parser;
	struct node_req_key linked; /* the request the last node_link_parent linked to */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct node_scratch_area);
} node_scratch SEC(".maps");

/* A positive async id as its double's bits (positive doubles order like their bits); 0 otherwise. */
static __always_inline __u64 node_id(__u64 bits)
{
	return (bits >> 63) || bits == 0 ? 0 : bits;
}

/* The TCPWrap libuv's default loop has for fd (its vtable pointer checked), or 0. */
static __always_inline __u64 node_tcp_wrap(const struct node_proc *np, __u32 fd)
{
	__u64 w = 0, io = 0, data = 0, vptr = 0;
	__u32 n = 0, iofd = 0;
	if (bpf_probe_read_user(&w, 8, (void *)(np->loop + np->loop_watchers)) ||
	    bpf_probe_read_user(&n, 4, (void *)(np->loop + np->loop_nwatchers)) || !w || fd >= n)
		return 0;
	if (bpf_probe_read_user(&io, 8, (void *)(w + 8 * (__u64)fd)) || !io ||
	    bpf_probe_read_user(&iofd, 4, (void *)(io + np->io_fd)) || iofd != fd)
		return 0;
	/* uv_handle_t.data (offset 0) of the stream that embeds this watcher */
	if (bpf_probe_read_user(&data, 8, (void *)(io - np->stream_io)) || !data ||
	    bpf_probe_read_user(&vptr, 8, (void *)data) || vptr != np->tcp_vptr)
		return 0;
	return data;
}

/* A node TCPWrap's handle at `h` (a uv_tcp_t*) for fd, checked (its watcher's fd, the vtable
 * pointer of its data), or 0. */
static __always_inline __u64 node_wrap_of_handle(const struct node_proc *np, __u64 h, __u32 fd)
{
	__u32 iofd = 0;
	__u64 data = 0, vptr = 0;
	if (!h || bpf_probe_read_user(&iofd, 4, (void *)(h + np->stream_io + np->io_fd)) || iofd != fd ||
	    bpf_probe_read_user(&data, 8, (void *)h) || !data ||
	    bpf_probe_read_user(&vptr, 8, (void *)data) || vptr != np->tcp_vptr)
		return 0;
	return data;
}

/* connect(2) returned on (tgid, fd) in thread id: keep the socket's TCPWrap ids for its first
 * request. The handle comes from the register libuv holds it in across the call (per version,
 * checked like every other pointer here). */
static __always_inline void node_connected(__u64 id, __u32 fd)
{
	__u32 tgid = id >> 32;
	struct node_proc *np = bpf_map_lookup_elem(&node_procs, &tgid);
	if (!np || (__u32)id != tgid || np->connect_reg == NODE_NO_REG || np->connect_reg > sizeof(struct pt_regs) - 8)
		return;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__u64 h = 0, s = 0, st = 0;
	if (!regs || bpf_probe_read_kernel(&h, 8, (void *)regs + np->connect_reg))
		return;
	__u64 wrap = node_wrap_of_handle(np, h, fd);
	struct conn_key key = { .tgid = tgid, .fd = fd };
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &key);
	if (!wrap || !cs || bpf_probe_read_user(&s, 8, (void *)(wrap + np->wrap_async_id)) ||
	    bpf_probe_read_user(&st, 8, (void *)(wrap + np->wrap_trigger_id)))
		return;
	struct node_conn c = { .conn_id = cs->conn_id, .id = s, .trigger = st };
	bpf_map_update_elem(&node_conns, &key, &c, BPF_ANY);
}

/* A server request's head was decided on (tgid, fd) by thread id: keep it under its parser's id. */
/* The async id of the HTTP parser serving a server connection: read through libuv's loop at the
 * connection's first request, then kept with the connection (node's HTTP server initializes one
 * parser per connection and keeps it to the end), so later requests read 1 word of node's
 * memory instead of 9. *wrap: the connection's TCPWrap when it was read here, else 0. */
static __always_inline __u64 node_conn_parser(const struct node_proc *np, struct conn_state *cs, __u32 fd, __u64 *wrap)
{
	*wrap = 0;
	if (cs->node_parser)
		return cs->node_parser;
	__u64 w = node_tcp_wrap(np, fd), listener = 0, lvptr = 0, pid_bits = 0;
	if (!w || bpf_probe_read_user(&listener, 8, (void *)(w + np->stream_listener)) || !listener ||
	    bpf_probe_read_user(&lvptr, 8, (void *)listener) || lvptr != np->parser_vptr ||
	    bpf_probe_read_user(&pid_bits, 8, (void *)(listener - np->listener_parser + np->wrap_async_id)) || !node_id(pid_bits))
		return 0;
	*wrap = w;
	cs->node_parser = pid_bits;
	return pid_bits;
}

/* A server request's entry: its id counter at the head's read and its context. */
static __always_inline void node_req_set(struct node_req *r, __u64 lo, const struct conn_state *cs)
{
	r->lo = lo;
	r->ctx = cs->ctx;
	__builtin_memcpy(r->incoming_span_id, cs->incoming_span_id, 8);
	r->has_incoming = cs->has_incoming;
	r->valid = 1;
	__builtin_memset(r->_pad, 0, sizeof(r->_pad));
}

static __always_inline void node_head_decided(__u64 id, struct conn_state *cs, __u32 fd, struct scratch *sc)
{
	__u32 tgid = id >> 32;
	struct node_proc *np = bpf_map_lookup_elem(&node_procs, &tgid);
	if (!np)
		return;
	if ((__u32)id != tgid) {
		count(SYS_SKIP_NODE_NO_PARSER); /* a worker thread's loop is not the default one */
		return;
	}
	__u64 wrap = 0, fields = np->fields;
	__u64 pid_bits = node_conn_parser(np, cs, fd, &wrap);
	if (!pid_bits) {
		count(SYS_SKIP_NODE_NO_PARSER);
		return;
	}
	if (!fields && !wrap)
		wrap = node_tcp_wrap(np, fd);
	if (!fields) {
		__u64 realm = 0, env = 0;
		if (!wrap || bpf_probe_read_user(&realm, 8, (void *)(wrap + np->wrap_realm)) || !realm ||
		    bpf_probe_read_user(&env, 8, (void *)(realm + np->realm_env)) || !env ||
		    bpf_probe_read_user(&fields, 8, (void *)(env + np->env_fields)) || !fields) {
			count(SYS_SKIP_NODE_NO_PARSER);
			return;
		}
		np->fields = fields;
	}
	__u64 lo = 0;
	if (bpf_probe_read_user(&lo, 8, (void *)(fields + 16)) || !node_id(lo)) {
		count(SYS_SKIP_NODE_NO_PARSER);
		return;
	}
	struct node_parser_key k = { .tgid = tgid, ._pad = 0, .id = pid_bits };
	struct node_parser *old = bpf_map_lookup_elem(&node_parsers, &k);
	if (old) {
		/* A keep-alive connection's parser has its entry from the previous request: updated in
		 * place (an LRU update allocates a node, swaps it in and frees the old one: ~0.3 us a
		 * request). Its readers run on this thread, the event loop (node_link_parent). */
		old->prev = old->cur;
		node_req_set(&old->cur, lo, cs);
	} else {
		__u32 zero = 0;
		struct node_scratch_area *area = bpf_map_lookup_elem(&node_scratch, &zero);
		if (!area)
			return;
		__builtin_memset(&area->parser.prev, 0, sizeof(area->parser.prev));
		node_req_set(&area->parser.cur, lo, cs);
		bpf_map_update_elem(&node_parsers, &k, &area->parser, BPF_ANY);
	}
#ifdef SYS_HTTP_SK_INJECT
	/* Its tracestate, if it came with one (as keep_tracestate does for threads). */
	__u32 tsn = sk_inject_pending && cs->has_incoming ? ts_result(&sc->head.ts) : 0;
	if (tsn) {
		__builtin_memcpy(sc->ts.value, sc->head.ts.out, W3C_TRACESTATE_MAX);
		sc->ts.len = tsn;
		sc->ts._pad = 0;
		struct node_req_key rk = { .tgid = tgid, ._pad = 0, .parser = pid_bits, .lo = lo };
		bpf_map_update_elem(&node_tracestates, &rk, &sc->ts, BPF_ANY);
	} else if (sk_inject_pending && cs->has_incoming && sc->head.ts.verdict != TS_OK) {
		count(SYS_SKIP_TRACESTATE_NOT_KEPT);
	}
#endif
}

#ifdef SYS_HTTP_SK_INJECT
/* The tracestate of the request the last node_link_parent on this CPU linked to, or NULL. */
static __always_inline struct sk_inject_tracestate *node_linked_tracestate(void)
{
	__u32 zero = 0;
	struct node_scratch_area *area = bpf_map_lookup_elem(&node_scratch, &zero);
	return area ? bpf_map_lookup_elem(&node_tracestates, &area->linked) : NULL;
}
#endif

/* The request of parser `p` a resource with id x (created in one of its callbacks) belongs to. */
static __always_inline const struct node_req *node_req_of(const struct node_parser *p, __u64 x)
{
	if (!x)
		return NULL;
	if (p->cur.valid && x > p->cur.lo)
		return &p->cur;
	if (p->prev.valid && x > p->prev.lo && x <= p->cur.lo)
		return &p->prev;
	return NULL;
}

/* A client request start on (tgid, fd) written by thread id on connection cs (rule 3 applies to
 * its first request). Fills *out as a thread context with one active request and returns true
 * when a rule above links it; counts and returns false otherwise. */
__noinline bool node_link_parent(__u64 id, __u32 fd, const struct conn_state *cs, __u64 now, struct thread_ctx *out)
{
	/* A global function (verified once; its stack is its own): the connection's state gives its
	 * id and whether this is its first request (the calling convention allows five arguments). */
	if (!cs || !out)
		return false;
	__u64 conn_id = cs->conn_id;
	bool first = !cs->announced;
	__u32 tgid = id >> 32;
	struct node_proc *np = bpf_map_lookup_elem(&node_procs, &tgid);
	__u64 f[2] = {};
	if (!np)
		return false;
	if ((__u32)id != tgid || !np->fields || bpf_probe_read_user(f, sizeof(f), (void *)np->fields)) {
		count(SYS_SKIP_NODE_UNLINKED);
		return false;
	}
	__u64 e = node_id(f[0]), t = node_id(f[1]);
	const struct node_req *r = NULL;
	struct node_parser_key k = { .tgid = tgid, ._pad = 0, .id = e };
	struct node_parser *p = e ? bpf_map_lookup_elem(&node_parsers, &k) : NULL;
	if (p && p->cur.valid) {
		r = &p->cur; /* 1. in a callback of the parser */
	} else if (t) {
		k.id = t;
		p = bpf_map_lookup_elem(&node_parsers, &k);
		if (p)
			r = node_req_of(p, e); /* 2. in a resource one of its callbacks created */
	}
	if (!r && !p && first) {
		/* 3. a new socket's first request (written in its connect callback): its ids from the
		 * connect, else from its watcher (registered once it reads) */
		struct conn_key ck = { .tgid = tgid, .fd = fd };
		struct node_conn *c = bpf_map_lookup_elem(&node_conns, &ck);
		__u64 s = 0, st = 0;
		if (c && c->conn_id == conn_id) {
			s = c->id;
			st = c->trigger;
		} else {
			__u64 wrap = node_tcp_wrap(np, fd);
			if (!wrap || bpf_probe_read_user(&s, 8, (void *)(wrap + np->wrap_async_id)) ||
			    bpf_probe_read_user(&st, 8, (void *)(wrap + np->wrap_trigger_id)))
				s = st = 0;
		}
		if (node_id(st)) {
			k.id = node_id(st);
			p = bpf_map_lookup_elem(&node_parsers, &k);
			if (p)
				r = node_req_of(p, node_id(s));
		}
	}
	if (!r) {
		count(SYS_SKIP_NODE_UNLINKED);
		return false;
	}
	linked_parent(out, now, &r->ctx, r->incoming_span_id, r->has_incoming);
	__u32 zero = 0;
	struct node_scratch_area *area = bpf_map_lookup_elem(&node_scratch, &zero);
	if (area) {
		area->linked.tgid = tgid;
		area->linked._pad = 0;
		area->linked.parser = k.id;
		area->linked.lo = r->lo;
	}
	count(SYS_LINK_NODE);
	return true;
}

#endif
