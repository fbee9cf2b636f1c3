/* An HTTP/1.x request head read byte by byte, for the W3C trace-context headers in it: the same
 * result whether the head came in one read or in many (split by the network, by an inserted
 * header, by a slow client, or by its size), because nothing depends on where reads end. */
#ifndef SPANBRIDGE_HTTP_HEAD_H
#define SPANBRIDGE_HTTP_HEAD_H

#include "trace_context.h"
#include "bytes.h"

/* The context is decided when the head ends, or after this many head bytes (counted). */
#define HTTP_HEAD_MAX 8192

enum head_line {
	HL_SKIP = 0,  /* the rest of a line that does not matter (request line, other headers) */
	HL_START = 1, /* at a line start */
	HL_NAME = 2,  /* inside a header name that may still be traceparent or tracestate */
	HL_TP = 3,    /* inside a traceparent value */
	HL_TS = 4,    /* inside a tracestate value */
	HL_CR = 5,    /* a line that so far is a lone CR (the blank line) */
};

enum head_done {
	HEAD_OPEN = 0,
	HEAD_COMPLETE = 1, /* the blank line was read */
	HEAD_TOO_LONG = 2, /* HTTP_HEAD_MAX bytes without the blank line: decided with what was read */
};

struct head_reader {
	__u32 seen;   /* head bytes read (request line included) */
	__u8 line;    /* enum head_line */
	__u8 name_at; /* bytes of the header name matched */
	__u8 cand;    /* bit 0: the name may be "traceparent", bit 1: "tracestate" */
	__u8 done;    /* enum head_done */
	struct tp_reader tp;
	struct ts_reader ts;
};

/* A new head: the request line comes first and is skipped. */
static __always_inline void head_reset(struct head_reader *h)
{
	h->seen = 0;
	h->line = HL_SKIP;
	h->name_at = 0;
	h->cand = 0;
	h->done = HEAD_OPEN;
	h->tp.headers = 0;
	h->tp.n = 0;
	h->tp.trimmed = 0;
	h->ts.len = 0;
	h->ts.last_nb = 0;
	h->ts.keylen = 0;
	h->ts.vallen = 0;
	h->ts.state = TS_BEFORE;
	h->ts.members = 0;
	h->ts.verdict = TS_OK;
	h->ts.headers = 0;
}

/* One byte of the head. Header names are case-insensitive; values end at CR/LF. */
static __always_inline void head_feed(struct head_reader *h, char c)
{
	h->seen += 1;
	switch (h->line) {
	case HL_SKIP:
		if (c == '\n')
			h->line = HL_START;
		return;
	case HL_START:
		if (c == '\r') {
			h->line = HL_CR;
		} else if (c == '\n') {
			h->done = HEAD_COMPLETE;
		} else if (lower(c) == 't') {
			h->line = HL_NAME;
			h->name_at = 1;
			h->cand = 3;
		} else {
			h->line = HL_SKIP;
		}
		return;
	case HL_CR:
		if (c == '\n')
			h->done = HEAD_COMPLETE;
		else
			h->line = HL_SKIP;
		return;
	case HL_NAME: {
		const char tp[] = "traceparent";
		const char ts[] = "tracestate";
		__u32 at = h->name_at;
		if (c == ':') {
			if ((h->cand & 1) && at == 11) {
				tp_begin(&h->tp);
				h->line = HL_TP;
			} else if ((h->cand & 2) && at == 10) {
				ts_begin(&h->ts);
				h->line = HL_TS;
			} else {
				h->line = HL_SKIP;
			}
			return;
		}
		if (c == '\n') {
			h->line = HL_START;
			return;
		}
		char l = lower(c);
		if (at >= 11 || l != tp[at & 15])
			h->cand &= ~1;
		if (at >= 10 || l != ts[at & 15])
			h->cand &= ~2;
		h->name_at = at + 1;
		if (!h->cand)
			h->line = HL_SKIP;
		return;
	}
	case HL_TP:
		if (c == '\n')
			h->line = HL_START;
		else if (c != '\r')
			tp_feed(&h->tp, c);
		return;
	default: /* HL_TS */
		if (c == '\n')
			h->line = HL_START;
		else if (c != '\r')
			ts_feed(&h->ts, c);
		return;
	}
}

#endif
