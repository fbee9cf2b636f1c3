/**
 * Socket-level traceparent injection (bpf/sk_inject.bpf.o): a sock_ops program on the cgroup v2
 * root registers outgoing TCP connections of the processes added here in a SOCKHASH, and an
 * sk_msg program on that SOCKHASH inserts the header decided by another tracer (bpf/common/sk_inject.h)
 * after the request line. Works where bpf_probe_write_user is forbidden (kernel lockdown).
 * Knows nothing of spans: it loads, attaches, selects processes and reads counters.
 */
import { openConnections, procSockets, type ProcSockets } from '../discovery/process-sockets';
import { SpanbridgeError } from '../errors';
import { SK_INJECT_OBJECT, SK_INJECT_OUTCOME } from '../events/structs.generated';
import { readCounterMap } from './kernel-counters';
import { openTracerObject, pidKey } from './open-object';
import type { Tracer } from './tracer';
import type { BpfBackend, BpfLink, BpfObject } from '../bpf/types';

export const SK_INJECT_SOCKOPS_PROGRAM = SK_INJECT_OBJECT.programs.sk_inject_sockops;
export const SK_INJECT_MSG_PROGRAM = SK_INJECT_OBJECT.programs.sk_inject_msg;
export const SK_INJECT_SOCKHASH = SK_INJECT_OBJECT.maps.sk_inject_socks;
export const SK_INJECT_FORK_PROGRAM = SK_INJECT_OBJECT.programs.sk_inject_process_fork;

export interface SkInjectSettings {
  /** A context left for a thread longer ago than this is not inserted (default 200 ms). */
  readonly pendingMaxAgeMs?: number;
}

export type { ProcSockets } from '../discovery/process-sockets';

/**
 * The fds of `pid` that are established TCP connections this process opened (its local port is
 * not one it listens on): the connections sock_ops did not see because they predate the agent.
 */
export function outgoingConnections(pid: number, proc: ProcSockets = procSockets): number[] {
  return openConnections(pid, proc)
    .filter((c) => c.role === 'client')
    .map((c) => c.fd);
}

export class SkInjectTracer implements Tracer<[cgroupPath: string]> {
  readonly name = 'sk_inject';
  private obj: BpfObject | undefined;
  private readonly links: BpfLink[] = [];
  private readonly pids = new Set<number>();
  private cgroup = '';

  constructor(
    private readonly backend: BpfBackend,
    private readonly objectPath: string,
    private readonly settings: SkInjectSettings = {},
  ) {}

  /** Loads the object, attaches sock_ops to the cgroup v2 directory and sk_msg to the SOCKHASH. */
  async start(cgroupPath: string): Promise<void> {
    if (this.obj) throw new SpanbridgeError('ERR_BPF_LOAD', 'sk_inject tracer already started');
    const opened = await openTracerObject(
      this.backend,
      this.objectPath,
      { rodata: { pending_max_age_ns: BigInt(this.settings.pendingMaxAgeMs ?? 200) * 1_000_000n } },
      (obj, links) => {
        // sk_msg first: a socket must never enter the SOCKHASH before its program is there.
        links.push(obj.program(SK_INJECT_MSG_PROGRAM).attachSkMsg(SK_INJECT_SOCKHASH));
        links.push(obj.program(SK_INJECT_SOCKOPS_PROGRAM).attachCgroup(cgroupPath));
        // The selection follows forks (a pre-fork server's new worker) and ends at exec and exit,
        // in the kernel, like the syscall tracer's (bpf/sys_http/sys_http_lifecycle.h).
        links.push(obj.program(SK_INJECT_FORK_PROGRAM).attachRawTracepoint('sched_process_fork'));
        links.push(obj.program(SK_INJECT_OBJECT.programs.sk_inject_process_exec).attachTracepoint('sched', 'sched_process_exec'));
        links.push(obj.program(SK_INJECT_OBJECT.programs.sk_inject_process_exit).attachTracepoint('sched', 'sched_process_exit'));
      },
    );
    this.links.push(...opened.links);
    this.cgroup = cgroupPath;
    this.obj = opened.obj;
  }

  get started(): boolean {
    return this.obj !== undefined;
  }

  get cgroupPath(): string {
    return this.cgroup;
  }

  /** What is attached, for the start-up report. */
  get linkDescriptions(): string[] {
    return this.links.map((l) => l.description);
  }

  /** Connections this process opens from now on are injected into (when a tracer asks). */
  attach(pid: number): void {
    const obj = this.requireObject();
    const v = Buffer.alloc(1, 1);
    obj.map(SK_INJECT_OBJECT.maps.sk_inject_tgids).update(pidKey(pid), v);
    this.pids.add(pid);
  }

  /**
   * A child the kernel selected at its fork: followed without writing its entry (gone if the
   * child exec'd or exited since; then false).
   */
  adoptInherited(pid: number): boolean {
    if (!this.requireObject().map(SK_INJECT_OBJECT.maps.sk_inject_tgids).lookup(pidKey(pid))) return false;
    this.pids.add(pid);
    return true;
  }

  /**
   * Registers the process's outgoing connections that already exist (opened before it was
   * selected, e.g. a Go keep-alive pool): their next requests are injected too. Best effort:
   * returns how many were registered and how many could not be.
   */
  registerExisting(pid: number, proc: ProcSockets = procSockets): { registered: number; failed: number } {
    const map = this.requireObject().map(SK_INJECT_SOCKHASH);
    let registered = 0;
    let failed = 0;
    let fds: number[] = [];
    try {
      fds = outgoingConnections(pid, proc);
    } catch {
      return { registered: 0, failed: 0 }; // the process is gone
    }
    for (const fd of fds) {
      try {
        // Nagle off, as sock_ops does for new connections (bpf/sk_inject/sk_inject.bpf.c): an inserted
        // header must not leave the request's tail waiting for the peer's delayed ACK.
        map.insertSocketOf(pid, fd, { tcpNoDelay: true });
        registered++;
      } catch {
        failed++; // closed meanwhile, or not a TCP socket any more
      }
    }
    return { registered, failed };
  }

  /** Idempotent. Connections already registered leave the SOCKHASH when they close. */
  detach(pid: number): void {
    if (!this.pids.delete(pid)) return;
    try {
      this.obj?.map(SK_INJECT_OBJECT.maps.sk_inject_tgids).delete(pidKey(pid));
    } catch {
      // the object may already be closing
    }
  }

  get attachedPids(): number[] {
    return [...this.pids];
  }

  /** Kernel counters summed over CPUs: outcome name (SK_INJECT_*, lower case) -> count. */
  kernelCounters(): Record<string, number> {
    if (!this.obj) return {};
    return readCounterMap(this.obj.map(SK_INJECT_OBJECT.maps.sk_inject_counters), SK_INJECT_OUTCOME, 'SK_INJECT_OUTCOME_MAX', (n) => n.toLowerCase());
  }

  async close(): Promise<void> {
    const obj = this.obj;
    this.obj = undefined;
    this.pids.clear();
    for (const l of this.links.splice(0).reverse()) l.destroy();
    await obj?.close();
  }

  private requireObject(): BpfObject {
    if (!this.obj) throw new SpanbridgeError('ERR_BPF_LOAD', 'sk_inject tracer not started');
    return this.obj;
  }
}
