/**
 * The contract receiver/ accepts from the agent: finished spans with their resource, and the
 * self-metrics registry it counts its own outcomes into and exports in full. Declared here so
 * that receiver/ imports nothing of the agent; the agent's span model (src/spans/span.ts) and
 * registry (src/metrics/counters.ts) satisfy these types structurally, which the compiler checks
 * in the one file that wires them together (src/cli/main.ts).
 */
export type SpanKind = 'SERVER' | 'CLIENT';
export type StatusCode = 'UNSET' | 'OK' | 'ERROR';
export type AttributeValue = string | number | boolean;
export type Attributes = Record<string, AttributeValue>;

/**
 * The resource of one traced process. Spans of one process share the same object, so exporters
 * group by identity.
 */
export interface Resource {
  readonly attributes: Attributes;
}

export interface Span {
  /** 32 lowercase hex characters. */
  readonly traceId: string;
  /** 16 lowercase hex characters. */
  readonly spanId: string;
  /** 16 lowercase hex characters, or '' for a root span. */
  readonly parentSpanId: string;
  /** W3C trace flags (bit 0 = sampled). */
  readonly traceFlags: number;
  /** W3C tracestate as received, '' when none. */
  readonly traceState: string;
  readonly name: string;
  readonly kind: SpanKind;
  readonly startTimeUnixNano: bigint;
  readonly endTimeUnixNano: bigint;
  readonly status: { readonly code: StatusCode; readonly message?: string };
  readonly attributes: Attributes;
  readonly resource: Resource;
}

const SAMPLED_FLAG = 0x01;

export function isSampled(span: Pick<Span, 'traceFlags'>): boolean {
  return (span.traceFlags & SAMPLED_FLAG) !== 0;
}

export type Labels = Record<string, string>;

/** One series of a self-metric, as exported (OTLP sums and gauges, Prometheus text). */
export interface MetricPoint {
  readonly name: string;
  readonly description: string;
  readonly kind: 'counter' | 'gauge';
  readonly labels: Labels;
  readonly value: number;
}

/** The agent's self-metrics registry: receiver/ counts into it and exports its snapshot. */
export interface SelfMetrics {
  /** Adds `n` (default 1) to a counter. */
  add(name: string, description: string, labels?: Labels, n?: number): void;
  /** Sets a gauge. */
  set(name: string, description: string, labels: Labels, value: number): void;
  snapshot(): MetricPoint[];
}
