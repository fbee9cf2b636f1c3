/*
 * Go net/http client calls (included by go_http.bpf.c after the server side): client span state,
 * goroutine ancestry (runtime.newproc1 RETs, runtime.goexit1), (*Transport).roundTrip entry and
 * RETs (the client span's context and its record), the Header-map owner of the Transport's request
 * copies, and the end of the exchange at (*bodyEOFSignal).Close.
 */
#ifndef SPANBRIDGE_GO_HTTP_CLIENT_CALLS_H
#define SPANBRIDGE_GO_HTTP_CLIENT_CALLS_H


/* Settings: how many ancestor goroutines to search for a server span. */
const volatile __u32 max_goroutine_depth = 4;

struct req_key {
	__u32 tgid;
	__u32 _pad;
	__u64 req; /* *http.Request */
};

/* A client request between roundTrip entry and return. Keyed by request pointer because the
 * headers are written on the Transport's writeLoop goroutine, not on the caller's. */
struct client_request {
	__u64 start_ns;
	__u8 flags;
	__u8 flags2;
	__u8 has_incoming; /* the server request it belongs to came with a traceparent */
	__u8 _pad[5];
	struct trace_context ctx; /* this client span */
	__u8 parent_span_id[8];
	__u8 incoming_span_id[8]; /* ... whose parent-id: a forwarded traceparent carries it */
	__u64 header;             /* Request.Header (map pointer), shared by the Transport's copies */
};

/* Request.Header -> the request roundTrip started with. net/http's Transport sends a shallow copy
 * of a request that has a body (setupRewindBody, rewindBody on retries), so Request.write sees
 * another *Request than roundTrip; the copy keeps the Header map. `req` is 0 while two requests in
 * flight share one map (then neither can be told apart and neither is injected). */
struct header_key {
	__u32 tgid;
	__u32 _pad;
	__u64 header;
};

struct header_owner {
	__u64 req;
	__u32 in_flight;
	__u32 _pad;
};

/* Request.write -> writeSubset on the same goroutine: which request, which writer. */
struct pending_write {
	__u64 req;
	__u64 writer;  /* *bufio.Writer */
	__s64 n_start; /* bufio.Writer.n when writeSubset began; -1 until then */
	__u64 flushed; /* the writer flushed while headers were being written */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct req_key);
	__type(value, struct client_request);
} client_requests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct header_key);
	__type(value, struct header_owner);
} client_by_header SEC(".maps");

/* A response body still open: its *bodyEOFSignal -> the client span that ends when it closes. */
struct body_key {
	__u32 tgid;
	__u32 _pad;
	__u64 body;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct body_key);
	__type(value, __u64); /* span id */
} open_bodies SEC(".maps");

/* Caller goroutine -> request, so the RET probe finds its request. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct goroutine_key);
	__type(value, __u64);
} roundtrip_by_goroutine SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct goroutine_key);
	__type(value, struct pending_write);
} pending_writes SEC(".maps");

/* Child goroutine -> parent goroutine id (from runtime.newproc1). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct goroutine_key);
	__type(value, __u64);
} goroutine_parent SEC(".maps");

#define SCAN_MAX 4096 /* = net/http's default write buffer: every unflushed header block fits */

struct scan_scratch {
	char bytes[SCAN_MAX + 128];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scan_scratch);
} scan_scratch_map SEC(".maps");

/* writeSubset RET -> the flush that sends the headers (same goroutine): what sk_msg must insert. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct goroutine_key);
	__type(value, struct sk_inject_pending);
} sk_armed SEC(".maps");

SEC("uprobe")
int go_runtime_newproc1_ret(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off || off->g_parent_goid == OFFSET_ABSENT)
		return 0;
	void *newg = GO_RET1(ctx);
	if (!newg)
		return 0;
	struct goroutine_key child = { .tgid = tgid };
	__u64 parent = 0;
	if (bpf_probe_read_user(&child.goid, sizeof(child.goid), newg + off->g_goid) ||
	    bpf_probe_read_user(&parent, sizeof(parent), newg + off->g_parent_goid) || !parent)
		return 0;
	bpf_map_update_elem(&goroutine_parent, &child, &parent, BPF_ANY);
	return 0;
}

SEC("uprobe")
int go_runtime_goexit1(struct pt_regs *ctx)
{
	struct goroutine_key key;
	if (current_goroutine(ctx, &key))
		bpf_map_delete_elem(&goroutine_parent, &key);
	return 0;
}

/* The server span running on this goroutine or its nearest ancestor (bounded walk), from this
 * tracer's ServeHTTP probes or from the syscall tracer (go.server_path: syscall,
 * bpf/common/go_server_ctx.h), copied to *out. *key ends as the goroutine where it was found; *lean says
 * which of the two. */
static __always_inline bool find_server_request(struct goroutine_key *key, struct go_server_ctx *out, bool *lean)
{
	for (__u32 depth = 0; depth < 8; depth++) {
		if (depth > max_goroutine_depth)
			break;
		struct server_request *r = bpf_map_lookup_elem(&server_requests, key);
		if (r) {
			out->start_ns = r->start_ns;
			out->ctx = r->ctx;
			__builtin_memcpy(out->parent_span_id, r->parent_span_id, 8);
			out->flags = (r->flags & SPAN_F_REMOTE_PARENT) ? GO_SERVER_F_REMOTE_PARENT : 0;
			*lean = false;
			return true;
		}
		struct go_server_ctx *c = bpf_map_lookup_elem(&spanbridge_go_server_v1, key);
		if (c) {
			*out = *c;
			*lean = true;
			return true;
		}
		__u64 *parent = bpf_map_lookup_elem(&goroutine_parent, key);
		if (!parent)
			break;
		key->goid = *parent;
	}
	return false;
}

/* Socket injection: the incoming request's tracestate, sent on with the client call (W3C). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct req_key);
	__type(value, struct sk_inject_tracestate);
} client_tracestate SEC(".maps");

/* Remembers the incoming tracestate of the server request a client call belongs to; only a valid
 * traceparent's, only whole values (never a truncated one). */
static __always_inline void keep_incoming_tracestate(const struct goroutine_key *server_key,
						     const struct go_server_ctx *parent, bool lean,
						     const struct req_key *rkey)
{
	if (lean) {
		/* decided and validated by the syscall tracer with the request (bpf/sys_http/sys_http_go_server.h) */
		struct go_link_key k = { .tgid = server_key->tgid, ._pad = 0, .goid = server_key->goid };
		struct go_server_tracestate *t = (parent->flags & GO_SERVER_F_TRACESTATE) ? bpf_map_lookup_elem(&spanbridge_go_server_ts_v1, &k) : NULL;
		if (t && t->len && t->len <= SK_INJECT_TRACESTATE_MAX)
			bpf_map_update_elem(&client_tracestate, rkey, t, BPF_ANY);
		return;
	}
	struct incoming_headers *h = bpf_map_lookup_elem(&incoming_by_goroutine, server_key);
	/* ts_result ran at ServeHTTP entry when the traceparent was valid (SPAN_F_REMOTE_PARENT) */
	if (!h || !(parent->flags & GO_SERVER_F_REMOTE_PARENT) || h->ts.verdict != TS_OK || !h->ts.members ||
	    !h->ts.len || h->ts.len > SK_INJECT_TRACESTATE_MAX || h->ts_ns > parent->start_ns ||
	    parent->start_ns - h->ts_ns > header_max_age_ns)
		return;
	__u32 zero = 0;
	struct scan_scratch *s = bpf_map_lookup_elem(&scan_scratch_map, &zero);
	if (!s)
		return;
	struct sk_inject_tracestate *t = (void *)s->bytes;
	t->len = h->ts.len;
	t->_pad = 0;
	bpf_probe_read_kernel(t->value, SK_INJECT_TRACESTATE_MAX, h->ts.out);
	bpf_map_update_elem(&client_tracestate, rkey, t, BPF_ANY);
}

SEC("uprobe")
int go_transport_round_trip(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off) {
		count_drop(DROP_NO_OFFSETS);
		return 0;
	}
	struct goroutine_key gkey;
	if (goroutine_key_of(ctx, off, &gkey)) {
		count_drop(DROP_READ_FAILED);
		return 0;
	}
	/* (*Transport).roundTrip(t *Transport, req *Request): t in RAX, req in RBX. */
	__u64 req = (__u64)GO_ARG2(ctx);
	if (!req)
		return 0;
	struct client_request c = {};
	c.start_ns = bpf_ktime_get_ns();
	struct goroutine_key skey = gkey;
	struct go_server_ctx parent;
	bool lean = false;
	bool found = find_server_request(&skey, &parent, &lean);
	if (found) {
		__builtin_memcpy(c.ctx.trace_id, parent.ctx.trace_id, 16);
		__builtin_memcpy(c.parent_span_id, parent.ctx.span_id, 8);
		c.ctx.flags = parent.ctx.flags;
		c.flags |= CLIENT_F_LOCAL_PARENT;
	} else {
		new_trace_id(c.ctx.trace_id);
		c.ctx.flags = 0x01;
	}
	new_span_id(c.ctx.span_id);
	if (found && (parent.flags & GO_SERVER_F_REMOTE_PARENT)) {
		c.has_incoming = 1;
		__builtin_memcpy(c.incoming_span_id, parent.parent_span_id, 8);
	}
	struct req_key rkey = { .tgid = tgid, .req = req };
	if (off->req_header != OFFSET_ABSENT && !bpf_probe_read_user(&c.header, sizeof(c.header), (void *)req + off->req_header) &&
	    c.header) {
		struct header_key hk = { .tgid = tgid, .header = c.header };
		struct header_owner *o = bpf_map_lookup_elem(&client_by_header, &hk);
		if (!o || o->req == req) {
			/* (the same *Request again: its earlier roundTrip is over, whatever its RET saw) */
			struct header_owner n = { .req = req, .in_flight = 1 };
			bpf_map_update_elem(&client_by_header, &hk, &n, BPF_ANY);
		} else {
			/* Another request in flight has this Header map (e.g. a r.WithContext copy). */
			if (o->req && o->req != req) {
				struct req_key other = { .tgid = tgid, .req = o->req };
				struct client_request *oc = bpf_map_lookup_elem(&client_requests, &other);
				if (oc)
					oc->flags2 |= CLIENT_F2_SHARED_HEADER;
			}
			o->req = 0;
			o->in_flight += 1;
			c.flags2 |= CLIENT_F2_SHARED_HEADER;
		}
	}
	if (socket_injection && found)
		keep_incoming_tracestate(&skey, &parent, lean, &rkey);
	if (bpf_map_update_elem(&client_requests, &rkey, &c, BPF_ANY) ||
	    bpf_map_update_elem(&roundtrip_by_goroutine, &gkey, &req, BPF_ANY))
		count_drop(DROP_STATE_MAP_FULL);
	return 0;
}

/* The Header map's owner entry: one request fewer in flight with it. */
static __always_inline void release_header(__u32 tgid, __u64 header)
{
	if (!header)
		return;
	struct header_key hk = { .tgid = tgid, .header = header };
	struct header_owner *o = bpf_map_lookup_elem(&client_by_header, &hk);
	if (!o)
		return;
	if (o->in_flight <= 1)
		bpf_map_delete_elem(&client_by_header, &hk);
	else
		o->in_flight -= 1;
}

/* An HTTP/1 response with a body: the exchange ends when the body is closed, at
 * (*bodyEOFSignal).Close (the readLoop gives HEAD and Content-Length 0 responses NoBody: they end
 * here; HTTP/2 bodies are another type and end here too). Returns true when the span's end is left
 * to that probe. */
static __always_inline bool defer_end(const struct go_offsets *off, __u32 tgid, void *resp, const char *method, __u32 method_len, const __u8 span_id[8])
{
	if (off->response_body == OFFSET_ABSENT || off->response_uncompressed == OFFSET_ABSENT ||
	    off->gzip_reader_body == OFFSET_ABSENT || off->response_proto_major == OFFSET_ABSENT)
		return false;
	__s64 cl = 0, major = 0;
	if (bpf_probe_read_user(&cl, sizeof(cl), resp + off->response_content_length) || cl == 0 ||
	    bpf_probe_read_user(&major, sizeof(major), resp + off->response_proto_major) || major != 1)
		return false;
	if (method_len == 4 && method[0] == 'H' && method[1] == 'E' && method[2] == 'A' && method[3] == 'D')
		return false;
	struct { __u64 itab; __u64 data; } body = {};
	if (bpf_probe_read_user(&body, sizeof(body), resp + off->response_body) || !body.itab || !body.data)
		return false;
	__u8 uncompressed = 0;
	bpf_probe_read_user(&uncompressed, 1, resp + off->response_uncompressed);
	struct body_key bk = { .tgid = tgid, .body = body.data };
	if (uncompressed &&
	    (bpf_probe_read_user(&bk.body, sizeof(bk.body), (void *)body.data + off->gzip_reader_body) || !bk.body))
		return false;
	__u64 id = 0;
	__builtin_memcpy(&id, span_id, 8);
	if (bpf_map_update_elem(&open_bodies, &bk, &id, BPF_ANY)) {
		count_drop(CLIENT_END_LOST);
		return false;
	}
	return true;
}

SEC("uprobe")
int go_transport_round_trip_ret(struct pt_regs *ctx)
{
	struct goroutine_key gkey;
	const struct go_offsets *off = current_goroutine(ctx, &gkey);
	if (!off)
		return 0;
	__u32 tgid = gkey.tgid;
	__u64 *reqp = bpf_map_lookup_elem(&roundtrip_by_goroutine, &gkey);
	if (!reqp) {
		count_drop(DROP_NO_START);
		return 0;
	}
	struct req_key rkey = { .tgid = tgid, .req = *reqp };
	bpf_map_delete_elem(&roundtrip_by_goroutine, &gkey);
	struct client_request *c = bpf_map_lookup_elem(&client_requests, &rkey);
	if (!c) {
		count_drop(DROP_NO_START);
		return 0;
	}
	release_header(tgid, c->header);
	/* Results: (*Response, error): resp in RAX, error (itab, data) in RBX/RCX. */
	void *resp = GO_RET1(ctx);
	__u64 err_itab = ctx->bx;

	struct go_http_client_event *e = bpf_ringbuf_reserve(&go_http_events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_RINGBUF_FULL);
		goto out;
	}
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	e->type = RECORD_GO_HTTP_CLIENT;
	e->trace_flags = c->ctx.flags;
	e->flags = c->flags;
	e->flags2 = c->flags2 & CLIENT_F2_FORWARDED;
	e->status = 0;
	e->_pad1 = 0;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->goid = gkey.goid;
	e->start_ns = c->start_ns;
	e->end_ns = bpf_ktime_get_ns();
	__builtin_memcpy(e->trace_id, c->ctx.trace_id, 16);
	__builtin_memcpy(e->span_id, c->ctx.span_id, 8);
	__builtin_memcpy(e->parent_span_id, c->parent_span_id, 8);
	e->method_len = e->scheme_len = e->host_len = e->path_len = e->query_len = 0;
	e->_pad2 = 0;

	void *req = (void *)rkey.req;
	READ_GO_STRING(req, off->req_method, e->method, CLIENT_METHOD_MAX, e->method_len);
	void *url = NULL;
	if (!bpf_probe_read_user(&url, sizeof(url), req + off->req_url) && url) {
		READ_GO_STRING(url, off->url_scheme, e->scheme, CLIENT_SCHEME_MAX, e->scheme_len);
		READ_GO_STRING(url, off->url_host, e->host, CLIENT_HOST_MAX, e->host_len);
		READ_GO_STRING(url, off->url_path, e->path, CLIENT_PATH_MAX, e->path_len);
		READ_GO_STRING(url, off->url_raw_query, e->query, CLIENT_QUERY_MAX, e->query_len);
	}
	bool app_header = c->flags & (CLIENT_F_APP_TRACEPARENT | CLIENT_F_APP_TP_INVALID);
	if (socket_injection) {
		int outcome = sk_inject_take_result(tgid, rkey.req);
		if (outcome == SK_INJECT_DONE || outcome == SK_INJECT_REPLACED) {
			e->flags |= CLIENT_F_INJECTED_SOCKET;
		} else if (outcome >= 0) {
			e->flags |= CLIENT_F_INJECT_SKIPPED;
		} else if (app_header || (c->flags & CLIENT_F_INJECT_SKIPPED)) {
			/* respected, or skipped (and counted) while its headers were written: nothing was
			 * handed over */
		} else if (c->flags2 & CLIENT_F2_SHARED_HEADER) {
			e->flags |= CLIENT_F_INJECT_SKIPPED;
			count_drop(INJECT_SKIP_SHARED_HEADER);
		} else if (resp && !err_itab) {
			/* Answered, so it was written, but the sk_msg program never saw its context. */
			e->flags |= CLIENT_F_INJECT_SKIPPED;
			count_drop(INJECT_SKIP_SOCKET_LOST);
		}
	} else if (memory_injection && (c->flags2 & CLIENT_F2_SHARED_HEADER) && !app_header &&
		   !(c->flags & (CLIENT_F_INJECTED | CLIENT_F_INJECT_SKIPPED))) {
		e->flags |= CLIENT_F_INJECT_SKIPPED;
		count_drop(INJECT_SKIP_SHARED_HEADER);
	}
	if (err_itab) {
		e->flags |= CLIENT_F_ERROR;
	} else if (resp) {
		__s64 status = 0;
		if (!bpf_probe_read_user(&status, sizeof(status), resp + off->response_status_code) &&
		    status > 0 && status < 1000) {
			e->status = status;
			e->flags |= CLIENT_F_HAS_STATUS;
		}
		if (defer_end(off, tgid, resp, e->method, e->method_len, e->span_id))
			e->flags2 |= CLIENT_F2_BODY_OPEN;
	}
	bpf_ringbuf_submit(e, ring_wakeup_flags(&go_http_events, ring_wakeup_bytes));
out:
	bpf_map_delete_elem(&client_requests, &rkey);
	if (socket_injection)
		bpf_map_delete_elem(&client_tracestate, &rkey);
	return 0;
}

/* (*bodyEOFSignal).Close entry: the response body of a client span is closed; io.ReadAll and
 * ReverseProxy read to EOF first, so this is the end of the exchange. */
SEC("uprobe")
int go_body_eof_signal_close(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct body_key bk = { .tgid = tgid, .body = (__u64)GO_ARG1(ctx) };
	__u64 *id = bpf_map_lookup_elem(&open_bodies, &bk);
	if (!id)
		return 0;
	struct go_http_client_end_event *e = bpf_ringbuf_reserve(&go_http_events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_RINGBUF_FULL);
		count_drop(CLIENT_END_LOST);
	} else {
		e->type = RECORD_GO_HTTP_CLIENT_END;
		e->_pad0[0] = e->_pad0[1] = e->_pad0[2] = 0;
		e->pid = tgid;
		e->end_ns = bpf_ktime_get_ns();
		__builtin_memcpy(e->span_id, id, 8);
		bpf_ringbuf_submit(e, ring_wakeup_flags(&go_http_events, ring_wakeup_bytes));
	}
	bpf_map_delete_elem(&open_bodies, &bk);
	return 0;
}

#endif
