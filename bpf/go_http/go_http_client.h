/* The record a Go net/http client request produces (RECORD_GO_HTTP_CLIENT). Fixed-width fields,
 * explicit padding; the TypeScript view is generated from this object's BTF. */
#ifndef SPANBRIDGE_GO_HTTP_CLIENT_H
#define SPANBRIDGE_GO_HTTP_CLIENT_H

#define CLIENT_METHOD_MAX 16
#define CLIENT_SCHEME_MAX 8
#define CLIENT_HOST_MAX 128
#define CLIENT_PATH_MAX 256
#define CLIENT_QUERY_MAX 256

/* flags */
enum go_http_client_flag {
	CLIENT_F_LOCAL_PARENT = 1 << 0, /* parent = a server span on this or an ancestor goroutine */
	CLIENT_F_ERROR = 1 << 1, /* roundTrip returned an error */
	CLIENT_F_INJECTED = 1 << 2, /* traceparent written into the request */
	CLIENT_F_APP_TRACEPARENT = 1 << 3, /* the app set a valid traceparent: its ids are used */
	CLIENT_F_APP_TP_INVALID = 1 << 4, /* the app set a malformed traceparent: left untouched */
	CLIENT_F_INJECT_SKIPPED = 1 << 5, /* injection wanted but skipped (no room, flushed, ...) */
	CLIENT_F_HAS_STATUS = 1 << 6,
	CLIENT_F_INJECTED_SOCKET = 1 << 7, /* traceparent inserted by sk_msg (bpf/sk_inject/sk_inject.bpf.c) */
};
/* In BTF (the TypeScript view is generated from it: src/events/structs.generated.ts). */
const enum go_http_client_flag *_unused_go_http_client_flag __attribute__((unused));

/* flags2 */
enum go_http_client_flag2 {
	CLIENT_F2_FORWARDED = 1 << 0, /* the application sent the traceparent its server request came in
	   * with (a proxy forwarding it): not a span of its own; the value is
	   * replaced by this span's (CLIENT_F_INJECTED / _INJECTED_SOCKET) */
	CLIENT_F2_SHARED_HEADER = 1 << 1, /* another request in flight shares this one's Header map: the
	   * write could not be told apart, nothing was injected */
	CLIENT_F2_BODY_OPEN = 1 << 2, /* the response has a body: the span ends when it is read to its
	   * end or closed (a RECORD_GO_HTTP_CLIENT_END with this span id) */
};
/* In BTF (the TypeScript view is generated from it: src/events/structs.generated.ts). */
const enum go_http_client_flag2 *_unused_go_http_client_flag2 __attribute__((unused));

struct go_http_client_event {
	__u8 type;
	__u8 trace_flags;
	__u8 flags;
	__u8 flags2;
	__u16 status;
	__u16 _pad1;
	__u32 pid;
	__u32 tid;
	__u64 goid;
	__u64 start_ns;
	__u64 end_ns;
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 parent_span_id[8];
	__u32 method_len;
	__u32 scheme_len;
	__u32 host_len;
	__u32 path_len;
	__u32 query_len;
	__u32 _pad2;
	char method[CLIENT_METHOD_MAX];
	char scheme[CLIENT_SCHEME_MAX];
	char host[CLIENT_HOST_MAX];
	char path[CLIENT_PATH_MAX];
	char query[CLIENT_QUERY_MAX];
};

/* RECORD_GO_HTTP_CLIENT_END: the response body of a client span reported with CLIENT_F2_BODY_OPEN
 * was closed (or read to its end): the span ends here. */
struct go_http_client_end_event {
	__u8 type;
	__u8 _pad0[3];
	__u32 pid;
	__u64 end_ns;
	__u8 span_id[8];
};

#endif
