/**
 * Every self-metric the agent writes outside receiver/, declared once: name, help text, kind and
 * label names. Call sites count through these handles, so a name or its help is never written
 * twice and a label cannot be misspelt. receiver/ declares its own (receiver/self-metrics.ts);
 * both end up in the one SelfMetrics registry, exported over OTLP and at /metrics.
 */
import type { Labels, SelfMetrics } from './counters';

type LabelSet<L extends string> = { readonly [K in L]: string };

abstract class MetricHandle<L extends string> {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {}

  /** Current value of one series (0 when never touched). */
  get(metrics: SelfMetrics, labels: LabelSet<L>): number {
    return metrics.get(this.name, labels as Labels);
  }

  /** Sum over every series. */
  total(metrics: SelfMetrics): number {
    return metrics.total(this.name);
  }
}

export class Counter<L extends string = never> extends MetricHandle<L> {
  add(metrics: SelfMetrics, labels: LabelSet<L>, n = 1): void {
    metrics.add(this.name, this.help, labels as Labels, n);
  }

  /** One series of this counter, resolved once (hot paths: see SelfMetrics.bound). */
  bind(metrics: SelfMetrics, labels: LabelSet<L>): { add(n?: number): void } {
    return metrics.bound(this.name, this.help, labels as Labels);
  }
}

export class Gauge<L extends string = never> extends MetricHandle<L> {
  set(metrics: SelfMetrics, labels: LabelSet<L>, value: number): void {
    metrics.set(this.name, this.help, labels as Labels, value);
  }
}

const counter = <L extends string = never>(name: string, help: string, labels: readonly L[] = []): Counter<L> => new Counter(name, help, labels);
const gauge = <L extends string = never>(name: string, help: string, labels: readonly L[] = []): Gauge<L> => new Gauge(name, help, labels);

// Ring-buffer records (src/events, the stages).
export const recordsDecoded = counter('spanbridge_records_total', 'Ring-buffer records decoded', ['type']);
export const recordsInvalid = counter('spanbridge_records_invalid_total', 'Ring-buffer records that could not be decoded', ['reason']);
export const fieldsTruncated = counter('spanbridge_fields_truncated_total', 'Captured strings cut to their buffer size');

/** Kernel-side counters, read from the tracers' per-CPU maps each period (cumulative). */
export const kernelDrops = gauge('spanbridge_kernel_drops', 'Kernel-side drops and skips (cumulative), by reason', ['reason']);

// Spans. The same metric receiver/ counts its delivery losses in, with the same help text.
export const spansDropped = counter('spanbridge_spans_dropped_total', 'Spans lost before delivery, by reason', ['reason']);

/** The strategy chosen at start (the same the start-up report and `doctor` state): 1 for the one in effect. */
export const headerInjection = gauge(
  'spanbridge_header_injection',
  'Traceparent injection in effect (1), by runtime (go, other) and method (go_memory, sk_msg, none)',
  ['runtime', 'method'],
);

// Processes and probes.
export const binariesInspected = counter('spanbridge_binaries_inspected_total', 'Executables inspected (once per dev:inode)');
export const processesSkipped = counter('spanbridge_processes_skipped_total', 'Selected processes that could not be traced', ['reason']);
export const processesExcluded = counter(
  'spanbridge_processes_excluded_total',
  'Selected processes never traced: this agent, another agent, the Collector it exports to, or excluded by configuration',
  ['reason'],
);
export const attaches = counter('spanbridge_attaches_total', 'Processes attached since start, by tracer (go_http, sys_http)', ['tracer']);
export const processesAttached = gauge('spanbridge_processes_attached', 'Processes currently traced');
export const probesAttached = gauge('spanbridge_probes_attached', 'Probes (uprobe links) currently attached', ['tracer']);

// Go client spans that wait for their response body to close (src/spans/go-client-ends.ts).
export const goClientSpansEndedAtHead = counter(
  'spanbridge_go_client_spans_ended_at_head_total',
  'Go client spans with a response body that ended at the response head (body not closed in time, too many open, or agent stopping)',
  ['reason'],
);
export const goClientEndsUnmatched = counter(
  'spanbridge_go_client_ends_unmatched_total',
  'Go client body-close records without a waiting client span (it had already ended at its head)',
);

// The syscall HTTP path.
export const openConnectionsRegistered = counter(
  'spanbridge_open_connections_registered_total',
  'Connections open when a process was selected, registered for take-over at their next syscall (or not: map full)',
  ['outcome'],
);
export const clientSpansUnlinked = counter(
  'spanbridge_client_spans_unlinked_total',
  'Client spans of event-loop runtimes and Java left without an in-process parent: the runtime cannot tell which server request made them',
  ['runtime'],
);
export const sysHttpConnections = gauge('spanbridge_sys_http_connections', 'Connections the syscall HTTP assembler follows');
export const sysHttpConnectionsEvicted = counter(
  'spanbridge_sys_http_connections_evicted_total',
  'Connections the assembler stopped following (limit reached)',
);
export const sysHttpExchangesDropped = counter(
  'spanbridge_sys_http_exchanges_dropped_total',
  'HTTP exchanges seen by the syscall tracer that produced no span, by reason',
  ['reason'],
);

// Routes.
export const routesDistinct = gauge('spanbridge_routes_distinct', 'Distinct routes per service (at most routes.max_per_service)', ['service']);
export const routesOverflow = counter(
  'spanbridge_routes_overflow_total',
  'Server spans whose route was folded into the overflow route (per-service route limit reached)',
  ['service'],
);

// The live trace view (--print-spans tree, the web page).
export const traceViewSpansDropped = counter('spanbridge_trace_view_spans_dropped_total', 'Spans left out of the live trace view (trace over its span limit)');
export const traceViewEvicted = counter('spanbridge_trace_view_evicted_total', 'Traces finished early in the live trace view because too many were open');
