/**
 * The Prometheus side of the bridge: the RED histograms (`http_server_request_duration_seconds`,
 * `http_client_request_duration_seconds`, semconv buckets) and the agent's self-metrics, rendered
 * in the text exposition format.
 *
 * RED histograms are the OTLP histograms' own points (HistogramStore), registered once per series
 * by the RED sink and rendered at scrape time: a span costs the Prometheus side nothing (observing
 * through prom-client hashed every span's labels and was a tenth of the agent's CPU per span). The
 * text is what prom-client renders for the same observations (test/unit/receiver/metrics holds it
 * to that). Self-metrics are copied from the agent's `SelfMetrics` snapshot at each scrape into
 * prom-client: counters as counters, gauges as gauges, with their labels.
 *
 * Naming follows the OpenTelemetry -> Prometheus convention: dots become underscores and the unit
 * suffix is appended; resource attributes become `service_name`, `service_namespace` and
 * `service_instance_id` labels (the rest of a resource is not exposed here; OTLP carries it).
 */
import type { Counter as CounterType, Gauge as GaugeType, Registry as RegistryType } from 'prom-client';
import type { Attributes, MetricPoint, Resource } from '../model';
import type { HistogramPoint } from '../metrics/histogram-store';
import { HTTP_DURATION_BUCKETS, HTTP_INSTRUMENT_DESCRIPTIONS, type HttpInstrument } from '../metrics/http-duration';

const RESOURCE_LABELS: ReadonlyArray<[attribute: string, label: string]> = [
  ['service.name', 'service_name'],
  ['service.namespace', 'service_namespace'],
  ['service.instance.id', 'service_instance_id'],
];

export const RED_LABELS: readonly string[] = [
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

/*
 * prom-client by its parts: its index also loads default process metrics, the push gateway and
 * more (~120 ms of start-up here); the self-metrics need a registry, counters and gauges.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const Registry = require('prom-client/lib/registry') as typeof RegistryType;
const Counter = require('prom-client/lib/counter') as typeof CounterType;
const Gauge = require('prom-client/lib/gauge') as typeof GaugeType;
/* eslint-enable @typescript-eslint/no-require-imports */
type Counter = CounterType;
type Gauge = GaugeType;

type SelfMetric = { kind: MetricPoint['kind']; labelNames: string; metric: Counter | Gauge };

/** One Prometheus RED series: its label text and the store points observed under those labels. */
interface RedSeries {
  readonly labelText: string;
  readonly points: HistogramPoint[];
}

const RED_LABEL_SET = new Set(RED_LABELS);

export class PrometheusRegistry {
  readonly registry = new Registry();
  /** instrument -> label text -> series, in first-observation order (prom-client's order). */
  private readonly red = new Map<HttpInstrument, Map<string, RedSeries>>();
  private readonly redPoints = new Set<HistogramPoint>();
  private readonly self = new Map<string, SelfMetric>();

  constructor(private readonly bounds: readonly number[] = HTTP_DURATION_BUCKETS) {
    for (const instrument of Object.keys(RED_PROMETHEUS_NAMES) as HttpInstrument[]) this.red.set(instrument, new Map());
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Exposes `point` (a HistogramStore point, live) under `labels` from now on. Once per series;
   * points registered again are ignored. Throws for a label outside the RED label set.
   */
  addRedSeries(instrument: HttpInstrument, labels: RedLabels, point: HistogramPoint): void {
    if (this.redPoints.has(point)) return;
    const byLabels = this.red.get(instrument);
    if (!byLabels) throw new Error(`unknown RED instrument ${instrument}`);
    let labelText = '';
    for (const [name, value] of Object.entries(labels)) {
      if (!RED_LABEL_SET.has(name)) throw new Error(`Added label "${name}" is not included in initial labelset: ${JSON.stringify(RED_LABELS)}`);
      labelText += `${labelText ? ',' : ''}${name}="${escapeLabelValue(value)}"`;
    }
    this.redPoints.add(point);
    const series = byLabels.get(labelText);
    if (series) series.points.push(point);
    else byLabels.set(labelText, { labelText, points: [point] });
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
    const parts: string[] = [];
    for (const [instrument, series] of this.red) parts.push(this.renderRed(instrument, series));
    // prom-client's layout: metrics joined by a blank line, one newline at the end.
    if (this.registry.getMetricsAsArray().length > 0) parts.push((await this.registry.metrics()).slice(0, -1));
    return `${parts.join('\n\n')}\n`;
  }

  private renderRed(instrument: HttpInstrument, series: ReadonlyMap<string, RedSeries>): string {
    const name = RED_PROMETHEUS_NAMES[instrument];
    const lines = [`# HELP ${name} ${escapeString(HTTP_INSTRUMENT_DESCRIPTIONS[instrument])}`, `# TYPE ${name} histogram`];
    const bounds = this.bounds;
    for (const { labelText, points } of series.values()) {
      const sep = labelText ? ',' : '';
      let cumulative = 0;
      for (let i = 0; i <= bounds.length; i++) {
        for (const p of points) cumulative += p.counts[i];
        lines.push(`${name}_bucket{le="${i < bounds.length ? bounds[i] : '+Inf'}"${sep}${labelText}} ${cumulative}`);
      }
      let sum = 0;
      let count = 0;
      for (const p of points) {
        sum += p.sum;
        count += p.count;
      }
      const labels = labelText ? `{${labelText}}` : '';
      lines.push(`${name}_sum${labels} ${valueText(sum)}`, `${name}_count${labels} ${count}`);
    }
    return lines.join('\n');
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

/** prom-client's escaping of label values (strings only) and of HELP text. */
function escapeLabelValue(value: string | number): string {
  return typeof value === 'string' ? escapeString(value).replace(/"/g, '\\"') : String(value);
}

function escapeString(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** prom-client's number text. */
function valueText(v: number): string {
  if (Number.isNaN(v)) return 'Nan';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  return `${v}`;
}
