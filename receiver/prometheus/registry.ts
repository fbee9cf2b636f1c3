/**
 * The Prometheus side of the bridge, on prom-client: the RED histograms
 * (`http_server_request_duration_seconds`, `http_client_request_duration_seconds`, semconv
 * buckets) and the agent's self-metrics, rendered in the text exposition format.
 *
 * RED observations arrive as they happen (the same observations, under the same attributes, as
 * the OTLP histograms). Self-metrics are copied from the agent's `SelfMetrics` snapshot at each
 * scrape: counters as counters, gauges as gauges, with their labels.
 *
 * Naming follows the OpenTelemetry -> Prometheus convention: dots become underscores and the unit
 * suffix is appended; resource attributes become `service_name`, `service_namespace` and
 * `service_instance_id` labels (the rest of a resource is not exposed here; OTLP carries it).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Attributes, MetricPoint, Resource } from '../model';
import { HTTP_DURATION_BUCKETS, HTTP_INSTRUMENT_DESCRIPTIONS, type HttpInstrument } from '../metrics/http-duration';

const RESOURCE_LABELS: ReadonlyArray<[attribute: string, label: string]> = [
  ['service.name', 'service_name'],
  ['service.namespace', 'service_namespace'],
  ['service.instance.id', 'service_instance_id'],
];

const RED_LABELS = [
  ...RESOURCE_LABELS.map(([, label]) => label),
  'http_request_method',
  'http_route',
  'http_response_status_code',
  'error_type',
  'url_scheme',
  'network_protocol_version',
  'server_address',
  'server_port',
  'otel_metric_overflow',
];

/** An OpenTelemetry name as a Prometheus metric or label name. */
export function prometheusName(name: string): string {
  let s = PROMETHEUS_NAMES.get(name);
  if (s === undefined) {
    s = name.replace(/[^a-zA-Z0-9_:]/g, '_');
    if (!/^[a-zA-Z_:]/.test(s)) s = `_${s}`;
    // Names come from code (attribute and metric names), not from traffic; bounded all the same.
    if (PROMETHEUS_NAMES.size < 1024) PROMETHEUS_NAMES.set(name, s);
  }
  return s;
}

/** prometheusName, memoized: it runs for every attribute of every RED observation. */
const PROMETHEUS_NAMES = new Map<string, string>();

export const RED_PROMETHEUS_NAMES: Record<HttpInstrument, string> = {
  'http.server.request.duration': 'http_server_request_duration_seconds',
  'http.client.request.duration': 'http_client_request_duration_seconds',
};

export type RedLabels = Readonly<Record<string, string | number>>;

/** The Prometheus labels of a RED observation: three resource attributes and the observation's. */
export function redLabels(resource: Resource, attributes: Attributes): RedLabels {
  const labels: Record<string, string | number> = {};
  for (const [attribute, label] of RESOURCE_LABELS) {
    const v = resource.attributes[attribute];
    if (v !== undefined) labels[label] = String(v);
  }
  for (const [k, v] of Object.entries(attributes)) labels[prometheusName(k)] = typeof v === 'boolean' ? String(v) : v;
  return labels;
}

type SelfMetric = { kind: MetricPoint['kind']; labelNames: string; metric: Counter | Gauge };

export class PrometheusRegistry {
  readonly registry = new Registry();
  private readonly red = new Map<HttpInstrument, Histogram>();
  private readonly self = new Map<string, SelfMetric>();

  constructor() {
    for (const instrument of Object.keys(RED_PROMETHEUS_NAMES) as HttpInstrument[]) {
      this.red.set(
        instrument,
        new Histogram({
          name: RED_PROMETHEUS_NAMES[instrument],
          help: HTTP_INSTRUMENT_DESCRIPTIONS[instrument],
          buckets: [...HTTP_DURATION_BUCKETS],
          labelNames: RED_LABELS,
          registers: [this.registry],
        }),
      );
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  observeRed(instrument: HttpInstrument, resource: Resource, attributes: Attributes, seconds: number): void {
    this.observeRedLabels(instrument, redLabels(resource, attributes), seconds);
  }

  /** `observeRed` with labels from `redLabels`, resolved once per series by the caller. */
  observeRedLabels(instrument: HttpInstrument, labels: RedLabels, seconds: number): void {
    this.red.get(instrument)?.observe(labels, seconds);
  }

  /** Replaces the self-metric values with `points` (called before each render). */
  syncSelfMetrics(points: readonly MetricPoint[]): void {
    const byName = new Map<string, MetricPoint[]>();
    for (const p of points) {
      const name = prometheusName(p.name);
      let list = byName.get(name);
      if (!list) byName.set(name, (list = []));
      list.push(p);
    }
    for (const [name, list] of byName) {
      const labelNames = [...new Set(list.flatMap((p) => Object.keys(p.labels).map(prometheusName)))].sort();
      const metric = this.selfMetric(name, list[0], labelNames);
      metric.reset();
      for (const p of list) {
        const labels: Record<string, string> = {};
        for (const [k, v] of Object.entries(p.labels)) labels[prometheusName(k)] = v;
        if (metric instanceof Counter) metric.inc(labels, Math.max(0, p.value));
        else metric.set(labels, p.value);
      }
    }
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The prom-client metric for a self-metric, re-created when its label names or kind change. */
  private selfMetric(name: string, sample: MetricPoint, labelNames: string[]): Counter | Gauge {
    const key = labelNames.join(',');
    const existing = this.self.get(name);
    if (existing && existing.kind === sample.kind && existing.labelNames === key) return existing.metric;
    if (existing || this.registry.getSingleMetric(name)) this.registry.removeSingleMetric(name);
    const config = { name, help: sample.description || name, labelNames, registers: [this.registry] };
    const metric = sample.kind === 'counter' ? new Counter(config) : new Gauge(config);
    this.self.set(name, { kind: sample.kind, labelNames: key, metric });
    return metric;
  }
}
