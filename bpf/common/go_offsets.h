/* Struct field offsets of one traced Go process, written by the agent into a map keyed by the
 * process's host pid (tgid) when it attaches. They come from the binary's DWARF or from a table
 * keyed by Go version (src/discovery/go/offsets.ts). OFFSET_ABSENT marks a field this Go version
 * does not have (e.g. Request.Pattern before Go 1.23). */
#ifndef SPANBRIDGE_GO_OFFSETS_H
#define SPANBRIDGE_GO_OFFSETS_H

#define OFFSET_ABSENT 0xffffffffu

struct go_offsets {
	__u32 g_goid;
	__u32 req_method;
	__u32 req_url;
	__u32 req_host;
	__u32 req_remote_addr;
	__u32 req_pattern;
	__u32 req_content_length;
	__u32 req_proto_major;
	__u32 req_proto_minor;
	__u32 url_path;
	__u32 url_raw_query;
	__u32 resp_status;
	__u32 resp_written;
	/* client side */
	__u32 url_scheme;
	__u32 url_host;
	__u32 response_status_code; /* net/http.Response.StatusCode */
	__u32 bufio_buf;
	__u32 bufio_n;
	/* goroutine ancestry (Go >= 1.21) */
	__u32 g_parent_goid;
	/* the Transport copies requests with a body; the copy shares the Header map */
	__u32 req_header;
	/* end of a client exchange: the response body (OFFSET_ABSENT: spans end at the response head) */
	__u32 response_body;
	__u32 response_content_length;
	__u32 response_uncompressed; /* Response.Uncompressed: Body is a gzipReader */
	__u32 response_proto_major;  /* 1: the HTTP/1 Transport's bodyEOFSignal (HTTP/2 bodies are not) */
	__u32 gzip_reader_body;      /* gzipReader.body: the *bodyEOFSignal it reads */
	/* go.client_path syscall: the connection's write buffer and the hand-over from the caller
	 * (bpf/common/go_client_ctx.h) */
	__u32 pconn_bw;      /* net/http.persistConn.bw */
	__u32 pconn_reqch;   /* net/http.persistConn.reqch */
	__u32 chan_qcount;   /* runtime.hchan.qcount */
	__u32 chan_dataqsiz; /* runtime.hchan.dataqsiz */
	__u32 chan_buf;      /* runtime.hchan.buf */
	__u32 chan_elemsize; /* runtime.hchan.elemsize */
	__u32 chan_recvx;    /* runtime.hchan.recvx */
	__u32 chan_recvq;    /* runtime.hchan.recvq */
	__u32 waitq_first;   /* runtime.waitq.first */
	__u32 sudog_g;       /* runtime.sudog.g */
	__u32 sudog_c;       /* runtime.sudog.c */
	__u32 rac_ch;        /* net/http.requestAndChan.ch */
	__u32 pconn_nwrite;  /* net/http.persistConn.nwrite (OFFSET_ABSENT: no caller from roundTrip) */
};

#endif
