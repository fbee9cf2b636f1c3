/* Python asyncio: which server request a client write belongs to when one event-loop thread
 * serves many requests. Read-only: uprobes in the unmodified CPython (3.10 .. 3.13) and
 * reads of its objects at offsets the agent gives per version (struct py_asyncio_proc).
 *
 *   Context.run (libpython `context_run`), entry: the event loop runs every callback through it
 *     (Handle._run), so each entry starts a new callback on this thread ("epoch"); when the
 *     callable is a task's step or wakeup, that task is current until the next callback.
 *   Task.__init__ (`_asyncio_Task___init__`), entry: a task created inside a task belongs to the
 *     creator's request; a task created by a plain callback in which a server request head was
 *     decided (uvicorn creates the request's task in data_received, right after the recv)
 *     belongs to that request; any other task belongs to none.
 *   Future.set_result (`_asyncio_Future_set_result`), entry: in a plain callback in which a
 *     server request head was decided, a future whose first callback wakes a task hands that
 *     request to the task (aiohttp: data_received wakes the connection's handler task, created
 *     at connection_made before any request). Only tasks bound this way (or not at all) are
 *     rebound: a task bound to a request keeps it, so calls made after the response keep their
 *     parent. A binding made by a wakeup holds only while its request is in flight on its
 *     connection, and is handed to one task the woken task creates (a request that arrived while
 *     it was busy must not inherit the previous one).
 *   3.12+: Task.__init__ runs an eager task's first step itself; entry and return (uretprobe)
 *     make the new task current meanwhile.
 *   uvloop (attached only where uvloop's loop module is mapped): its handles and protocol
 *     callbacks enter their context through the C API, PyContext_Enter/PyContext_Exit, and call
 *     the callable themselves (never Context.run). Only the exit is probed: it ends a callback,
 *     and what runs until the next exit (libuv's I/O, such as the read of a request head, then
 *     the one callback that delivers it) is one "epoch" with no task current; the task is learned
 *     where its step or wakeup is called (TaskStepMethWrapper_call, task_wakeup) and stays current
 *     until the exit of its own context (task_context): an exit of another context meanwhile is a
 *     callback nested in the step (uvloop calls pause_writing from transport.write). A head is
 *     used only while its request is still in flight.
 *   A connection's task (aiohttp's RequestHandler.start, asyncio.start_server's handler) serves one
 *     connection for its life and takes its requests in order, one at a time; it is known by the
 *     wakeup above, or (uvloop) by libuv's uv_read_start on a fresh server connection in the very
 *     callback that created it as its only task (uvloop's _call_connection_made: the protocol's
 *     connection_made, then _start_reading). Each task it creates takes the request in flight on
 *     that connection that it has not handed out yet (the bytes may have been read before the task
 *     waited for them, so no wakeup tells); a second task for the same request takes none.
 *
 * The client write (sys_client_write_enter) takes the parent of the task current on its thread.
 * Included by sys_http.bpf.c after its maps and count(). */
#ifndef SPANBRIDGE_SYS_HTTP_ASYNCIO_H
#define SPANBRIDGE_SYS_HTTP_ASYNCIO_H

/* Per traced asyncio process (tgid), written by the agent: runtime addresses and field offsets. */
#define PY_TYPE_NAME_MAX 32

struct py_asyncio_proc {
	__u32 task_context;   /* TaskObj.task_context (uvloop: the context its steps run in) */
	__u32 _pad;
	/* The type of a task's step callable (TaskStepMethWrapper): given for a static type (<= 3.11);
	 * a heap type (3.12+) is learned here, at the first callable whose tp_name reads step_name. */
	__u64 step_type;
	__u64 wakeup_def;     /* &TaskWakeupDef: m_ml of a task's wakeup callback */
	__u64 cfunction_type; /* &PyCFunction_Type */
	__u32 sw_task;        /* TaskStepMethWrapper.sw_task */
	__u32 fut_callback0;  /* FutureObj.fut_callback0 */
	__u32 m_ml;           /* PyCFunctionObject.m_ml */
	__u32 m_self;         /* PyCFunctionObject.m_self */
	__u32 tp_name;        /* PyTypeObject.tp_name */
	__u32 step_name_len;  /* bytes of step_name, without its NUL (< PY_TYPE_NAME_MAX) */
	char step_name[PY_TYPE_NAME_MAX]; /* the step type's tp_name text */
};

#define PY_INIT_DEPTH 8

struct py_thread {
	__u64 epoch;      /* callbacks this thread has run (Context.run entries) */
	__u64 task;       /* the task the current callback steps; 0 in any other callback */
	__u64 task_ctx;   /* uvloop: that task's context (task_context, read where its step began) */
	__u64 head_epoch; /* the callback in which the last server request head was decided */
	__u64 steps;      /* task steps seen: 0 on threads that only use Context.run (thread pools) */
	struct trace_context head; /* that request's server span */
	__u64 head_conn;  /* its connection (conn_id) ... */
	__u32 head_fd;    /* ... and fd */
	__u16 _pad0;
	__u16 enter_loop; /* uvloop: this thread runs its callbacks through PyContext_Enter/Exit */
	/* 3.12+: Task.__init__ runs an eager task's first step itself (no Context.run): the task is
	 * current until __init__ returns, then the one before it again (nested inits: a stack). */
	__u64 saved[PY_INIT_DEPTH];
	__u32 depth;
	__u32 _pad;
	/* uvloop: the task created in plain callback epoch `new_epoch` (the last of `new_tasks` there),
	 * for uv_read_start in the same callback */
	__u64 new_task;
	__u64 new_epoch;
	__u32 new_tasks;
	__u32 _pad2;
};

struct py_task_key {
	__u32 tgid;
	__u32 _pad;
	__u64 task;
};

struct py_task {
	struct trace_context ctx; /* the server span its client calls are children of (conn_task: the
				   * request it was last woken for, if any) */
	__u16 conn_task;          /* a connection's task: serves the connection (fd, conn) */
	__u16 _pad;
	__u32 fd;
	__u64 conn;
	__u8 handed[8];           /* conn_task: the span id of the last request a task it created took */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct py_asyncio_proc);
} py_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct py_thread);
} py_threads SEC(".maps");

/* LRU: a task forgotten is a task without a request (its calls unlinked), never a wrong one;
 * a new task at a freed task's address passes Task.__init__ first, which rewrites its entry. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct py_task_key);
	__type(value, struct py_task);
} py_tasks SEC(".maps");

const struct py_asyncio_proc *_unused_py_asyncio_proc __attribute__((unused));

static __always_inline __u64 py_read_ptr(__u64 addr)
{
	__u64 v = 0;
	if (!addr || bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

/* Whether type's tp_name reads p->step_name (NUL included). */
static __always_inline bool py_is_step_type(const struct py_asyncio_proc *p, __u64 type)
{
	char name[PY_TYPE_NAME_MAX];
	__u64 at = py_read_ptr(type + p->tp_name);
	if (!at || bpf_probe_read_user(name, sizeof(name), (void *)at))
		return false;
	__u32 n = p->step_name_len;
	bool same = n > 0 && n < PY_TYPE_NAME_MAX;
#pragma unroll
	for (int i = 0; i < PY_TYPE_NAME_MAX; i++)
		if (i <= n && name[i] != p->step_name[i]) /* step_name is NUL-padded */
			same = false;
	return same;
}

/* The task a callable wakes or steps (a task's wakeup method or its TaskStepMethWrapper), or 0. */
static __always_inline __u64 py_task_of_callable(struct py_asyncio_proc *p, __u64 fn)
{
	__u64 type = py_read_ptr(fn + 8); /* ob_type */
	if (!type)
		return 0;
	if (type == p->cfunction_type)
		return py_read_ptr(fn + p->m_ml) == p->wakeup_def ? py_read_ptr(fn + p->m_self) : 0;
	if (type == p->step_type)
		return py_read_ptr(fn + p->sw_task);
	if (!p->step_type && py_is_step_type(p, type)) {
		p->step_type = type; /* the module's heap type: compared by address from now on */
		return py_read_ptr(fn + p->sw_task);
	}
	return 0;
}

/* context_run(PyContext *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) */
SEC("uprobe")
int py_context_run(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct py_asyncio_proc *p = bpf_map_lookup_elem(&py_procs, &tgid);
	if (!p)
		return 0;
	__u64 args = PT_REGS_PARM2(ctx);
	__u64 nargs = PT_REGS_PARM3(ctx) & ~(1ULL << 63); /* PY_VECTORCALL_ARGUMENTS_OFFSET */
	__u64 task = nargs >= 1 ? py_task_of_callable(p, py_read_ptr(args)) : 0;
	struct py_thread *t = bpf_map_lookup_elem(&py_threads, &id);
	if (!t) {
		struct py_thread n = { .epoch = 1, .task = task, .steps = task ? 1 : 0 };
		bpf_map_update_elem(&py_threads, &id, &n, BPF_ANY);
		return 0;
	}
	t->epoch += 1;
	t->task = task;
	t->task_ctx = 0;
	t->depth = 0;
	if (task)
		t->steps += 1;
	return 0;
}

/* uvloop: PyContext_Exit(PyObject *ctx). The exit of the current task's own context ends its step;
 * any other exit ends a plain callback (or one nested in a step: the step goes on, its task stays
 * current). Inside Task.__init__ (3.12+: the eager first step exits the new task's context) the
 * return restores the task. Attached before the step probes, so a task made current is never
 * left current by an exit gone unseen. */
SEC("uprobe")
int py_context_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct py_thread *t = bpf_map_lookup_elem(&py_threads, &id);
	if (!t) {
		struct py_thread n = { .epoch = 1, .enter_loop = 1 };
		bpf_map_update_elem(&py_threads, &id, &n, BPF_ANY);
		return 0;
	}
	t->enter_loop = 1;
	if (t->depth)
		return 0;
	/* A callback nested in the step: the step's context is alive (its handle holds it), so no
	 * other context has its address. Compared with the value read where the step began, not
	 * read now: the task may be freed by the time its step's context is exited. */
	if (t->task && t->task_ctx && t->task_ctx != PT_REGS_PARM1(ctx))
		return 0;
	t->epoch += 1;
	t->task = 0;
	t->task_ctx = 0;
	return 0;
}

/* uvloop: a task's step or wakeup begins (its handle entered the task's context). */
static __always_inline void py_step(__u64 id, const struct py_asyncio_proc *p, __u64 task)
{
	struct py_thread *t = bpf_map_lookup_elem(&py_threads, &id);
	if (!t || !task)
		return;
	t->task = task;
	t->task_ctx = py_read_ptr(task + p->task_context); /* 0 (unread): its step ends at the next exit */
	t->steps += 1;
}

/* uvloop: task_wakeup(TaskObj *task, PyObject *fut), a task's wakeup method, called by its handle. */
SEC("uprobe")
int py_task_wakeup(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct py_asyncio_proc *p = bpf_map_lookup_elem(&py_procs, &tgid);
	if (p)
		py_step(id, p, PT_REGS_PARM1(ctx));
	return 0;
}

/* uvloop: TaskStepMethWrapper_call(TaskStepMethWrapper *o, PyObject *args, PyObject *kwds). */
SEC("uprobe")
int py_task_step_call(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct py_asyncio_proc *p = bpf_map_lookup_elem(&py_procs, &tgid);
	if (p)
		py_step(id, p, py_read_ptr(PT_REGS_PARM1(ctx) + p->sw_task));
	return 0;
}

static __always_inline bool py_span_zero(const __u8 *id)
{
	__u64 v;
	__builtin_memcpy(&v, id, 8);
	return v == 0;
}

/* A binding made by a wakeup holds only while its request is the one in flight on its connection
 * (not answered, no later request read): a connection's task that goes on to the next request
 * without being woken for it (the bytes were already buffered) must not pass the previous one on. */
static __always_inline bool py_in_flight(__u32 tgid, __u32 fd, __u64 conn, const __u8 *span_id)
{
	struct conn_key ck = { .tgid = tgid, .fd = fd };
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &ck);
	return cs && cs->conn_id == conn && cs->role == SYS_ROLE_SERVER && cs->phase == PHASE_REQUEST &&
	       !py_span_zero(cs->ctx.span_id) && ids_equal(cs->ctx.span_id, span_id, 8);
}

/* A connection's task's own calls: the request it was woken for, while that is in flight and no
 * task it created took it. */
static __always_inline bool py_binding_holds(__u32 tgid, const struct py_task *pt)
{
	return !pt->conn_task ||
	       (!ids_equal(pt->handed, pt->ctx.span_id, 8) && py_in_flight(tgid, pt->fd, pt->conn, pt->ctx.span_id));
}

/* A task created by connection task `parent`: the request in flight on its connection (read, head
 * decided, not answered, nothing pipelined behind it), unless a task it created took that one
 * already. The connection's requests are served in order, one at a time, so the one in flight
 * that it has not handed out is the one it is starting now. */
static __always_inline bool py_conn_request(__u32 tgid, struct py_task *parent, struct trace_context *out)
{
	struct conn_key ck = { .tgid = tgid, .fd = parent->fd };
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &ck);
	if (!cs || cs->conn_id != parent->conn || cs->role != SYS_ROLE_SERVER || cs->phase != PHASE_REQUEST ||
	    cs->head_open || cs->pipelined || py_span_zero(cs->ctx.span_id) || ids_equal(cs->ctx.span_id, parent->handed, 8))
		return false;
	*out = cs->ctx;
	__builtin_memcpy(parent->handed, cs->ctx.span_id, 8);
	return true;
}

/* The thread's last request head belongs to its current callback. uvloop: a head is read before
 * the callback that delivers it; it is used only while its request is still the one in flight on
 * its connection (a head whose delivery did not follow must not reach an unrelated callback). */
static __always_inline bool py_head_here(__u32 tgid, const struct py_thread *t)
{
	return t->head_epoch == t->epoch && (!t->enter_loop || py_in_flight(tgid, t->head_fd, t->head_conn, t->head.span_id));
}

/* _asyncio_Task___init__(TaskObj *self, PyObject *args, PyObject *kwargs) */
static __always_inline void py_task_bind(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct py_task_key k = { .tgid = id >> 32, ._pad = 0, .task = PT_REGS_PARM1(ctx) };
	struct py_thread *t = bpf_map_lookup_elem(&py_threads, &id);
	if (t && t->task) {
		struct py_task_key pk = { .tgid = k.tgid, ._pad = 0, .task = t->task };
		struct py_task *parent = bpf_map_lookup_elem(&py_tasks, &pk);
		struct py_task n = {};
		/* A connection's task hands each request to one task it creates; a task of a request
		 * passes its request on to every task it creates. */
		if (parent && (parent->conn_task ? py_conn_request(k.tgid, parent, &n.ctx) : (n.ctx = parent->ctx, true))) {
			bpf_map_update_elem(&py_tasks, &k, &n, BPF_ANY);
			count(SYS_ASYNCIO_TASK_INHERITED);
			return;
		}
	} else if (t) {
		if (t->enter_loop) {
			/* uvloop: a task created by a plain callback, for uv_read_start in the same one */
			t->new_tasks = t->new_epoch == t->epoch ? t->new_tasks + 1 : 1;
			t->new_epoch = t->epoch;
			t->new_task = k.task;
		}
		if (py_head_here(k.tgid, t)) {
			struct py_task n = { .ctx = t->head };
			bpf_map_update_elem(&py_tasks, &k, &n, BPF_ANY);
			count(SYS_ASYNCIO_TASK_FROM_HEAD);
			return;
		}
	}
	bpf_map_delete_elem(&py_tasks, &k);
	return;
}

SEC("uprobe")
int py_task_init(struct pt_regs *ctx)
{
	py_task_bind(ctx);
	return 0;
}

/* 3.12+ only (eager tasks): the entry makes the new task current for the rest of __init__, where
 * its first step may run; the return restores the task that was current before. */
SEC("uprobe")
int py_task_init_eager(struct pt_regs *ctx)
{
	py_task_bind(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	struct py_thread *t = bpf_map_lookup_elem(&py_threads, &id);
	if (!t)
		return 0;
	__u32 d = t->depth;
	if (d < PY_INIT_DEPTH)
		t->saved[d & (PY_INIT_DEPTH - 1)] = t->task;
	t->depth = d + 1;
	t->task = PT_REGS_PARM1(ctx);
	return 0;
}

SEC("uretprobe")
int py_task_init_return(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct py_thread *t = bpf_map_lookup_elem(&py_threads, &id);
	if (!t || !t->depth)
		return 0;
	__u32 d = t->depth - 1;
	t->depth = d;
	/* deeper than the stack: the task is unknown until the next callback */
	t->task = d < PY_INIT_DEPTH ? t->saved[d & (PY_INIT_DEPTH - 1)] : 0;
	return 0;
}

/* _asyncio_Future_set_result(FutureObj *self, ...) */
SEC("uprobe")
int py_future_set_result(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct py_thread *t = bpf_map_lookup_elem(&py_threads, &id);
	if (!t || t->task || !py_head_here(tgid, t))
		return 0;
	struct py_asyncio_proc *p = bpf_map_lookup_elem(&py_procs, &tgid);
	if (!p)
		return 0;
	__u64 task = py_task_of_callable(p, py_read_ptr(PT_REGS_PARM1(ctx) + p->fut_callback0));
	if (!task)
		return 0;
	struct py_task_key k = { .tgid = tgid, ._pad = 0, .task = task };
	struct py_task *cur = bpf_map_lookup_elem(&py_tasks, &k);
	if (cur && !cur->conn_task)
		return 0;
	struct py_task n = { .ctx = t->head, .conn_task = 1, .fd = t->head_fd, .conn = t->head_conn };
	/* the same connection: what its tasks took so far still counts */
	if (cur && cur->conn == n.conn && cur->fd == n.fd)
		__builtin_memcpy(n.handed, cur->handed, 8);
	bpf_map_update_elem(&py_tasks, &k, &n, BPF_ANY);
	count(SYS_ASYNCIO_TASK_WOKEN);
	return 0;
}

/* libuv's uv_stream_t (uvloop 0.23.0's bundled libuv 1.x, x86_64; DWARF of its loop module):
 * `type` and io_watcher.fd. */
#define UV_HANDLE_TYPE_OFF 16
#define UV_STREAM_FD_OFF 184
#define UV_TCP_TYPE 12

/* uvloop: uv_read_start(uv_stream_t *stream, ...), libuv's, in uvloop's loop module. uvloop's
 * _call_connection_made runs the protocol's connection_made, then starts reading its transport,
 * in one callback: a fresh server connection (nothing read on it yet) whose reading starts in the
 * plain callback that created exactly one task has that task as its connection's task (aiohttp's
 * RequestHandler.start). It can then take requests that were read before it first waited. */
SEC("uprobe")
int py_uv_read_start(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct py_thread *t = bpf_map_lookup_elem(&py_threads, &id);
	if (!t || !t->enter_loop || t->task || t->depth || t->new_epoch != t->epoch || t->new_tasks != 1)
		return 0;
	t->new_tasks = 0; /* one connection per such callback */
	__u64 stream = PT_REGS_PARM1(ctx);
	__u32 type = 0;
	__s32 fd = -1;
	if (bpf_probe_read_user(&type, sizeof(type), (void *)(stream + UV_HANDLE_TYPE_OFF)) || type != UV_TCP_TYPE ||
	    bpf_probe_read_user(&fd, sizeof(fd), (void *)(stream + UV_STREAM_FD_OFF)) || fd < 0)
		return 0;
	__u32 tgid = id >> 32;
	struct conn_key ck = { .tgid = tgid, .fd = fd };
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &ck);
	if (!cs || cs->role != SYS_ROLE_SERVER || cs->phase != PHASE_IDLE)
		return 0;
	struct py_task_key k = { .tgid = tgid, ._pad = 0, .task = t->new_task };
	struct py_task *cur = bpf_map_lookup_elem(&py_tasks, &k);
	if (cur)
		return 0; /* it has a request of its own already */
	struct py_task n = { .conn_task = 1, .fd = fd, .conn = cs->conn_id };
	bpf_map_update_elem(&py_tasks, &k, &n, BPF_ANY);
	return 0;
}

/* The server side (decide_server_context): a request head decided on this thread, in its current
 * callback. (Requests pipelined behind it are decided by no head here: frameworks take them in
 * later callbacks, where they find no head of their own and stay unlinked.) */
static __always_inline void asyncio_head_decided(__u64 id, const struct conn_state *cs, __u32 fd)
{
	struct py_thread *t = bpf_map_lookup_elem(&py_threads, &id);
	if (!t)
		return;
	t->head = cs->ctx;
	t->head_conn = cs->conn_id;
	t->head_fd = fd;
	/* uvloop: libuv reads it between callbacks, in the epoch of the callback that delivers it */
	t->head_epoch = t->epoch;
}

enum py_parent {
	PY_PARENT_NONE = -1,   /* not an event-loop thread: the thread rules apply */
	PY_PARENT_UNKNOWN = 0, /* an event-loop thread, no request known for the current task */
	PY_PARENT_FOUND = 1,
};

/* The client write: the server span of the request the current task belongs to. */
static __always_inline int asyncio_parent(__u64 id, struct trace_context *out)
{
	struct py_thread *t = bpf_map_lookup_elem(&py_threads, &id);
	if (!t || !t->steps)
		return PY_PARENT_NONE;
	struct py_task *pt = NULL;
	if (t->task) {
		struct py_task_key k = { .tgid = id >> 32, ._pad = 0, .task = t->task };
		pt = bpf_map_lookup_elem(&py_tasks, &k);
	}
	if (!pt || !py_binding_holds(id >> 32, pt)) {
		count(SYS_SKIP_ASYNCIO_NO_TASK);
		return PY_PARENT_UNKNOWN;
	}
	*out = pt->ctx;
	count(SYS_LINK_ASYNCIO);
	return PY_PARENT_FOUND;
}

#endif
