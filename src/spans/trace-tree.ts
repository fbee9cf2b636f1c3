/**
 * A finished trace as a tree, for people: `--print-spans tree` in the terminal and the web page's
 * waterfall. Pure functions over the span model (no I/O, no clock).
 *
 *   trace 4bf92f3577b34da6a3ce929d0e0e4736  3 spans, 2 services, 12.3 ms
 *   demo-frontend  SERVER GET /shop/{item}   200        |██████████████████████████|  12.3 ms
 *   demo-frontend    CLIENT GET              200        |   ████████████████       |   8.1 ms
 *   demo-backend       SERVER GET /price/{item} 500 ERROR |    ██████████████        |   7.0 ms
 */
import type { PrintedSpan } from './print-json';
import type { Resource, Span } from './span';

export interface TreeNode {
  readonly span: Span;
  readonly depth: number;
  /** The span's parent is not in this trace (another host, dropped, or not traced). */
  readonly orphan: boolean;
  readonly children: TreeNode[];
}

/** Roots first by start time; children under their parent by start time. Cycles cannot loop. */
export function buildTraceTree(spans: readonly Span[]): TreeNode[] {
  const byId = new Map<string, Span>();
  for (const s of spans) byId.set(s.spanId, s);
  const kids = new Map<string, Span[]>();
  const roots: Span[] = [];
  for (const s of spans) {
    if (s.parentSpanId && s.parentSpanId !== s.spanId && byId.has(s.parentSpanId)) {
      const list = kids.get(s.parentSpanId) ?? [];
      list.push(s);
      kids.set(s.parentSpanId, list);
    } else {
      roots.push(s);
    }
  }
  const byStart = (a: Span, b: Span): number => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : a.startTimeUnixNano > b.startTimeUnixNano ? 1 : 0);
  const seen = new Set<string>();
  const build = (s: Span, depth: number): TreeNode => {
    seen.add(s.spanId);
    const children = (kids.get(s.spanId) ?? [])
      .filter((c) => !seen.has(c.spanId))
      .sort(byStart)
      .map((c) => build(c, depth + 1));
    return { span: s, depth, orphan: s.parentSpanId !== '' && !byId.has(s.parentSpanId), children };
  };
  const out = roots.sort(byStart).map((r) => build(r, 0));
  // Spans only reachable through a cycle (a corrupt parent chain) still show, as roots.
  for (const s of [...spans].sort(byStart)) if (!seen.has(s.spanId)) out.push(build(s, 0));
  return out;
}

/** Depth-first order, the order rows are printed in. */
export function flattenTree(roots: readonly TreeNode[]): TreeNode[] {
  const out: TreeNode[] = [];
  const walk = (n: TreeNode): void => {
    out.push(n);
    for (const c of n.children) walk(c);
  };
  for (const r of roots) walk(r);
  return out;
}

export function serviceOf(span: Span): string {
  const s = span.resource.attributes['service.name'];
  return typeof s === 'string' ? s : 'unknown_service';
}

/** "200", "500 ERROR", "ERROR", "" — the HTTP status code, then the span status if it is an error. */
export function statusText(span: Span): string {
  const code = span.attributes['http.response.status_code'];
  const parts: string[] = [];
  if (code !== undefined) parts.push(String(code));
  if (span.status.code === 'ERROR') parts.push('ERROR');
  return parts.join(' ');
}

/** " → host:port" for a client span: where it went. */
export function peerOf(span: Span): string {
  if (span.kind !== 'CLIENT') return '';
  const host = span.attributes['server.address'];
  const port = span.attributes['server.port'];
  return host === undefined ? '' : ` → ${host}${port === undefined ? '' : `:${port}`}`;
}

export function durationMs(span: Span): number {
  return Number(span.endTimeUnixNano - span.startTimeUnixNano) / 1e6;
}

export function formatDuration(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export interface TraceBounds {
  readonly start: bigint;
  readonly end: bigint;
}

export function traceBounds(spans: readonly Span[]): TraceBounds {
  let start = spans[0].startTimeUnixNano;
  let end = spans[0].endTimeUnixNano;
  for (const s of spans) {
    if (s.startTimeUnixNano < start) start = s.startTimeUnixNano;
    if (s.endTimeUnixNano > end) end = s.endTimeUnixNano;
  }
  return { start, end };
}

/** A bar of `width` cells: the span's place within the trace's time range. */
export function durationBar(span: Span, bounds: TraceBounds, width: number): string {
  const total = Number(bounds.end - bounds.start);
  if (total <= 0) return '█'.repeat(width);
  const from = Math.min(width - 1, Math.floor((Number(span.startTimeUnixNano - bounds.start) / total) * width));
  const to = Math.max(from + 1, Math.min(width, Math.ceil((Number(span.endTimeUnixNano - bounds.start) / total) * width)));
  return ' '.repeat(from) + '█'.repeat(to - from) + ' '.repeat(width - to);
}

export interface TreeFormatOptions {
  /** Cells of the duration bar (default 30). */
  readonly barWidth?: number;
  /** ANSI colours: errors red, services dim (default false). */
  readonly color?: boolean;
  /** A note for the header, e.g. "late spans". */
  readonly note?: string;
}

/** The trace as lines of text (no trailing newline). */
export function formatTraceTree(spans: readonly Span[], options: TreeFormatOptions = {}): string {
  if (spans.length === 0) return '';
  const barWidth = options.barWidth ?? 30;
  const color = options.color ?? false;
  const red = (s: string): string => (color ? `\x1b[31m${s}\x1b[0m` : s);
  const dim = (s: string): string => (color ? `\x1b[2m${s}\x1b[0m` : s);
  const bounds = traceBounds(spans);
  const rows = flattenTree(buildTraceTree(spans));
  const services = new Set(spans.map(serviceOf));
  const totalMs = Number(bounds.end - bounds.start) / 1e6;
  const header =
    `trace ${spans[0].traceId}  ${spans.length} span${spans.length === 1 ? '' : 's'}, ` +
    `${services.size} service${services.size === 1 ? '' : 's'}, ${formatDuration(totalMs)}` +
    (options.note ? `  (${options.note})` : '');
  const serviceWidth = Math.max(...rows.map((r) => serviceOf(r.span).length));
  const labels = rows.map((r) => `${'  '.repeat(r.depth)}${r.span.kind} ${r.span.name}${peerOf(r.span)}${r.orphan ? ' ↑' : ''}`);
  const labelWidth = Math.max(...labels.map((l) => l.length));
  const statuses = rows.map((r) => statusText(r.span));
  const statusWidth = Math.max(...statuses.map((s) => s.length));
  const lines = [header];
  rows.forEach((r, i) => {
    const status = statuses[i].padEnd(statusWidth);
    const isError = r.span.status.code === 'ERROR';
    lines.push(
      `  ${dim(serviceOf(r.span).padEnd(serviceWidth))}  ${labels[i].padEnd(labelWidth)}  ${isError ? red(status) : status}  ` +
        `|${durationBar(r.span, bounds, barWidth)}|  ${formatDuration(durationMs(r.span)).padStart(9)}`,
    );
  });
  return lines.join('\n');
}

/** The inverse of print-json's spanToPrinted: recorded `--print-spans json` lines back into spans. */
export function printedToSpan(p: PrintedSpan, resources: Map<string, Resource> = new Map()): Span {
  // Spans of one process share one resource object, as in the agent.
  const key = JSON.stringify(p.resource);
  let resource = resources.get(key);
  if (!resource) {
    resource = { attributes: { ...p.resource } };
    resources.set(key, resource);
  }
  return {
    traceId: p.traceId,
    spanId: p.spanId,
    parentSpanId: p.parentSpanId,
    traceFlags: p.traceFlags,
    traceState: p.traceState,
    name: p.name,
    kind: p.kind,
    startTimeUnixNano: BigInt(p.startTimeUnixNano),
    endTimeUnixNano: BigInt(p.endTimeUnixNano),
    status: p.status,
    attributes: { ...p.attributes },
    resource,
  };
}
