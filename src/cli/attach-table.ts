/**
 * The table of processes being traced and their probes, kept from the agent's attach/detach
 * events. `run` logs it (debounced: one table after a burst of attaches) and the web page's
 * /api/processes serves it.
 */
import type { AttachmentEvent } from '../agent';

export type AttachedProcess = Extract<AttachmentEvent, { kind: 'attached' }>;

export class AttachmentTable {
  private readonly rows = new Map<number, AttachedProcess>();
  private timer: NodeJS.Timeout | undefined;

  /** `print` is called with the rendered table `debounceMs` after the last change. */
  constructor(
    private readonly print?: (lines: string[]) => void,
    private readonly debounceMs = 500,
  ) {}

  on(event: AttachmentEvent): void {
    if (event.kind === 'attached') this.rows.set(event.pid, event);
    else if (!this.rows.delete(event.pid)) return;
    if (!this.print) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.print?.(this.render()), this.debounceMs);
    this.timer.unref();
  }

  processes(): AttachedProcess[] {
    return [...this.rows.values()].sort((a, b) => a.pid - b.pid);
  }

  render(): string[] {
    const procs = this.processes();
    const header = ['PID', 'SERVICE', 'TRACER', 'PROBES', 'MATCHED BY', 'EXECUTABLE', 'ROUTES'];
    const body = procs.map((p) => [String(p.pid), p.service, p.tracer, p.probes === null ? 'shared' : String(p.probes), p.reason, p.exe, p.routes]);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
    const line = (cells: string[]): string => `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ')}`;
    return [`traced processes: ${procs.length}`, line(header), ...body.map(line)];
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
