/**
 * The contract receiver/ accepts from the agent, declared once and shared: finished spans with
 * their resource (the agent's one span model: src/spans/span.ts re-exports it), the self-metrics
 * registry receiver/ counts its own outcomes into and exports in full (src/metrics/counters.ts
 * implements it), and the delivery configuration, resolved by the agent's config layer
 * (src/config/otlp.ts, src/config/delivery.ts) before it gets here.
 *
 * A leaf: it imports nothing. It is the only file of receiver/ the agent imports outside its one
 * wiring file (src/wiring.ts), and receiver/ imports nothing of src/.
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

/**
 * A span's ids as the bytes they are (the hex fields' bytes), in eight 32-bit words: byte i of the
 * trace id (16 bytes), span id (8) and parent span id (8, zero for a root), one after the other, is
 * byte i % 4 of word i / 4 (little-endian). A producer that has the bytes gives them; the encoder
 * then copies them instead of parsing the hex (src/spans/span-ids.ts).
 */
export interface SpanIdWords {
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  readonly w4: number;
  readonly w5: number;
  readonly w6: number;
  readonly w7: number;
  /** False exactly when `parentSpanId` is ''. */
  readonly hasParent: boolean;
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
  /** When present: traceId, spanId and parentSpanId as bytes (equal to them, always). */
  readonly ids?: SpanIdWords;
}

export const SAMPLED_FLAG = 0x01;

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

export type OtlpSignal = 'traces' | 'metrics';
export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';
export type OtlpCompression = 'none' | 'gzip';

/** Where and how one signal is sent over OTLP: resolved (options > environment > spec defaults). */
export interface OtlpExporterConfig {
  readonly signal: OtlpSignal;
  /** Absolute http(s) URL: the POST target for HTTP, the server address for gRPC. */
  readonly endpoint: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Per-attempt timeout; retries have their own budget (receiver/otlp/retry.ts). */
  readonly timeoutMs: number;
  readonly protocol: OtlpProtocol;
  readonly compression: OtlpCompression;
}

/**
 * The bridge's own settings, resolved and validated by the agent's config layer (explicit >
 * environment). An unset one takes receiver/'s default (receiver/bridge-config.ts).
 */
export interface BridgeSettings {
  /** A port, or 'off' to disable the Prometheus endpoint. */
  readonly prometheusPort?: number | 'off';
  readonly prometheusHost?: string;
  readonly queue?: {
    readonly maxQueueSize?: number;
    readonly maxBatchSize?: number;
    readonly scheduledDelayMs?: number;
    readonly maxQueueBytes?: number;
    readonly shutdownTimeoutMs?: number;
  };
  readonly retry?: {
    readonly initialBackoffMs?: number;
    readonly maxBackoffMs?: number;
    readonly multiplier?: number;
    readonly jitter?: number;
    readonly maxElapsedMs?: number;
  };
  readonly metricExportIntervalMs?: number;
  /** false: no OTLP metrics (the Prometheus endpoint is unaffected). */
  readonly otlpMetrics?: boolean;
  /** Filled into every exported resource (a traced process's own attributes win). */
  readonly resourceAttributes?: Attributes;
  /** service.name of the agent's own resource (self-metrics): OTEL_SERVICE_NAME. */
  readonly agentServiceName?: string;
  /** Attribute sets per RED instrument before the overflow series (default 2000). */
  readonly maxRedSeries?: number;
}
