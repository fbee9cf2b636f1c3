/* Every ring-buffer record starts with a u8 type from this list; one decoder switches on it. */
#ifndef SPANBRIDGE_RECORD_TYPES_H
#define SPANBRIDGE_RECORD_TYPES_H

enum record_type {
	RECORD_PROC_EXEC = 1,
	RECORD_PROC_EXIT = 2,
	RECORD_GO_HTTP_SERVER = 3,
	RECORD_GO_HTTP_CLIENT = 4,
	RECORD_PROC_FORK = 5, /* a traced process forked (bpf/sys_http/sys_http_lifecycle.h; proc_lifecycle_event) */
	RECORD_GO_HTTP_CLIENT_END = 8, /* a Go client span's response body closed (bpf/go_http/go_http_client.h) */
	/* any-language HTTP/1.x from syscall tracepoints (bpf/sys_http/sys_http.h) */
	RECORD_SYS_HTTP_CONN_OPEN = 16,
	RECORD_SYS_HTTP_CONN_CLOSE = 17,
	RECORD_SYS_HTTP_DATA = 18,
	RECORD_SYS_HTTP_ROUTE = 19, /* a Go server request's route as a record of its own: still read, no longer sent (it rides the response's data record, sys_http_data_event.route_len) */
};

#endif
