// SPDX-License-Identifier: GPL-2.0
/*
 * Go net/http server tracing with uprobes (x86-64, Go register ABI).
 *
 *   net/textproto.(*Reader).readContinuedLineSlice  RET points: sees every parsed header line;
 *       keeps traceparent / tracestate / user-agent of the goroutine that parses them.
 *   net/http.serverHandler.ServeHTTP  entry: decides the span's trace context (continue the
 *       incoming traceparent or start a trace) and remembers the request.
 *   net/http.serverHandler.ServeHTTP  RET points: reads method, URL, pattern, status, sizes and
 *       emits one go_http_server_event.
 *   net/http.(*Transport).roundTrip  entry: decides the client span's context: child of the server
 *       span on this goroutine or an ancestor (runtime.newproc1 RETs record goroutine parents,
 *       runtime.goexit1 forgets them), else a new trace. RET points: emits go_http_client_event.
 *   net/http.(*Request).write  entry + net/http.Header.writeSubset entry/RET points (on the
 *       Transport's write goroutine): finds an application-set traceparent in the serialised
 *       headers (then its ids are the client span's), else writes `Traceparent:` into the
 *       connection's bufio.Writer and advances its length (bpf_probe_write_user, in go_header_write_subset_ret_inject,
 *       loaded only where the kernel allows it), always within verified bounds.
 *
 * Never a uretprobe on Go code (Go moves goroutine stacks); the agent attaches a uprobe at every
 * RET instruction instead. Goroutines are identified by goid (never reused), read from g (R14).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "record_types.h"
#include "drop_reasons.h"
#include "go_abi.h"
#include "go_offsets.h"
#include "go_http_server.h"
#include "go_http_client.h"
#include "trace_context.h"
#include "sys_http_go_link.h"
#include "sk_inject.h"
#include "ring_wakeup.h"

char LICENSE[] SEC("license") = "GPL";

/* Settings, set by the agent before load. */
const volatile __u64 header_max_age_ns = 10ULL * 1000 * 1000 * 1000;
const volatile bool capture_user_agent = true;
/* Socket-level injection (bpf/sk_inject.bpf.c) is in effect for Go processes: where no
 * application traceparent was found, the write goroutine's flush leaves the client span's context
 * for the sk_msg program, keyed by the flushing thread. */
const volatile bool socket_injection = false;
/* bpf_probe_write_user injection is in effect (go_header_write_subset_ret_inject is loaded). */
const volatile bool memory_injection = false;
/* Wake the agent only once this many bytes wait in go_http_events (0: the kernel's default,
 * every record while the agent keeps up); bpf/ring_wakeup.h. */
const volatile __u64 ring_wakeup_bytes = 0;

struct goroutine_key {
	__u32 tgid;
	__u32 _pad;
	__u64 goid;
};

/* Headers seen while parsing the current request on a goroutine: traceparent and tracestate go
 * through the same W3C readers as the syscall path's (bpf/trace_context.h). */
struct incoming_headers {
	__u64 ts_ns;
	__u32 user_agent_len;
	__u32 _pad1;
	struct tp_reader tp;
	struct ts_reader ts;
	char user_agent[USER_AGENT_MAX];
};

/* A server request between ServeHTTP entry and return. */
struct server_request {
	__u64 start_ns;
	__u64 req;  /* *http.Request */
	__u64 resp; /* ResponseWriter's data pointer (*http.response for HTTP/1) */
	__u8 flags;
	__u8 _pad[7];
	struct trace_context ctx;   /* this span: trace id, span id, flags */
	__u8 parent_span_id[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct go_offsets);
} go_offsets_by_pid SEC(".maps");

/* LRU: entries of goroutines that never reach ServeHTTP (client response parsing, bad
 * requests) or of processes that died mid-request age out instead of filling the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct goroutine_key);
	__type(value, struct incoming_headers);
} incoming_by_goroutine SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct goroutine_key);
	__type(value, struct server_request);
} server_requests SEC(".maps");

/* Index 0 is an all-zero incoming_headers used to create entries without a big stack copy. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct incoming_headers);
} zero_headers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} go_http_events SEC(".maps");

DROP_COUNTERS_MAP(go_http_drops);

/* Keep the record type in BTF so its TypeScript view can be generated from this object. */
const struct go_http_server_event *_unused_go_http_server_event __attribute__((unused));
const struct go_http_client_event *_unused_go_http_client_event __attribute__((unused));
const struct go_http_client_end_event *_unused_go_http_client_end_event __attribute__((unused));
const struct go_offsets *_unused_go_offsets __attribute__((unused));
const enum record_type *_unused_record_type __attribute__((unused));
const enum drop_reason *_unused_drop_reason __attribute__((unused));

/* a == b for 8-byte multiples (ids); no memcmp in BPF. */
static __always_inline bool ids_equal(const void *a, const void *b, int n)
{
	__u64 x, y, d = 0;
#pragma unroll
	for (int i = 0; i < 16; i += 8) {
		if (i >= n)
			break;
		__builtin_memcpy(&x, (const char *)a + i, 8);
		__builtin_memcpy(&y, (const char *)b + i, 8);
		d |= x ^ y;
	}
	return d == 0;
}

static __always_inline void count_drop(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&go_http_drops, &reason);
	if (v)
		*v += 1;
}

static __always_inline int goroutine_key_of(struct pt_regs *ctx, const struct go_offsets *off,
					    struct goroutine_key *key)
{
	key->tgid = bpf_get_current_pid_tgid() >> 32;
	key->_pad = 0;
	key->goid = 0;
	void *g = GO_G(ctx);
	if (!g || bpf_probe_read_user(&key->goid, sizeof(key->goid), g + off->g_goid))
		return -1;
	return 0;
}

/* Copies a Go string field at base+off into dst (at most max bytes). Returns the true length,
 * 0 when the field is absent or empty. */
#define READ_GO_STRING(base, off, dst, max, true_len)                                      \
	({                                                                                 \
		struct go_string __s = {};                                                 \
		__u32 __n = 0;                                                             \
		if ((off) != OFFSET_ABSENT && (base) &&                                    \
		    !bpf_probe_read_user(&__s, sizeof(__s), (void *)(base) + (off)) &&     \
		    __s.len > 0 && __s.ptr) {                                              \
			__u64 __len = __s.len;                                             \
			true_len = __len > 0xffffffff ? 0xffffffff : (__u32)__len;         \
			if (__len > (max)) {                                               \
				__len = (max);                                             \
				count_drop(SKIP_STRING_TRUNCATED);                         \
			}                                                                  \
			__n = __len;                                                       \
			bpf_probe_read_user(dst, __n & ((max) | ((max) - 1)), (void *)__s.ptr); \
		}                                                                          \
		__n;                                                                       \
	})

static __always_inline __u8 lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

#define HDR_TRACEPARENT 1
#define HDR_TRACESTATE 2
#define HDR_USER_AGENT 3

/* Which header a parsed line starts with (case-insensitive), and where its value starts. */
static __always_inline int classify_header(const char *line, __u32 len, __u32 *value_off)
{
	char a = lower(line[0]);
	__u32 name_len;
	int kind;
	if (a == 't' && len >= 12 && lower(line[5]) == 'p' && line[11] == ':') {
		const char want[] = "traceparent";
#pragma unroll
		for (int i = 0; i < 11; i++)
			if (lower(line[i]) != want[i])
				return 0;
		name_len = 12;
		kind = HDR_TRACEPARENT;
	} else if (a == 't' && len >= 11 && lower(line[5]) == 's' && line[10] == ':') {
		const char want[] = "tracestate";
#pragma unroll
		for (int i = 0; i < 10; i++)
			if (lower(line[i]) != want[i])
				return 0;
		name_len = 11;
		kind = HDR_TRACESTATE;
	} else if (a == 'u' && len >= 11 && line[10] == ':') {
		const char want[] = "user-agent";
#pragma unroll
		for (int i = 0; i < 10; i++)
			if (lower(line[i]) != want[i])
				return 0;
		name_len = 11;
		kind = HDR_USER_AGENT;
	} else {
		return 0;
	}
	/* Skip optional whitespace after the colon (at most 4 bytes, bounded for the verifier). */
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (name_len < len && (line[name_len] == ' ' || line[name_len] == '\t'))
			name_len++;
	}
	*value_off = name_len;
	return kind;
}

#define LINE_PEEK 128 /* "traceparent:" + whitespace + the kept part of a value (TP_VALUE_KEEP) */
#define TS_LINE_READ 1024 /* tracestate value bytes read; a longer one is over W3C_TRACESTATE_MAX */

/* A tracestate line's value, copied for the W3C reader. */
struct header_scratch {
	char bytes[TS_LINE_READ];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct header_scratch);
} header_scratch_map SEC(".maps");

struct ts_line_ctx {
	struct ts_reader *ts;
	struct tp_reader *tp;
	const char *src;
	__u32 len;
	__u32 _pad;
};

static long tp_line_cb(__u32 i, struct ts_line_ctx *c)
{
	if (i >= c->len)
		return 1;
	tp_feed(c->tp, c->src[i & (TS_LINE_READ - 1)]);
	return 0;
}

static long ts_line_cb(__u32 i, struct ts_line_ctx *c)
{
	if (i >= c->len)
		return 1;
	ts_feed(c->ts, c->src[i & (TS_LINE_READ - 1)]);
	return 0;
}

SEC("uprobe")
int go_textproto_read_line_ret(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off)
		return 0;
	/* Results: ([]byte line, error): line in RAX/RBX/RCX, error in RDI/RSI. */
	if (ctx->di)
		return 0;
	__u64 ptr = ctx->ax;
	__u64 len = ctx->bx;
	if (!ptr || len < 11 || len > 8192)
		return 0;

	char line[LINE_PEEK] = {};
	__u32 peek = len < LINE_PEEK ? len : LINE_PEEK;
	if (bpf_probe_read_user(line, peek & (LINE_PEEK | (LINE_PEEK - 1)) ? peek : 0, (void *)ptr))
		return 0;
	__u32 value_off = 0;
	int kind = classify_header(line, peek, &value_off);
	if (!kind)
		return 0;

	struct goroutine_key key;
	if (goroutine_key_of(ctx, off, &key))
		return 0;
	struct incoming_headers *h = bpf_map_lookup_elem(&incoming_by_goroutine, &key);
	__u64 now = bpf_ktime_get_ns();
	if (h && now - h->ts_ns > header_max_age_ns) {
		/* Left over from a request that never reached ServeHTTP: start afresh. */
		bpf_map_delete_elem(&incoming_by_goroutine, &key);
		h = NULL;
	}
	if (!h) {
		__u32 zero = 0;
		const struct incoming_headers *z = bpf_map_lookup_elem(&zero_headers, &zero);
		if (!z)
			return 0;
		if (bpf_map_update_elem(&incoming_by_goroutine, &key, z, BPF_ANY))
			return 0;
		h = bpf_map_lookup_elem(&incoming_by_goroutine, &key);
		if (!h)
			return 0;
		h->ts_ns = now;
	}

	__u64 value_len = len - value_off;
	if (kind == HDR_TRACEPARENT) {
		/* W3C: several traceparent headers make it invalid (tp_result) */
		tp_begin(&h->tp);
		__u32 zero = 0;
		struct header_scratch *sc = bpf_map_lookup_elem(&header_scratch_map, &zero);
		__u64 n = value_len < LINE_PEEK ? value_len : LINE_PEEK;
		if (sc && n && !bpf_probe_read_user(sc->bytes, n & (LINE_PEEK | (LINE_PEEK - 1)), (void *)(ptr + value_off))) {
			struct ts_line_ctx c = { .tp = &h->tp, .src = sc->bytes, .len = n };
			bpf_loop(LINE_PEEK, tp_line_cb, &c, 0);
		}
		if (value_len > n) /* past what was read: its length is all that matters (invalid for 00) */
			h->tp.n = h->tp.trimmed = value_len;
	} else if (kind == HDR_TRACESTATE) {
		/* several headers combine in order (bpf/trace_context.h) */
		ts_begin(&h->ts);
		__u32 zero = 0;
		struct header_scratch *sc = bpf_map_lookup_elem(&header_scratch_map, &zero);
		__u64 n = value_len;
		if (n > TS_LINE_READ) {
			h->ts.verdict = TS_TOO_LONG;
		} else if (sc && n && !bpf_probe_read_user(sc->bytes, n & (TS_LINE_READ | (TS_LINE_READ - 1)), (void *)(ptr + value_off))) {
			struct ts_line_ctx c = { .ts = &h->ts, .src = sc->bytes, .len = n };
			bpf_loop(TS_LINE_READ, ts_line_cb, &c, 0);
		}
	} else if (kind == HDR_USER_AGENT && capture_user_agent) {
		__u32 n = value_len > USER_AGENT_MAX ? USER_AGENT_MAX : value_len;
		bpf_probe_read_user(h->user_agent, n & (USER_AGENT_MAX | (USER_AGENT_MAX - 1)),
				    (void *)(ptr + value_off));
		h->user_agent_len = value_len;
	}
	return 0;
}

SEC("uprobe")
int go_server_handler_serve_http(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off) {
		count_drop(DROP_NO_OFFSETS);
		return 0;
	}
	struct goroutine_key key;
	if (goroutine_key_of(ctx, off, &key)) {
		count_drop(DROP_READ_FAILED);
		return 0;
	}
	/* serverHandler.ServeHTTP(sh serverHandler, rw ResponseWriter, req *Request):
	 * sh in RAX, rw (itab, data) in RBX/RCX, req in RDI. */
	struct server_request r = {};
	r.start_ns = bpf_ktime_get_ns();
	r.req = (__u64)GO_ARG4(ctx);
	r.resp = (__u64)GO_ARG3(ctx);

	struct incoming_headers *h = bpf_map_lookup_elem(&incoming_by_goroutine, &key);
	struct trace_context parent;
	bool fresh = h && r.start_ns - h->ts_ns <= header_max_age_ns;
	if (fresh && h->tp.headers && tp_result(&h->tp, &parent))
		count_drop(SKIP_BAD_TRACEPARENT);
	if (fresh && !tp_result(&h->tp, &parent)) {
		__builtin_memcpy(r.ctx.trace_id, parent.trace_id, 16);
		__builtin_memcpy(r.parent_span_id, parent.span_id, 8);
		r.ctx.flags = parent.flags;
		r.flags |= SPAN_F_REMOTE_PARENT;
		/* the list as sent on (normalised, or dropped when invalid); ends the reader once */
		ts_result(&h->ts);
	} else if (go_link_take_parent(tgid, key.goid, r.start_ns, r.ctx.trace_id, r.parent_span_id,
				       &r.ctx.flags)) {
		/* Same-node client request on the other end of this connection (syscall tracer). */
		r.flags |= SPAN_F_REMOTE_PARENT;
	} else {
		new_trace_id(r.ctx.trace_id);
		r.ctx.flags = 0x01; /* sampled: a new root is recorded */
	}
	new_span_id(r.ctx.span_id);
	if (bpf_map_update_elem(&server_requests, &key, &r, BPF_ANY))
		count_drop(DROP_STATE_MAP_FULL);
	return 0;
}

SEC("uprobe")
int go_server_handler_serve_http_ret(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off)
		return 0;
	struct goroutine_key key;
	if (goroutine_key_of(ctx, off, &key))
		return 0;
	struct server_request *r = bpf_map_lookup_elem(&server_requests, &key);
	if (!r) {
		count_drop(DROP_NO_START);
		return 0;
	}
	struct go_http_server_event *e = bpf_ringbuf_reserve(&go_http_events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_RINGBUF_FULL);
		goto out;
	}
	/* Ring memory is not zeroed and a 1.3 KB memset is not expressible: set every scalar;
	 * string bytes past their length are never read by the agent. */
	e->type = RECORD_GO_HTTP_SERVER;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->goid = key.goid;
	e->start_ns = r->start_ns;
	e->end_ns = bpf_ktime_get_ns();
	e->trace_flags = r->ctx.flags;
	e->flags = r->flags;
	e->proto_major = e->proto_minor = 0;
	e->_pad0 = 0;
	e->status = 0;
	e->request_content_length = 0;
	e->response_size = 0;
	e->method_len = e->path_len = e->query_len = e->pattern_len = 0;
	e->host_len = e->remote_len = e->tracestate_len = e->user_agent_len = 0;
	__builtin_memcpy(e->trace_id, r->ctx.trace_id, 16);
	__builtin_memcpy(e->span_id, r->ctx.span_id, 8);
	__builtin_memcpy(e->parent_span_id, r->parent_span_id, 8);

	void *req = (void *)r->req;
	READ_GO_STRING(req, off->req_method, e->method, METHOD_MAX, e->method_len);
	READ_GO_STRING(req, off->req_host, e->host, HOST_MAX, e->host_len);
	READ_GO_STRING(req, off->req_remote_addr, e->remote, REMOTE_MAX, e->remote_len);
	if (READ_GO_STRING(req, off->req_pattern, e->pattern, PATTERN_MAX, e->pattern_len))
		e->flags |= SPAN_F_HAS_PATTERN;
	__s64 v = 0;
	if (!bpf_probe_read_user(&v, sizeof(v), req + off->req_content_length))
		e->request_content_length = v;
	__u64 proto = 0;
	if (!bpf_probe_read_user(&proto, sizeof(proto), req + off->req_proto_major))
		e->proto_major = proto;
	if (!bpf_probe_read_user(&proto, sizeof(proto), req + off->req_proto_minor))
		e->proto_minor = proto;

	void *url = NULL;
	if (!bpf_probe_read_user(&url, sizeof(url), req + off->req_url) && url) {
		READ_GO_STRING(url, off->url_path, e->path, PATH_MAX_LEN, e->path_len);
		READ_GO_STRING(url, off->url_raw_query, e->query, QUERY_MAX, e->query_len);
	}

	/* *http.response: status is set by WriteHeader; 0 means the handler wrote nothing and
	 * net/http will send 200. `written` counts body bytes. */
	void *resp = (void *)r->resp;
	__s64 status = 0, written = 0;
	if (resp && !bpf_probe_read_user(&status, sizeof(status), resp + off->resp_status) &&
	    status >= 0 && status < 1000)
		e->status = status ? status : 200;
	else
		e->flags |= SPAN_F_STATUS_UNKNOWN;
	if (resp && !bpf_probe_read_user(&written, sizeof(written), resp + off->resp_written))
		e->response_size = written;

	struct incoming_headers *h = bpf_map_lookup_elem(&incoming_by_goroutine, &key);
	if (h && r->start_ns - h->ts_ns <= header_max_age_ns) {
		/* only with a valid traceparent (ts_result ran at ServeHTTP entry) */
		if ((r->flags & SPAN_F_REMOTE_PARENT) && h->ts.verdict == TS_OK && h->ts.members) {
			e->tracestate_len = h->ts.len;
			bpf_probe_read_kernel(e->tracestate, TRACESTATE_MAX, h->ts.out);
		}
		e->user_agent_len = h->user_agent_len;
		bpf_probe_read_kernel(e->user_agent, USER_AGENT_MAX, h->user_agent);
	}
	bpf_ringbuf_submit(e, ring_wakeup_flags(&go_http_events, ring_wakeup_bytes));
out:
	bpf_map_delete_elem(&incoming_by_goroutine, &key);
	bpf_map_delete_elem(&server_requests, &key);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Client side                                                                                 */
/* ------------------------------------------------------------------------------------------ */

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
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off)
		return 0;
	struct goroutine_key key;
	if (!goroutine_key_of(ctx, off, &key))
		bpf_map_delete_elem(&goroutine_parent, &key);
	return 0;
}

/* The server span running on this goroutine or its nearest ancestor (bounded walk). */
/* The server span running on this goroutine or its nearest ancestor (bounded walk); *key ends as
 * the goroutine where it was found. */
static __always_inline struct server_request *find_server_request(struct goroutine_key *key)
{
	for (__u32 depth = 0; depth < 8; depth++) {
		if (depth > max_goroutine_depth)
			break;
		struct server_request *r = bpf_map_lookup_elem(&server_requests, key);
		if (r)
			return r;
		__u64 *parent = bpf_map_lookup_elem(&goroutine_parent, key);
		if (!parent)
			break;
		key->goid = *parent;
	}
	return NULL;
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
						     const struct server_request *parent,
						     const struct req_key *rkey)
{
	struct incoming_headers *h = bpf_map_lookup_elem(&incoming_by_goroutine, server_key);
	/* ts_result ran at ServeHTTP entry when the traceparent was valid (SPAN_F_REMOTE_PARENT) */
	if (!h || !(parent->flags & SPAN_F_REMOTE_PARENT) || h->ts.verdict != TS_OK || !h->ts.members ||
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
	struct server_request *parent = find_server_request(&skey);
	if (parent) {
		__builtin_memcpy(c.ctx.trace_id, parent->ctx.trace_id, 16);
		__builtin_memcpy(c.parent_span_id, parent->ctx.span_id, 8);
		c.ctx.flags = parent->ctx.flags;
		c.flags |= CLIENT_F_LOCAL_PARENT;
	} else {
		new_trace_id(c.ctx.trace_id);
		c.ctx.flags = 0x01;
	}
	new_span_id(c.ctx.span_id);
	if (parent && (parent->flags & SPAN_F_REMOTE_PARENT)) {
		c.has_incoming = 1;
		__builtin_memcpy(c.incoming_span_id, parent->parent_span_id, 8);
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
	if (socket_injection && parent)
		keep_incoming_tracestate(&skey, parent, &rkey);
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
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off)
		return 0;
	struct goroutine_key gkey;
	if (goroutine_key_of(ctx, off, &gkey))
		return 0;
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
		} else if (app_header) {
			/* respected: nothing was handed over */
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

SEC("uprobe")
int go_request_write(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off)
		return 0;
	/* (*Request).write(r *Request, w io.Writer, ...): r in RAX, w (itab, data) in RBX/RCX. */
	struct req_key rkey = { .tgid = tgid, .req = (__u64)GO_ARG1(ctx) };
	if (!bpf_map_lookup_elem(&client_requests, &rkey)) {
		/* The Transport's copy of a request with a body: found by its Header map. */
		struct header_key hk = { .tgid = tgid };
		if (off->req_header == OFFSET_ABSENT ||
		    bpf_probe_read_user(&hk.header, sizeof(hk.header), (void *)rkey.req + off->req_header) || !hk.header)
			return 0;
		struct header_owner *o = bpf_map_lookup_elem(&client_by_header, &hk);
		if (!o || !o->req)
			return 0; /* not a traced call, or two share the map (counted at roundTrip's return) */
		rkey.req = o->req;
		if (!bpf_map_lookup_elem(&client_requests, &rkey))
			return 0;
	}
	struct goroutine_key gkey;
	if (goroutine_key_of(ctx, off, &gkey))
		return 0;
	struct pending_write p = { .req = rkey.req, .writer = (__u64)GO_ARG3(ctx), .n_start = -1, .flushed = 0 };
	bpf_map_update_elem(&pending_writes, &gkey, &p, BPF_ANY);
	return 0;
}

SEC("uprobe")
int go_header_write_subset(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off)
		return 0;
	struct goroutine_key gkey;
	if (goroutine_key_of(ctx, off, &gkey))
		return 0;
	struct pending_write *p = bpf_map_lookup_elem(&pending_writes, &gkey);
	/* Header.writeSubset(h Header, w io.Writer, ...): h in RAX, w (itab, data) in RBX/RCX.
	 * Only the first call after Request.write (the request's own headers), on its writer. */
	if (!p || p->n_start >= 0 || (__u64)GO_ARG3(ctx) != p->writer)
		return 0;
	__s64 n = -1;
	if (bpf_probe_read_user(&n, sizeof(n), (void *)p->writer + off->bufio_n) || n < 0)
		return 0;
	p->n_start = n;
	return 0;
}

/* persistConnWriter.Write is where the connection's bufio.Writer flushes to. A flush between
 * writeSubset's entry and return means part of the headers already left: they cannot be
 * inspected, so nothing is injected (an application's traceparent may be among them). */
SEC("uprobe")
int go_persist_conn_writer_write(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off)
		return 0;
	struct goroutine_key gkey;
	if (goroutine_key_of(ctx, off, &gkey))
		return 0;
	struct pending_write *p = bpf_map_lookup_elem(&pending_writes, &gkey);
	if (p && p->n_start >= 0)
		p->flushed = 1;
	if (socket_injection) {
		/* The write syscall follows on this OS thread: hand the armed context (if any) to the
		 * sk_msg program under this thread's id; any other flush clears the thread's entry so
		 * that a stale context can never reach another request. */
		__u64 id = bpf_get_current_pid_tgid();
		struct sk_inject_pending *a = bpf_map_lookup_elem(&sk_armed, &gkey);
		if (a && !(p && p->n_start >= 0)) {
			a->ts_ns = bpf_ktime_get_ns();
			if (a->flags & SK_INJECT_F_TRACESTATE) {
				struct req_key rk = { .tgid = tgid, ._pad = 0, .req = a->cookie };
				struct sk_inject_tracestate *t = bpf_map_lookup_elem(&client_tracestate, &rk);
				if (!t || bpf_map_update_elem(&spanbridge_sk_inject_tracestate_v2, &id, t, BPF_ANY))
					a->flags &= ~SK_INJECT_F_TRACESTATE;
			}
			bpf_map_update_elem(&spanbridge_sk_inject_pending_v2, &id, a, BPF_ANY);
			bpf_map_delete_elem(&sk_armed, &gkey);
		} else {
			bpf_map_delete_elem(&spanbridge_sk_inject_pending_v2, &id);
		}
	}
	return 0;
}

struct scan_ctx {
	const char *bytes;
	__u32 len;
	__s32 found; /* offset of the value after "traceparent:" + OWS, or -1 */
};

static long scan_line(__u32 i, struct scan_ctx *sc)
{
	/* A header line starts at 0 or after '\n'. */
	if (i + 12 > sc->len || i >= SCAN_MAX)
		return 1;
	const char *b = sc->bytes;
	if (i > 0 && b[(i - 1) & (SCAN_MAX - 1)] != '\n')
		return 0;
	const char want[] = "traceparent:";
	for (int k = 0; k < 12; k++) {
		char c = b[(i + k) & (SCAN_MAX + 127)];
		if (k < 11)
			c = lower(c);
		if (c != want[k])
			return 0;
	}
	__u32 v = i + 12;
	for (int k = 0; k < 4; k++) {
		char c = b[v & (SCAN_MAX + 127)];
		if (c == ' ' || c == '\t')
			v++;
	}
	sc->found = v;
	return 1;
}

/* Like scan_line, for a `tracestate:` line. */
static long scan_tracestate_line(__u32 i, struct scan_ctx *sc)
{
	if (i + 11 > sc->len || i >= SCAN_MAX)
		return 1;
	const char *b = sc->bytes;
	if (i > 0 && b[(i - 1) & (SCAN_MAX - 1)] != '\n')
		return 0;
	const char want[] = "tracestate:";
	for (int k = 0; k < 11; k++) {
		char c = b[(i + k) & (SCAN_MAX + 127)];
		if (k < 10)
			c = lower(c);
		if (c != want[k])
			return 0;
	}
	sc->found = i;
	return 1;
}

/* At the RETs of Header.writeSubset: the request's headers are in the writer's buffer. Either
 * the application set a traceparent (use its ids; never add a second), or inject ours. */
static __always_inline int write_subset_ret(struct pt_regs *ctx, const bool inject)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off)
		return 0;
	struct goroutine_key gkey;
	if (goroutine_key_of(ctx, off, &gkey))
		return 0;
	struct pending_write *p = bpf_map_lookup_elem(&pending_writes, &gkey);
	if (!p || p->n_start < 0)
		return 0;
	struct pending_write pw = *p;
	bpf_map_delete_elem(&pending_writes, &gkey);
	struct req_key rkey = { .tgid = tgid, .req = pw.req };
	struct client_request *c = bpf_map_lookup_elem(&client_requests, &rkey);
	if (!c)
		return 0;

	/* The writer: buf []byte (ptr, len, cap) and n. A bufio.Writer's buf has len == cap. */
	struct go_slice buf = {};
	__s64 n = -1;
	void *w = (void *)pw.writer;
	if (bpf_probe_read_user(&buf, sizeof(buf), w + off->bufio_buf) ||
	    bpf_probe_read_user(&n, sizeof(n), w + off->bufio_n) || !buf.ptr || buf.len != buf.cap ||
	    buf.cap <= 0 || buf.cap > (1 << 24) || n < 0 || n > buf.len) {
		count_drop(INJECT_SKIP_BAD_WRITER);
		c->flags |= CLIENT_F_INJECT_SKIPPED;
		return 0;
	}
	if (pw.flushed || n < pw.n_start) {
		/* The buffer was flushed mid-headers: what was written cannot be inspected. */
		count_drop(INJECT_SKIP_FLUSHED);
		c->flags |= CLIENT_F_INJECT_SKIPPED;
		return 0;
	}
	__u64 len = n - pw.n_start;
	if (len > SCAN_MAX) {
		count_drop(INJECT_SKIP_SCAN_LIMIT);
		c->flags |= CLIENT_F_INJECT_SKIPPED;
		return 0;
	}
	__u32 zero = 0;
	struct scan_scratch *s = bpf_map_lookup_elem(&scan_scratch_map, &zero);
	if (!s)
		return 0;
	if (len > 0 && bpf_probe_read_user(s->bytes, len & (SCAN_MAX | (SCAN_MAX - 1)), (void *)(buf.ptr + pw.n_start)))
		return 0;
	struct scan_ctx sc = { .bytes = s->bytes, .len = len, .found = -1 };
	if (len >= 12)
		bpf_loop(SCAN_MAX, scan_line, &sc, 0);
	if (sc.found >= 0) {
		/* The application's own traceparent: respected; if valid, it is this span's context. */
		struct trace_context app = {};
		__u32 v = sc.found;
		__u32 vlen = 0;
		/* value length up to the CR */
		if (v + TRACEPARENT_LEN + 2 <= len && v < SCAN_MAX &&
		    s->bytes[(v + TRACEPARENT_LEN) & (SCAN_MAX + 127)] == '\r')
			vlen = TRACEPARENT_LEN;
		if (vlen && !parse_traceparent(s->bytes + (v & (SCAN_MAX - 1)), vlen, &app) && c->has_incoming &&
		    ids_equal(app.trace_id, c->ctx.trace_id, 16) && ids_equal(app.span_id, c->incoming_span_id, 8)) {
			/* The traceparent its server request came in with, forwarded (a proxy): not a span
			 * of the application's. The client span stays the server span's child and the
			 * value is replaced by its own (same length: nothing else moves). */
			c->flags2 |= CLIENT_F2_FORWARDED;
			count_drop(INJECT_FORWARDED);
			if (inject) {
				char line[TRACEPARENT_LINE_LEN];
				format_traceparent_line(line, &c->ctx, 'T');
				/* [n_start + v, n_start + v + 55) lies inside the bytes just scanned, inside buf. */
				if (buf.len != buf.cap || pw.n_start + v + TRACEPARENT_LEN > n ||
				    bpf_probe_write_user((void *)(buf.ptr + pw.n_start + v), line + 13, TRACEPARENT_LEN)) {
					count_drop(INJECT_SKIP_BAD_WRITER);
					c->flags |= CLIENT_F_INJECT_SKIPPED;
				} else {
					c->flags |= CLIENT_F_INJECTED;
				}
			} else if (socket_injection) {
				struct sk_inject_pending a = { .cookie = pw.req, .flags = SK_INJECT_F_HEADERS_CHECKED | SK_INJECT_F_REPLACE };
				a.ts_ns = bpf_ktime_get_ns();
				a.ctx = c->ctx;
				bpf_map_update_elem(&sk_armed, &gkey, &a, BPF_ANY);
			}
			return 0;
		}
		if (vlen && !parse_traceparent(s->bytes + (v & (SCAN_MAX - 1)), vlen, &app)) {
			__builtin_memcpy(c->ctx.trace_id, app.trace_id, 16);
			__builtin_memcpy(c->ctx.span_id, app.span_id, 8);
			c->ctx.flags = app.flags;
			c->flags |= CLIENT_F_APP_TRACEPARENT;
		} else {
			c->flags |= CLIENT_F_APP_TP_INVALID;
		}
		count_drop(INJECT_SKIP_APP_HEADER);
		return 0;
	}
	if (!inject) {
		if (socket_injection) {
			struct sk_inject_pending a = { .cookie = pw.req, .flags = SK_INJECT_F_HEADERS_CHECKED };
			/* tracestate goes along unless the application wrote its own */
			if (bpf_map_lookup_elem(&client_tracestate, &rkey)) {
				struct scan_ctx tc = { .bytes = s->bytes, .len = len, .found = -1 };
				if (len >= 11)
					bpf_loop(SCAN_MAX, scan_tracestate_line, &tc, 0);
				if (tc.found < 0)
					a.flags |= SK_INJECT_F_TRACESTATE;
			}
			a.ts_ns = bpf_ktime_get_ns();
			a.ctx = c->ctx;
			bpf_map_update_elem(&sk_armed, &gkey, &a, BPF_ANY);
		}
		return 0;
	}
	if (buf.cap - n < TRACEPARENT_LINE_LEN) {
		count_drop(INJECT_SKIP_NO_ROOM);
		c->flags |= CLIENT_F_INJECT_SKIPPED;
		return 0;
	}
	char line[TRACEPARENT_LINE_LEN];
	format_traceparent_line(line, &c->ctx, 'T');
	/* Bounds verified above: [buf.ptr + n, buf.ptr + n + 70) lies inside the buffer. */
	if (bpf_probe_write_user((void *)(buf.ptr + n), line, TRACEPARENT_LINE_LEN)) {
		count_drop(INJECT_SKIP_BAD_WRITER);
		c->flags |= CLIENT_F_INJECT_SKIPPED;
		return 0;
	}
	__s64 new_n = n + TRACEPARENT_LINE_LEN;
	if (bpf_probe_write_user(w + off->bufio_n, &new_n, sizeof(new_n))) {
		count_drop(INJECT_SKIP_BAD_WRITER);
		c->flags |= CLIENT_F_INJECT_SKIPPED;
		return 0;
	}
	c->flags |= CLIENT_F_INJECTED;
	count_drop(INJECT_DONE);
	return 0;
}

/* Loaded where bpf_probe_write_user is forbidden: still honours an application's traceparent. */
SEC("uprobe")
int go_header_write_subset_ret(struct pt_regs *ctx)
{
	return write_subset_ret(ctx, false);
}

/* Loaded only where bpf_probe_write_user is allowed (lockdown none + CAP_SYS_ADMIN): the same
 * logic, and it writes the header. The agent disables one of the two before load. */
SEC("uprobe")
int go_header_write_subset_ret_inject(struct pt_regs *ctx)
{
	return write_subset_ret(ctx, true);
}
