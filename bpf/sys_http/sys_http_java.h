/* bpf/sys_http/sys_http.bpf.c, Java: OS threads that say nothing about which server request a client call
 * serves (docs/java-async-linking.md). Included by sys_http.bpf.c before its connect programs.
 *
 * A ForkJoinPool worker runs many tasks interleaved on one OS thread: the carriers of Java 21+
 * virtual threads ("ForkJoinPool-N-worker-M", the JDK's default scheduler), application pools, and
 * the common pool ("ForkJoinPool.commonPool-worker-M"). A virtual thread that read request A on
 * carrier 1 is unmounted at its next blocking call (socket I/O, sleep, a lock) and may resume on
 * carrier 2, where the virtual thread of request B read B a moment before and is parked: the only
 * request active on carrier 2 is then B, and linking A's call to it is a wrong parent (measured on
 * Temurin 25, Spring Boot with spring.threads.virtual.enabled: 17 of 90 calls at 2 to 4 concurrent
 * requests). Which virtual thread is mounted lives in the JVM's heap (JavaThread::_vthread, an oop
 * that moves with GC), not in anything a syscall tracepoint sees. So a client call on such a
 * thread is never linked by its thread; counted when the thread had a request active. */
#ifndef SPANBRIDGE_SYS_HTTP_JAVA_H
#define SPANBRIDGE_SYS_HTTP_JAVA_H

/* The JVM names each Java thread's OS thread after it (15 bytes of it): "ForkJoinPool-1-" or
 * "ForkJoinPool.co" for the workers above. */
static __always_inline bool java_pooled_thread(void)
{
	char comm[16] = {};
	const char fjp[] = "ForkJoinPool";
	if (bpf_get_current_comm(comm, sizeof(comm)))
		return false;
#pragma unroll
	for (int i = 0; i < 12; i++)
		if (comm[i] != fjp[i])
			return false;
	return comm[12] == '-' || comm[12] == '.';
}

/* The JDK's HttpClient (java.net.http) writes a request from its own threads ("HttpClient-N-Worker-M",
 * "HttpClient-N-SelectorManager"), handed over through its executor and selector: thread-pool
 * queues and futex wakes that say nothing about which request each task carries. One thing is
 * exact: HttpClient.send() on Java 17 connects a new connection on the caller's thread, inside that
 * call, for that call's exchange, and an HTTP/1.1 connection serves the exchange that opened it
 * before any other (it is pooled only after that exchange ends; the client never opens connections
 * ahead of use). So the first request written on a connection whose connect() was made by a thread
 * with exactly one server request active belongs to that request, as long as the request is still
 * active there (the caller is blocked in send() until the response). Only writes by the client's
 * own threads take it: any other program may hand connections around before their first request. */
struct java_connect_owner {
	__u64 conn_id;  /* the connection it was recorded for (an fd reused since never matches) */
	__u64 owner;    /* pid_tgid of the thread that connected it */
	__u8 span_id[8]; /* the server span active on that thread then */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct conn_key);
	__type(value, struct java_connect_owner);
} java_connect_owners SEC(".maps");

/* The thread's request is a link candidate: exactly one active, not ambiguous, not too old. */
static __always_inline bool thread_ctx_linkable(struct thread_ctx *tc, __u64 now)
{
	return tc && tc->active == 1 && !tc->ambiguous && now - tc->ts_ns <= thread_ctx_max_age_ns;
}

/* sys_exit_connect, a client connection just tracked: who opened it, if that thread has one server
 * request active (and is no pooled worker); otherwise nothing is kept for the fd. */
static __always_inline void java_connect_record(__u32 fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key key = { .tgid = id >> 32, .fd = fd };
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &key);
	struct thread_ctx *tc = cs && (traced_mode() & SYS_MODE_THREAD_LINK) ? bpf_map_lookup_elem(&thread_ctxs, &id) : NULL;
	if (!cs || !thread_ctx_linkable(tc, bpf_ktime_get_ns()) || java_pooled_thread()) {
		bpf_map_delete_elem(&java_connect_owners, &key);
		return;
	}
	struct java_connect_owner o = { .conn_id = cs->conn_id, .owner = id };
	__builtin_memcpy(o.span_id, tc->ctx.span_id, 8);
	bpf_map_update_elem(&java_connect_owners, &key, &o, BPF_ANY);
}

/* The writing thread is one of the JDK HttpClient's own ("HttpClient-..."). */
static __always_inline bool jdk_http_client_thread(void)
{
	char comm[16] = {};
	const char hc[] = "HttpClient-";
	if (bpf_get_current_comm(comm, sizeof(comm)))
		return false;
#pragma unroll
	for (int i = 0; i < 11; i++)
		if (comm[i] != hc[i])
			return false;
	return true;
}

/* A request start on connection `cs` (fd `fd`) written by thread `id`: the server request state
 * to link it to, or NULL. The thread's own when it has one (never on a pooled Java worker: its
 * state may be another task's request); else, for the connection's first request written by a JDK
 * HttpClient thread, the request of the thread that connected it, if still active there. */
static __always_inline struct thread_ctx *thread_link_ctx(__u64 id, __u32 fd, struct conn_state *cs)
{
	struct conn_key key = { .tgid = id >> 32, .fd = fd };
	struct java_connect_owner *o = bpf_map_lookup_elem(&java_connect_owners, &key);
	struct thread_ctx *tc = bpf_map_lookup_elem(&thread_ctxs, &id);
	struct thread_ctx *res = tc;
	if (tc && java_pooled_thread()) {
		count(SYS_SKIP_THREAD_POOLED);
		res = NULL;
	} else if (!tc && o && o->conn_id == cs->conn_id && o->owner != id && jdk_http_client_thread()) {
		__u64 owner_id = o->owner;
		struct thread_ctx *owner = bpf_map_lookup_elem(&thread_ctxs, &owner_id);
		if (thread_ctx_linkable(owner, bpf_ktime_get_ns()) && ids_equal(owner->ctx.span_id, o->span_id, 8)) {
			count(SYS_LINK_JAVA_CONNECT);
			res = owner;
		} else {
			count(SYS_SKIP_JAVA_CONNECT_GONE);
		}
	}
	if (o) /* the connection's first request start, linked or not: the record is used up */
		bpf_map_delete_elem(&java_connect_owners, &key);
	return res;
}

#endif
