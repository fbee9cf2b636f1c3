/* bpf/sys_http.bpf.c, Node.js processes: the parent of a client request is the server request whose
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
	__u16 _pad;
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

/* Built here, not on the stack (512 bytes with the callers' frames on 6.1). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct node_parser);
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

/* A server request's head was decided on (tgid, fd) by thread id: keep it under its parser's id. */
static __always_inline void node_head_decided(__u64 id, const struct conn_state *cs, __u32 fd)
{
	__u32 tgid = id >> 32;
	struct node_proc *np = bpf_map_lookup_elem(&node_procs, &tgid);
	if (!np)
		return;
	if ((__u32)id != tgid) {
		count(SYS_SKIP_NODE_NO_PARSER); /* a worker thread's loop is not the default one */
		return;
	}
	__u64 wrap = node_tcp_wrap(np, fd), listener = 0, lvptr = 0, pid_bits = 0, fields = np->fields;
	if (!wrap || bpf_probe_read_user(&listener, 8, (void *)(wrap + np->stream_listener)) || !listener ||
	    bpf_probe_read_user(&lvptr, 8, (void *)listener) || lvptr != np->parser_vptr ||
	    bpf_probe_read_user(&pid_bits, 8, (void *)(listener - np->listener_parser + np->wrap_async_id)) || !node_id(pid_bits)) {
		count(SYS_SKIP_NODE_NO_PARSER);
		return;
	}
	if (!fields) {
		__u64 realm = 0, env = 0;
		if (bpf_probe_read_user(&realm, 8, (void *)(wrap + np->wrap_realm)) || !realm ||
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
	__u32 zero = 0;
	struct node_parser *n = bpf_map_lookup_elem(&node_scratch, &zero);
	if (!n)
		return;
	struct node_parser_key k = { .tgid = tgid, ._pad = 0, .id = pid_bits };
	struct node_parser *old = bpf_map_lookup_elem(&node_parsers, &k);
	if (old)
		n->prev = old->cur;
	else
		__builtin_memset(&n->prev, 0, sizeof(n->prev));
	n->cur.lo = lo;
	n->cur.ctx = cs->ctx;
	__builtin_memcpy(n->cur.incoming_span_id, cs->incoming_span_id, 8);
	n->cur.has_incoming = cs->has_incoming;
	n->cur.valid = 1;
	__builtin_memset(n->cur._pad, 0, sizeof(n->cur._pad));
	bpf_map_update_elem(&node_parsers, &k, n, BPF_ANY);
}

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

/* A client request start on (tgid, fd) written by thread id, `first`: the connection's first
 * request. Fills *out as a thread context with one active request and returns true when a rule
 * above links it; counts and returns false otherwise. */
static __always_inline bool node_link_parent(__u64 id, __u32 fd, bool first, __u64 now, struct thread_ctx *out)
{
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
		/* 3. a new socket's first request (written in its connect callback) */
		__u64 wrap = node_tcp_wrap(np, fd), s = 0, st = 0;
		if (wrap && !bpf_probe_read_user(&s, 8, (void *)(wrap + np->wrap_async_id)) &&
		    !bpf_probe_read_user(&st, 8, (void *)(wrap + np->wrap_trigger_id)) && node_id(st)) {
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
	out->ts_ns = now;
	out->ctx = r->ctx;
	out->active = 1;
	out->ambiguous = 0;
	__builtin_memcpy(out->incoming_span_id, r->incoming_span_id, 8);
	out->has_incoming = r->has_incoming;
	out->_pad = 0;
	count(SYS_LINK_NODE);
	return true;
}

#endif
