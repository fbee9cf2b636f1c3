/**
 * Which traced nginx processes get their upstream requests linked, and why not: inspects each
 * process's binary (cached per file), loads the nginx link object at the first nginx process and
 * attaches its uprobe per process (src/tracers/nginx-link-tracer.ts).
 */
import { statSync } from 'node:fs';
import { errorMessage } from '../errors';
import { inspectNginx, type NginxLinkTarget } from '../discovery/nginx';
import type { NginxLinkTracer } from './nginx-link-tracer';

export interface NginxAttach {
  /** The uprobe is attached: the kernel links this process's upstream requests. */
  readonly linked: boolean;
  /** For the attach line: "on (uprobe ...)" or "off (reason)". */
  readonly note: string;
}

function inspectProcess(pid: number): NginxLinkTarget {
  return inspectNginx(`/proc/${pid}/exe`);
}

export class NginxLinks {
  /** Inspections by executable file (device:inode): master and workers share one. */
  private readonly inspected = new Map<string, NginxLinkTarget>();
  /** Why linking is off, for the last refused binary (doctor and logs). */
  lastRefusal: string | undefined;

  constructor(
    readonly tracer: NginxLinkTracer,
    private readonly inspect: (pid: number) => NginxLinkTarget = inspectProcess,
  ) {}

  get started(): boolean {
    return this.tracer.started;
  }

  /** Attaches the uprobe for one nginx process, or says why not (never throws). */
  attach(pid: number): NginxAttach {
    const target = this.targetOf(pid);
    if (!target.ok) return this.refuse(target.reason);
    try {
      this.tracer.start();
      return { linked: true, note: `on (${this.tracer.attach(pid, { ...target, binaryPath: `/proc/${pid}/exe` })})` };
    } catch (err) {
      return this.refuse(`uprobe not attached: ${errorMessage(err)}`);
    }
  }

  detach(pid: number): void {
    this.tracer.detach(pid);
  }

  async close(): Promise<void> {
    await this.tracer.close();
  }

  private refuse(reason: string): NginxAttach {
    this.lastRefusal = reason;
    return { linked: false, note: `off: ${reason}; its client spans stay unlinked` };
  }

  private targetOf(pid: number): NginxLinkTarget {
    let key = `pid:${pid}`;
    try {
      const st = statSync(`/proc/${pid}/exe`);
      key = `${st.dev}:${st.ino}:${st.mtimeMs}`;
    } catch {
      // gone, or not ours to read: the inspection says why
    }
    let t = this.inspected.get(key);
    if (!t) {
      t = this.inspect(pid);
      this.inspected.set(key, t);
    }
    return t;
  }
}
