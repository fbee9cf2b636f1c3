/* bpf/sys_http.bpf.c, Java: OS threads that say nothing about which server request a client call
 * serves (docs/java-async-linking.md). Included by sys_http.bpf.c before its client-write program.
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

/* The server request state of thread `id` for linking a client call, or NULL: none, or the thread
 * is a pooled Java worker (its state may be another task's request). */
static __always_inline struct thread_ctx *thread_link_ctx(__u64 id)
{
	struct thread_ctx *tc = bpf_map_lookup_elem(&thread_ctxs, &id);
	if (tc && java_pooled_thread()) {
		count(SYS_SKIP_THREAD_POOLED);
		return NULL;
	}
	return tc;
}

#endif
