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
 *   net/http.(*conn).serve  entry (go.server_path: syscall, instead of the two above): one hit per
 *       connection; the syscall tracer decides the server span (bpf/sys_http/sys_http_go_server.h) and reads
 *       the route through the *conn left here (bpf/common/go_server_ctx.h).
 *   net/http.(*Transport).roundTrip  entry: decides the client span's context: child of the server
 *       span on this goroutine or an ancestor (runtime.newproc1 RETs record goroutine parents,
 *       runtime.goexit1 forgets them), else a new trace. RET points: emits go_http_client_event.
 *   net/http.(*Request).write  entry + net/http.Header.writeSubset entry/RET points (on the
 *       Transport's write goroutine): finds an application-set traceparent in the serialised
 *       headers (then its ids are the client span's), else writes `Traceparent:` into the
 *       connection's bufio.Writer and advances its length (bpf_probe_write_user, in go_header_write_subset_ret_inject,
 *       loaded only where the kernel allows it), always within verified bounds.
 *   go.client_path syscall, instead of the client probes above: net/http.(*persistConn).roundTrip
 *       entry only, once per request (bpf/go_http/go_http_client_lean.h); the syscall tracer makes the span.
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
#include "go_server_ctx.h"
#include "sk_inject.h"
#include "ring_wakeup.h"
#include "bytes.h"
#include "counters.h"

char LICENSE[] SEC("license") = "GPL";

/* Settings, set by the agent before load. */
const volatile __u64 header_max_age_ns = 10ULL * 1000 * 1000 * 1000;
const volatile bool capture_user_agent = true;
/* Socket-level injection (bpf/sk_inject/sk_inject.bpf.c) is in effect for Go processes: where no
 * application traceparent was found, the write goroutine's flush leaves the client span's context
 * for the sk_msg program, keyed by the flushing thread. */
const volatile bool socket_injection = false;
/* bpf_probe_write_user injection is in effect (go_header_write_subset_ret_inject is loaded). */
const volatile bool memory_injection = false;
/* Wake the agent only once this many bytes wait in go_http_events (0: the kernel's default,
 * every record while the agent keeps up); bpf/common/ring_wakeup.h. */
const volatile __u64 ring_wakeup_bytes = 0;

struct goroutine_key {
	__u32 tgid;
	__u32 _pad;
	__u64 goid;
};

/* Headers seen while parsing the current request on a goroutine: traceparent and tracestate go
 * through the same W3C readers as the syscall path's (bpf/common/trace_context.h). */
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

static __always_inline void count_drop(__u32 reason)
{
	counter_inc(&go_http_drops, reason);
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

/* The calling process's offsets and goroutine (key); NULL when the process is not traced here or
 * its goroutine cannot be read. The preamble of every probe that works per goroutine. */
static __always_inline const struct go_offsets *current_goroutine(struct pt_regs *ctx, struct goroutine_key *key)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct go_offsets *off = bpf_map_lookup_elem(&go_offsets_by_pid, &tgid);
	if (!off || goroutine_key_of(ctx, off, key))
		return NULL;
	return off;
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
		/* several headers combine in order (bpf/common/trace_context.h) */
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
	struct goroutine_key key;
	const struct go_offsets *off = current_goroutine(ctx, &key);
	if (!off)
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

/* go.server_path syscall: the connection's goroutine -> its *conn, for the route at the response
 * write (bpf/sys_http/sys_http_go_server.h). (*conn).serve(c *conn, ctx context.Context): c in RAX. */
SEC("uprobe")
int go_server_conn_serve(struct pt_regs *ctx)
{
	struct goroutine_key key;
	if (!current_goroutine(ctx, &key))
		return 0;
	struct go_link_key k = { .tgid = key.tgid, ._pad = 0, .goid = key.goid };
	__u64 conn = (__u64)GO_ARG1(ctx);
	if (conn && bpf_map_update_elem(&spanbridge_go_conns_v1, &k, &conn, BPF_ANY))
		count_drop(DROP_STATE_MAP_FULL);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Client side                                                                                 */
/* ------------------------------------------------------------------------------------------ */

#include "go_http_client_calls.h"
#include "go_http_header_write.h"
#include "go_http_client_lean.h"
