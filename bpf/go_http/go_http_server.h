/* The record a Go net/http server request produces (RECORD_GO_HTTP_SERVER). Fixed-width fields,
 * explicit padding; the TypeScript view is generated from this object's BTF
 * (scripts/gen-structs.ts -> src/events/structs.generated.ts). */
#ifndef SPANBRIDGE_GO_HTTP_SERVER_H
#define SPANBRIDGE_GO_HTTP_SERVER_H

#define METHOD_MAX 16
#define PATH_MAX_LEN 256
#define QUERY_MAX 256
#define PATTERN_MAX 128
#define HOST_MAX 128
#define REMOTE_MAX 64
#define TRACESTATE_MAX 512 /* = W3C_TRACESTATE_MAX (bpf/common/trace_context.h): the normalised list */
#define USER_AGENT_MAX 128

/* flags */
enum go_http_server_flag {
	SPAN_F_REMOTE_PARENT = 1 << 0, /* a valid traceparent arrived with the request */
	SPAN_F_HAS_PATTERN = 1 << 1, /* pattern holds Request.Pattern (Go >= 1.23) */
	SPAN_F_STATUS_UNKNOWN = 1 << 2,
};
/* In BTF (the TypeScript view is generated from it: src/events/structs.generated.ts). */
const enum go_http_server_flag *_unused_go_http_server_flag __attribute__((unused));

struct go_http_server_event {
	__u8 type;
	__u8 trace_flags;
	__u8 flags;
	__u8 proto_major;
	__u8 proto_minor;
	__u8 _pad0;
	__u16 status;
	__u32 pid;
	__u32 tid;
	__u64 goid;
	__u64 start_ns;
	__u64 end_ns;
	__s64 request_content_length;
	__s64 response_size;
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 parent_span_id[8];
	/* True lengths in the target; the copies below hold at most their buffer size. */
	__u32 method_len;
	__u32 path_len;
	__u32 query_len;
	__u32 pattern_len;
	__u32 host_len;
	__u32 remote_len;
	__u32 tracestate_len;
	__u32 user_agent_len;
	char method[METHOD_MAX];
	char path[PATH_MAX_LEN];
	char query[QUERY_MAX];
	char pattern[PATTERN_MAX];
	char host[HOST_MAX];
	char remote[REMOTE_MAX];
	char tracestate[TRACESTATE_MAX];
	char user_agent[USER_AGENT_MAX];
};

#endif
