/**
 * The any-language HTTP/1.x tracer: owns bpf/sys_http.bpf.o, attaches its syscall tracepoints once
 * (they fire for every process, and return at once unless the process's bit is set in traced_bits),
 * and selects processes by setting their bit (selection-bits.ts) and writing their tgid into
 * traced_tgids. Knows nothing of spans or export.
 */
import { SpanbridgeError } from '../errors';
import type { OpenConnection } from '../discovery/process-sockets';
import { SYS_HTTP_DROP_REASON, SYS_HTTP_MODE, SYS_HTTP_OBJECT, SYS_HTTP_ROLE, TRACED_PROCESS } from '../events/structs.generated';
import { readUint, writeUints } from '../events/struct-view';
import { readCounterMap } from './kernel-counters';
import { openTracerObject, pidKey } from './open-object';
import { SelectionBits } from './selection-bits';
import type { Tracer } from './tracer';
import type { BpfBackend, BpfLink, BpfObject, RecordHandler } from '../bpf/types';

/** traced_tgids values: bpf enum sys_http_mode (bpf/sys_http/sys_http_state.h says what each bit does). */
export const { SYS_MODE_TRACE, SYS_MODE_THREAD_LINK, SYS_MODE_GO_LINK, SYS_MODE_INHERITED, SYS_MODE_ASYNCIO, SYS_MODE_NGINX_LINK, SYS_MODE_GO_SERVER, SYS_MODE_GO_CLIENT } = SYS_HTTP_MODE;
const OFFSET_ABSENT = 0xffffffff;

/** A Go process whose server spans come from this tracer (go.server_path: syscall). */
export interface GoServerOptions {
  /** runtime.g.goid */
  readonly goidOffset: number;
  /** g is at fsbase + this (src/discovery/go/tls.ts). */
  readonly gTlsOffset: number;
  /** net/http.conn.curReq, net/http.response.req, net/http.Request.Pattern; undefined: no route. */
  readonly connCurReq?: number;
  readonly respReq?: number;
  readonly reqPattern?: number;
  /** Its client calls are traced here too (go.client_path: syscall; bpf/sys_http/sys_http_go_client.h). */
  readonly client?: boolean;
}

/** The raw tracepoint through which children of traced processes are traced from their fork. */
export const SYS_HTTP_FORK_PROGRAM = SYS_HTTP_OBJECT.programs.sys_http_process_fork;

const P = SYS_HTTP_OBJECT.programs;
const DATA_SYSCALLS = ['read', 'write', 'readv', 'writev', 'recvfrom', 'sendto', 'recvmsg', 'sendmsg'] as const;
/** Entry programs exist for the writes only (a client request is decided before its bytes leave);
 * every data syscall's exit takes its arguments from the saved user registers. */
const WRITE_SYSCALLS = ['write', 'writev', 'sendto', 'sendmsg'] as const;

export const SYS_HTTP_PROGRAMS: readonly { prog: string; category: string; event: string }[] = [
  ...(['accept', 'accept4'] as const).map((s) => ({ prog: P[`sys_exit_${s}`], category: 'syscalls', event: `sys_exit_${s}` })),
  { prog: P.sys_enter_connect, category: 'syscalls', event: 'sys_enter_connect' },
  { prog: P.sys_exit_connect, category: 'syscalls', event: 'sys_exit_connect' },
  { prog: P.sys_enter_close, category: 'syscalls', event: 'sys_enter_close' },
  ...WRITE_SYSCALLS.map((s) => ({ prog: P[`sys_enter_${s}`], category: 'syscalls', event: `sys_enter_${s}` })),
  ...DATA_SYSCALLS.map((s) => ({ prog: P[`sys_exit_${s}`], category: 'syscalls', event: `sys_exit_${s}` })),
  { prog: P.sys_http_process_exec, category: 'sched', event: 'sched_process_exec' },
  { prog: P.sys_http_process_exit, category: 'sched', event: 'sched_process_exit' },
];

export interface SysHttpTracerSettings {
  /** Server request start may link to a client request sent at most this long before (default 5 s). */
  readonly correlationWindowMs?: number;
  /** A thread's server request older than this is no longer a parent (default 60 s). */
  readonly threadContextMaxAgeMs?: number;
  /** Connections tracked in the kernel at once (default 16384, at most 65536). */
  readonly maxConnections?: number;
  /**
   * Leave each client request's kernel-decided context for the sk_msg injector
   * (bpf/common/sk_inject.h), so the header it writes and the reported client span agree.
   */
  readonly socketInjection?: boolean;
  /**
   * Wake the agent only once this many bytes of records wait in the ring (bpf/common/ring_wakeup.h);
   * below it records wait for the backend's periodic consume. Default 0: every record wakes us.
   */
  /** Bytes of the span ring buffer (a power of two); undefined: the object's compiled-in size. */
  readonly ringSizeBytes?: number;
  readonly ringWakeupBytes?: number;
}

export interface SysAttachOptions {
  /** Link client calls to the server request active on the same thread (thread-per-request). */
  readonly threadLinking: boolean;
  /** Go process: no spans from this path, only parents handed to the Go tracer. */
  readonly goLinkOnly?: boolean;
  /** With goLinkOnly: offset of runtime.g.goid in this process. */
  readonly goidOffset?: number;
  /** Go process, server spans from this path; its client calls stay the Go tracer's unless goServer.client. */
  readonly goServer?: GoServerOptions;
  /** Python asyncio linking is attached (src/tracers/asyncio-tracer.ts). */
  readonly asyncio?: boolean;
  /**
   * nginx with its ngx_chain_writer uprobe attached (src/tracers/nginx-link-tracer.ts): a client
   * request's parent is the downstream request it serves, never the thread's.
   */
  readonly nginxLink?: boolean;
}

export class SysHttpTracer implements Tracer<[onRecord: RecordHandler], [options: SysAttachOptions]> {
  readonly name = 'sys_http';
  private obj: BpfObject | undefined;
  /** The agent's half of the selection gate (bpf/sys_http_select.h); set while obj is. */
  private bits: SelectionBits | undefined;
  private readonly links: BpfLink[] = [];
  private readonly traced = new Map<number, SysAttachOptions>();

  constructor(
    private readonly backend: BpfBackend,
    private readonly objectPath: string,
    private readonly settings: SysHttpTracerSettings = {},
  ) {}

  /** Loads the object, attaches every tracepoint and starts delivering records. */
  async start(onRecord: RecordHandler): Promise<void> {
    const maxConns = Math.min(Math.max(this.settings.maxConnections ?? 16384, 1), 65536);
    const opened = await openTracerObject(
      this.backend,
      this.objectPath,
      {
        rodata: {
          correlation_window_ns: BigInt(this.settings.correlationWindowMs ?? 5_000) * 1_000_000n,
          thread_ctx_max_age_ns: BigInt(this.settings.threadContextMaxAgeMs ?? 60_000) * 1_000_000n,
          max_connections: maxConns,
          sk_inject_pending: this.settings.socketInjection ?? false,
          ring_wakeup_bytes: BigInt(this.settings.ringWakeupBytes ?? 0),
        },
        ...(this.settings.ringSizeBytes !== undefined ? { maxEntries: { sys_http_events: this.settings.ringSizeBytes } } : {}),
      },
      (obj, links) => {
        for (const p of SYS_HTTP_PROGRAMS) links.push(obj.program(p.prog).attachTracepoint(p.category, p.event));
        links.push(obj.program(SYS_HTTP_FORK_PROGRAM).attachRawTracepoint('sched_process_fork'));
        obj.ringBuffer(SYS_HTTP_OBJECT.maps.sys_http_events, onRecord).start();
      },
    );
    this.links.push(...opened.links);
    this.obj = opened.obj;
    this.bits = new SelectionBits(opened.obj.map(SYS_HTTP_OBJECT.maps.traced_bits));
  }

  get attachedPids(): number[] {
    return [...this.traced.keys()];
  }

  /** The loaded object, for tracers whose programs live in it (asyncio-tracer.ts); undefined before start. */
  get object(): BpfObject | undefined {
    return this.obj;
  }

  get tracepointCount(): number {
    return this.links.length;
  }

  /** Starts tracing one process (its tgid). Idempotent. */
  attach(pid: number, options: SysAttachOptions): void {
    const obj = this.requireObject();
    const go = options.goServer;
    const v = writeUints(TRACED_PROCESS, {
      mode: go
        ? SYS_MODE_TRACE | SYS_MODE_GO_SERVER | (go.client ? SYS_MODE_GO_CLIENT : 0)
        : options.goLinkOnly
          ? SYS_MODE_GO_LINK
          : SYS_MODE_TRACE | (options.nginxLink ? SYS_MODE_NGINX_LINK : options.threadLinking ? SYS_MODE_THREAD_LINK : 0) | (options.asyncio ? SYS_MODE_ASYNCIO : 0),
      goid_offset: go?.goidOffset ?? options.goidOffset ?? 0,
      g_tls_offset: go?.gTlsOffset ?? 0,
      conn_cur_req: go?.connCurReq ?? OFFSET_ABSENT,
      resp_req: go?.respReq ?? OFFSET_ABSENT,
      req_pattern: go?.reqPattern ?? OFFSET_ABSENT,
    });
    // The bit first: the gate may let a process through to no entry, never hide an entry.
    this.bits?.set(pid);
    obj.map(SYS_HTTP_OBJECT.maps.traced_tgids).update(pidKey(pid), v);
    this.traced.set(pid, options);
  }

  /**
   * A child the kernel traces from its fork (bpf/sys_http/sys_http_lifecycle.h) with its parent's mode:
   * followed without writing its entry, which the kernel removed if the child exec'd or exited
   * since (then false: never traced again by a late write).
   */
  /**
   * Go processes traced with goServer whose server accepted connections that were not HTTP/1.x
   * in clear text (TLS, HTTP/2): this path gives those requests no span.
   */
  goServersNotHttp1(): number[] {
    const map = this.obj?.map(SYS_HTTP_OBJECT.maps.traced_tgids);
    if (!map) return [];
    const out: number[] = [];
    for (const [pid, o] of this.traced) {
      if (!o.goServer) continue;
      const v = map.lookup(pidKey(pid));
      if (v && readUint(v, TRACED_PROCESS, 'go_not_http1') > 0) out.push(pid);
    }
    return out;
  }

  /**
   * Go processes traced with goServer.client whose client connections began with a TLS handshake
   * (HTTPS calls): this path gives those calls no span.
   */
  goClientsWithTls(): number[] {
    const map = this.obj?.map(SYS_HTTP_OBJECT.maps.traced_tgids);
    if (!map) return [];
    const out: number[] = [];
    for (const [pid, o] of this.traced) {
      if (!o.goServer?.client) continue;
      const v = map.lookup(pidKey(pid));
      if (v && readUint(v, TRACED_PROCESS, 'go_client_tls') > 0) out.push(pid);
    }
    return out;
  }

  adoptInherited(pid: number, options: SysAttachOptions): boolean {
    if (!this.requireObject().map(SYS_HTTP_OBJECT.maps.traced_tgids).lookup(pidKey(pid))) return false;
    // The kernel set its own bit at the fork and takes it away at exec or exit; the agent's bit
    // keeps the child selected for as long as the agent has it (cleared at detach).
    this.bits?.set(pid);
    this.traced.set(pid, options);
    return true;
  }

  /**
   * Registers connections the process had open before it was selected: the kernel takes each
   * over at its first syscall if the fd still holds that socket (bpf/sys_http/sys_http_adopt.h).
   * Returns how many were registered and how many could not be (map full, object closing).
   */
  adoptOpen(pid: number, conns: readonly OpenConnection[]): { registered: number; failed: number } {
    const map = this.requireObject().map(SYS_HTTP_OBJECT.maps.adopt_conns);
    let registered = 0;
    let failed = 0;
    for (const c of conns) {
      const k = Buffer.alloc(8);
      k.writeUInt32LE(pid, 0);
      k.writeUInt32LE(c.fd, 4);
      // struct adopt_conn { u64 inode; u8 role; u8 _pad[7]; }
      const v = Buffer.alloc(16);
      v.writeBigUInt64LE(c.inode, 0);
      v.writeUInt8(c.role === 'server' ? SYS_HTTP_ROLE.SYS_ROLE_SERVER : SYS_HTTP_ROLE.SYS_ROLE_CLIENT, 8);
      try {
        map.update(k, v);
        registered++;
      } catch {
        failed++;
      }
    }
    return { registered, failed };
  }

  /** Stops tracing one process. Idempotent. */
  detach(pid: number): void {
    if (!this.traced.delete(pid)) return;
    try {
      this.obj?.map(SYS_HTTP_OBJECT.maps.traced_tgids).delete(pidKey(pid));
      this.bits?.clear(pid); // after the entry: a set bit without an entry costs one lookup only
    } catch {
      // the object may already be closing
    }
  }

  /** Kernel-side counters summed over CPUs, by reason name (SYS_DROP_X as sys_http_drop_x). */
  kernelCounters(): Record<string, number> {
    if (!this.obj) return {};
    return readCounterMap(this.obj.map(SYS_HTTP_OBJECT.maps.sys_http_drops), SYS_HTTP_DROP_REASON, 'SYS_HTTP_DROP_MAX', (n) => `sys_http_${n.replace(/^SYS_/, '').toLowerCase()}`);
  }

  async close(): Promise<void> {
    for (const pid of [...this.traced.keys()]) this.detach(pid);
    const obj = this.obj;
    this.obj = undefined;
    this.bits = undefined;
    this.links.length = 0;
    // Records keep flowing while the tracepoints are detached; what is left is delivered (drain).
    await obj?.close({ drain: true });
  }

  private requireObject(): BpfObject {
    if (!this.obj) throw new SpanbridgeError('ERR_BPF_LOAD', 'sys http tracer not started');
    return this.obj;
  }
}

/** Runtimes that serve many requests on one thread: client calls cannot be tied to a request by thread. */
export function isEventLoopRuntime(exeName: string): boolean {
  return /^(node|nodejs|deno|bun)(\d+(\.\d+)*)?$/.test(exeName);
}
