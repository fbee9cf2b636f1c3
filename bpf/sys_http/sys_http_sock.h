/* bpf/sys_http/sys_http.bpf.c: the socket behind a file descriptor, its TCP tuple, and the connection state
 * created at accept/connect. Included by sys_http.bpf.c after its maps and helpers. */
#ifndef SPANBRIDGE_SYS_HTTP_SOCK_H
#define SPANBRIDGE_SYS_HTTP_SOCK_H

/* ---- socket from fd, tuple from struct sock ---------------------------------------------- */

/* The current process's open socket file at fd, or NULL. */
static __always_inline struct file *file_of_fd(__u32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return NULL;
	if (fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return NULL;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	return f;
}

static __always_inline struct sock *sock_of_fd(__u32 fd)
{
	struct file *f = file_of_fd(fd);
	if (!f)
		return NULL;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

static __always_inline void v4_mapped(__u8 out[16], __be32 a)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &a, 4);
}

/* Fills local/remote address and ports; returns the family or 0 when not a TCP socket. */
static __always_inline int read_tuple(struct sock *sk, __u8 local[16], __u8 remote[16], __u16 *lport,
				      __u16 *rport)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);
	__u16 type = BPF_CORE_READ(sk, sk_type);
	if (proto != IPPROTO_TCP || type != SOCK_STREAM)
		return 0;
	if (family == AF_INET) {
		v4_mapped(local, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		v4_mapped(remote, BPF_CORE_READ(sk, __sk_common.skc_daddr));
	} else if (family == AF_INET6) {
		/* (BPF_CORE_READ_INTO would copy sizeof(*local) = 1 byte here.) */
		bpf_core_read(local, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(remote, 16, &sk->__sk_common.skc_v6_daddr);
	} else {
		return 0;
	}
	*lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	*rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return family;
}

static __always_inline void conn_count_add(__s64 d)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&conn_count, &zero);
	if (n)
		__sync_fetch_and_add(n, d);
}

static __always_inline void track_connection(__u32 fd, __u8 role)
{
	struct sock *sk = sock_of_fd(fd);
	if (!sk)
		return;
	struct conn_state st = {};
	__u8 local[16], remote[16];
	__u16 lport = 0, rport = 0;
	int family = read_tuple(sk, local, remote, &lport, &rport);
	if (!family)
		return;
	st.family = family;
	st.role = role;
	st.conn_id = ((__u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32();
	if (role == SYS_ROLE_SERVER) {
		__builtin_memcpy(st.tuple.client_addr, remote, 16);
		__builtin_memcpy(st.tuple.server_addr, local, 16);
		st.tuple.client_port = rport;
		st.tuple.server_port = lport;
	} else {
		__builtin_memcpy(st.tuple.client_addr, local, 16);
		__builtin_memcpy(st.tuple.server_addr, remote, 16);
		st.tuple.client_port = lport;
		st.tuple.server_port = rport;
	}
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	/* fd reuse after a close we did not see: replace, the count is unchanged. */
	if (!bpf_map_update_elem(&conns, &key, &st, BPF_EXIST))
		return;
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&conn_count, &zero);
	if (n && *n >= max_connections) {
		count(SYS_DROP_CONN_STATE_FULL);
		return;
	}
	if (bpf_map_update_elem(&conns, &key, &st, BPF_NOEXIST)) {
		count(SYS_DROP_CONN_STATE_FULL);
		return;
	}
	conn_count_add(1);
}

#endif
