/*
 * Connections open before a process was selected (warm keep-alive pools, a running server's
 * accepted connections). accept/connect were not seen, so the agent lists them from /proc at
 * attach (fd, socket inode, role) into adopt_conns; the first data syscall on such an fd creates
 * its state here, reading the tuple from the socket as accept/connect do, only when the fd still
 * holds that socket. From then on the connection is like any other: spans, black-box links and
 * the sk_msg hand-over.
 *
 * Included by sys_http.bpf.c after the connection state (conns, track_connection).
 */
#ifndef SPANBRIDGE_SYS_HTTP_ADOPT_H
#define SPANBRIDGE_SYS_HTTP_ADOPT_H

/* Messages a taken-over connection may carry before its first request or response line (it may
 * be taken over in the middle of a body) without being declared "not HTTP". */
#define ADOPT_BUDGET 16

struct adopt_conn {
	__u64 inode; /* the socket's inode, as /proc/<pid>/fd/<fd> names it: socket:[inode] */
	__u8 role;   /* enum sys_http_role */
	__u8 _pad[7];
};

/* Written by the agent at attach; an entry goes when used, at close, exec and exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct conn_key);
	__type(value, struct adopt_conn);
} adopt_conns SEC(".maps");

static __always_inline __u64 sock_inode_of_fd(__u32 fd)
{
	struct file *f = file_of_fd(fd);
	if (!f)
		return 0;
	return BPF_CORE_READ(f, f_inode, i_ino);
}

/* The state of a registered open connection, created at its first data syscall; NULL if none. */
static __always_inline struct conn_state *adopt_connection(struct conn_key *key)
{
	struct adopt_conn *ac = bpf_map_lookup_elem(&adopt_conns, key);
	if (!ac)
		return NULL;
	__u64 inode = ac->inode;
	__u8 role = ac->role;
	bpf_map_delete_elem(&adopt_conns, key);
	if (!inode || sock_inode_of_fd(key->fd) != inode) {
		count(SYS_SKIP_ADOPT_MISMATCH);
		return NULL;
	}
	track_connection(key->fd, role);
	struct conn_state *cs = bpf_map_lookup_elem(&conns, key);
	if (!cs)
		return NULL;
	cs->adopt_budget = ADOPT_BUDGET;
	count(SYS_CONN_ADOPTED);
	return cs;
}

/* An idle connection's message that starts no request/response: not HTTP, unless the connection
 * was taken over (possibly mid-message) and its budget lasts. */
static __always_inline void idle_not_http(struct conn_state *cs)
{
	if (cs->adopt_budget) {
		cs->adopt_budget -= 1;
		return;
	}
	cs->phase = PHASE_NOT_HTTP;
	count(SYS_SKIP_NOT_HTTP);
}

#endif
