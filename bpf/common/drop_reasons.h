/* Kernel-side drop and skip counters: a per-CPU array indexed by these reasons. The agent sums
 * them and exports them as self-metrics; the hot path counts instead of failing silently. */
#ifndef SPANBRIDGE_DROP_REASONS_H
#define SPANBRIDGE_DROP_REASONS_H

enum drop_reason {
	DROP_RINGBUF_FULL = 0,      /* bpf_ringbuf_reserve failed: the agent is not keeping up */
	DROP_STATE_MAP_FULL = 1,    /* per-request state could not be stored */
	DROP_NO_OFFSETS = 2,        /* probe hit in a process the agent has no offsets for */
	DROP_READ_FAILED = 3,       /* reading target memory failed (request dropped) */
	DROP_NO_START = 4,          /* a return probe without a matching entry */
	SKIP_BAD_TRACEPARENT = 5,   /* incoming traceparent malformed: treated as absent */
	SKIP_STRING_TRUNCATED = 6,  /* a captured string was longer than its buffer */
	INJECT_DONE = 7,            /* a traceparent was written into an outgoing request (not a drop) */
	INJECT_SKIP_NO_ROOM = 8,    /* no room left in the writer's buffer: request left untouched */
	INJECT_SKIP_FLUSHED = 9,    /* the writer flushed while headers were written: left untouched */
	INJECT_SKIP_BAD_WRITER = 10, /* the writer did not look like a bufio.Writer: left untouched */
	INJECT_SKIP_APP_HEADER = 11, /* the application set its own traceparent: respected */
	INJECT_SKIP_SCAN_LIMIT = 12, /* headers longer than the scan window: left untouched */
	INJECT_SKIP_SOCKET_LOST = 13, /* socket-level: a request that was sent got no sk_msg outcome (its
				       * write ran on another OS thread than the flush that handed the
				       * context over: the goroutine moved in between) */
	INJECT_SKIP_SHARED_HEADER = 14, /* two requests in flight shared one Header map: the Transport's
					 * copy of either could not be told apart, neither was injected */
	INJECT_FORWARDED = 15,      /* (not a drop) the application forwarded its incoming traceparent
				     * (a proxy): the value was replaced by the client span's */
	CLIENT_END_LOST = 16,       /* a client span's end (body closed) could not be recorded: it ends
				     * at the response head */
	DROP_REASON_MAX = 17,
};

#define DROP_COUNTERS_MAP(name)                                   \
	struct {                                                  \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);          \
		__uint(max_entries, DROP_REASON_MAX);             \
		__type(key, __u32);                               \
		__type(value, __u64);                             \
	} name SEC(".maps")

#endif
