/**
 * The web page's JSON API shape: recent finished traces, each span placed on the trace's time
 * axis (offset and duration in ms from the trace start) in tree order with its depth. A pure
 * function of FinishedTrace.
 */
import type { FinishedTrace } from '../spans/trace-tree-buffer';
import { buildTraceTree, durationMs, flattenTree, peerOf, serviceOf, statusText, traceBounds } from '../spans/trace-tree';

export interface WebSpan {
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly depth: number;
  readonly orphan: boolean;
  readonly service: string;
  readonly kind: string;
  readonly name: string;
  /** e.g. " → 127.0.0.1:8081" for client spans. */
  readonly peer: string;
  readonly status: string;
  readonly error: boolean;
  readonly offsetMs: number;
  readonly durationMs: number;
  readonly attributes: Record<string, string | number | boolean>;
}

export interface WebTrace {
  readonly traceId: string;
  readonly startTimeUnixMs: number;
  readonly durationMs: number;
  readonly services: readonly string[];
  readonly rootName: string;
  readonly error: boolean;
  readonly late: boolean;
  readonly spans: readonly WebSpan[];
}

export function toWebTrace(t: FinishedTrace): WebTrace {
  const bounds = traceBounds(t.spans);
  const rows = flattenTree(buildTraceTree(t.spans));
  const spans: WebSpan[] = rows.map((r) => ({
    spanId: r.span.spanId,
    parentSpanId: r.span.parentSpanId,
    depth: r.depth,
    orphan: r.orphan,
    service: serviceOf(r.span),
    kind: r.span.kind,
    name: r.span.name,
    peer: peerOf(r.span),
    status: statusText(r.span),
    error: r.span.status.code === 'ERROR',
    offsetMs: Number(r.span.startTimeUnixNano - bounds.start) / 1e6,
    durationMs: durationMs(r.span),
    attributes: { ...r.span.attributes },
  }));
  return {
    traceId: t.traceId,
    startTimeUnixMs: Number(bounds.start / 1_000_000n),
    durationMs: Number(bounds.end - bounds.start) / 1e6,
    services: [...new Set(spans.map((s) => s.service))],
    rootName: spans.length > 0 ? `${spans[0].service}: ${spans[0].name}` : '',
    error: spans.some((s) => s.error),
    late: t.late,
    spans,
  };
}
