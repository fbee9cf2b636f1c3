/* Process lifecycle records (RECORD_PROC_EXEC / RECORD_PROC_EXIT) from sched tracepoints, so the
 * agent follows processes that start and exit without polling /proc. */
#ifndef SPANBRIDGE_PROC_EVENT_H
#define SPANBRIDGE_PROC_EVENT_H

struct proc_lifecycle_event {
	__u8 type;
	__u8 _pad0[3];
	__u32 pid;  /* host tgid */
	__u32 ppid; /* host tgid of the parent */
	__u32 _pad1;
	__u64 ts_ns;
	char comm[16];
};

#endif
