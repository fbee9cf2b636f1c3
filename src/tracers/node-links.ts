/**
 * Which traced Node.js processes get their client calls linked to the server request whose
 * callback made them (bpf/sys_http/sys_http_node_link.h), and why not: probes each process's node binary
 * (src/discovery/node.ts) and writes what the kernel needs into the syscall tracer's node_procs
 * map. No uprobe: the kernel reads node's async ids at the syscalls it already traces.
 */
import { errorMessage } from '../errors';
import { probeNode, type NodeLinkTarget } from '../discovery/node';
import { NODE_PROC, SYS_HTTP_OBJECT } from '../events/structs.generated';
import { writeUints } from '../events/struct-view';
import { pidKey } from './open-object';
import type { BpfObject } from '../bpf/types';

export interface NodeAttach {
  /** The kernel links this process's client calls where its rules are exact. */
  readonly linked: boolean;
  /** For the attach line and /api/processes. */
  readonly note: string;
}

/** The node executables this applies to (not Deno or Bun: other runtimes, other structures). */
export function isNode(exeName: string): boolean {
  return /^(node|nodejs)(\d+(\.\d+)*)?$/.test(exeName);
}

export class NodeLinks {
  /** Per attached process: how its calls are linked, or why not. */
  private readonly status = new Map<number, string>();

  constructor(
    private readonly object: () => BpfObject | undefined,
    private readonly probe: (pid: number) => NodeLinkTarget = probeNode,
  ) {}

  /** Writes the process's entry (never throws); what to say about it. */
  attach(pid: number): NodeAttach {
    const t = this.probe(pid);
    let out: NodeAttach;
    if (!t.ok) {
      out = { linked: false, note: `not linked: ${t.reason}` };
    } else {
      try {
        const obj = this.object();
        if (!obj) throw new Error('syscall tracer not started');
        const l = t.layout;
        const v = writeUints(NODE_PROC, {
          loop: t.loop,
          tcp_vptr: t.tcpVptr,
          parser_vptr: t.parserVptr,
          fields: 0,
          loop_watchers: l.loopWatchers,
          loop_nwatchers: l.loopNwatchers,
          stream_io: l.streamIo,
          io_fd: l.ioFd,
          wrap_async_id: l.wrapAsyncId,
          wrap_trigger_id: l.wrapTriggerId,
          wrap_realm: l.wrapRealm,
          realm_env: l.realmEnv,
          env_fields: l.envFields,
          stream_listener: l.streamListener,
          listener_parser: l.listenerParser,
          connect_reg: l.connectReg,
        });
        obj.map(SYS_HTTP_OBJECT.maps.node_procs).update(pidKey(pid), v);
        out = { linked: true, note: `linked (node ${t.version}: async ids read at syscalls, no uprobe)` };
      } catch (err) {
        out = { linked: false, note: `not linked: ${errorMessage(err)}` };
      }
    }
    this.status.set(pid, out.note);
    return out;
  }

  detach(pid: number): void {
    this.status.delete(pid);
    try {
      this.object()?.map(SYS_HTTP_OBJECT.maps.node_procs).delete(pidKey(pid));
    } catch {
      /* not there */
    }
  }

  /** Node linking of a traced process: null when it is not a node process. */
  linking(pid: number): string | null {
    return this.status.get(pid) ?? null;
  }
}
