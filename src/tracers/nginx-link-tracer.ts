/**
 * nginx reverse-proxy linking: owns bpf/nginx_link.bpf.o, whose uprobe at ngx_chain_writer entry
 * tells the syscall tracer which downstream request an upstream request serves (bpf/common/nginx_link.h).
 * Attached per traced nginx process (master and each worker), so untraced nginx processes never
 * hit it. The syscall tracer takes the link only for processes whose mode has SYS_MODE_NGINX_LINK.
 */
import { SpanbridgeError } from '../errors';
import { NGINX_LINK_OBJECT, NGINX_LINK_REASON } from '../events/structs.generated';
import { NGINX_CHAIN_WRITER, NGINX_LAYOUTS, type NginxLayout, type NginxLinkTarget } from '../discovery/nginx';
import { readCounterMap } from './kernel-counters';
import { openTracerObjectSync } from './open-object';
import type { Tracer } from './tracer';
import type { BpfBackend, BpfLink, BpfObject } from '../bpf/types';

type Attachable = Extract<NginxLinkTarget, { ok: true }>;

function sameLayout(a: NginxLayout, b: NginxLayout): boolean {
  return (Object.keys(a) as (keyof NginxLayout)[]).every((k) => a[k] === b[k]);
}

export class NginxLinkTracer implements Tracer<[], [target: Attachable]> {
  readonly name = 'nginx_link';
  private obj: BpfObject | undefined;
  private readonly links = new Map<number, BpfLink>();

  /** The layout the object is loaded with: every nginx 1.x has it (src/discovery/nginx.ts). */
  readonly layout: NginxLayout = NGINX_LAYOUTS[0].layout;

  constructor(
    private readonly backend: BpfBackend,
    private readonly objectPath: string,
  ) {}

  get started(): boolean {
    return this.obj !== undefined;
  }

  /** Loads the object (no attachment until a process is attached). */
  start(): void {
    if (this.obj) return;
    const l = this.layout;
    // Nothing shared to attach: the uprobe is per process (attach).
    this.obj = openTracerObjectSync(
      this.backend,
      this.objectPath,
      {
        rodata: {
          writer_connection_off: l.writerConnection,
          connection_data_off: l.connectionData,
          connection_fd_off: l.connectionFd,
          request_signature_off: l.requestSignature,
          request_connection_off: l.requestConnection,
        },
      },
      () => undefined,
    ).obj;
  }

  get attachedPids(): number[] {
    return [...this.links.keys()];
  }

  /** The uprobe for one nginx process (idempotent); throws when it cannot be attached. */
  attach(pid: number, target: Attachable): string {
    if (!this.obj) throw new SpanbridgeError('ERR_BPF_LOAD', 'nginx link tracer not started');
    if (!sameLayout(target.layout, this.layout)) throw new SpanbridgeError('ERR_INSPECT', `nginx ${target.version}: structure layout differs from the loaded one`);
    if (!this.links.has(pid)) {
      const link = this.obj.program(NGINX_LINK_OBJECT.programs.nginx_chain_writer).attachUprobe({ binaryPath: target.binaryPath, offset: target.offset, pid });
      this.links.set(pid, link);
    }
    return `uprobe ${NGINX_CHAIN_WRITER}+0 (nginx ${target.version})`;
  }

  detach(pid: number): void {
    this.links.get(pid)?.destroy();
    this.links.delete(pid);
  }

  /** Uprobe counters by reason (NGINX_LINK_HIT as nginx_link_hit, ...). */
  kernelCounters(): Record<string, number> {
    if (!this.obj) return {};
    return readCounterMap(this.obj.map(NGINX_LINK_OBJECT.maps.nginx_link_counts), NGINX_LINK_REASON, 'NGINX_LINK_REASON_MAX', (n) => n.toLowerCase());
  }

  async close(): Promise<void> {
    for (const l of [...this.links.values()].reverse()) l.destroy();
    this.links.clear();
    const obj = this.obj;
    this.obj = undefined;
    await obj?.close();
  }
}
