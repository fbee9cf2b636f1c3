/**
 * The Collector bridge: the one object the agent hands finished spans to, and the only thing that
 * talks to the Collector.
 *
 *   add(span) -+-> RedMetricsSink --> HistogramStore (OTLP) + PrometheusRegistry (scrape)
 *              +-> SpanBatcher (bounded queue) --> OtlpTraceExporter (retry) --> traces endpoint
 *   every interval: HistogramStore + SelfMetrics --> OtlpMetricsExporter (retry) --> metrics endpoint
 *   GET /metrics:   PrometheusRegistry (RED + SelfMetrics snapshot)
 *
 * `start()` opens the Prometheus endpoint and starts the metrics timer; `shutdown()` flushes the
 * spans (within the batcher's deadline), sends the final metrics and closes everything. `add` is
 * the hot path: O(1) apart from the span's attributes, never throws, never waits.
 */
import type { Resource, SelfMetrics, Span } from './model';
import { SpanBatcher } from './batcher';
import type { BridgeConfig } from './bridge-config';
import type { ReceiverLog } from './log';
import { HistogramStore } from './metrics/histogram-store';
import { HTTP_DURATION_BUCKETS } from './metrics/http-duration';
import { RedMetricsSink } from './metrics/red-sink';
import { redResourceMetrics, selfResourceMetrics } from './metrics/to-resource-metrics';
import type { OtlpExporterConfig } from './otlp/config';
import type { ResourceMetrics } from './otlp/metric-types';
import { OtlpMetricsExporter } from './otlp/metrics-exporter';
import { OtlpTraceExporter, type OtlpTraceExporterDeps } from './otlp/trace-exporter';
import type { Transport } from './otlp/transport';
import { PrometheusRegistry } from './prometheus/registry';
import { PrometheusServer } from './prometheus/server';
import { agentResource, ResourceMerger } from './resource-merge';
import { countRedError, setQueueGauges } from './self-metrics';

const METRICS_SHUTDOWN_TIMEOUT_MS = 3000;

export interface CollectorBridgeParts {
  readonly metrics: SelfMetrics;
  readonly log: ReceiverLog;
  readonly bridge: BridgeConfig;
  /** `undefined`: spans are not exported (RED metrics still are). */
  readonly traces: OtlpExporterConfig | undefined;
  /** `undefined`: no OTLP metrics. */
  readonly metricsOtlp: OtlpExporterConfig | undefined;
  /** Test seams. */
  readonly traceTransport?: Transport;
  readonly traceExporterDeps?: OtlpTraceExporterDeps;
}

export class CollectorBridge {
  readonly red: RedMetricsSink;
  readonly batcher: SpanBatcher | undefined;
  private readonly store: HistogramStore;
  private readonly prometheus: PrometheusRegistry;
  private readonly server: PrometheusServer | undefined;
  private readonly metricsExporter: OtlpMetricsExporter | undefined;
  private readonly resources: ResourceMerger;
  private readonly selfResource: Resource;
  private readonly startMs = Date.now();
  private prometheusAddress: { host: string; port: number } | undefined;
  private shutdownPromise: Promise<void> | undefined;

  constructor(private readonly parts: CollectorBridgeParts) {
    const { metrics, log, bridge } = parts;
    this.resources = new ResourceMerger(bridge.resourceAttributes);
    this.selfResource = agentResource(bridge.resourceAttributes, bridge.agentServiceName);
    this.store = new HistogramStore(HTTP_DURATION_BUCKETS, bridge.maxRedSeries);
    this.prometheus = new PrometheusRegistry();
    this.red = new RedMetricsSink(this.store, metrics, this.prometheus, this.resources);
    if (parts.traces) {
      const exporter = new OtlpTraceExporter(parts.traces, metrics, log, {
        retry: bridge.retry,
        resources: this.resources,
        ...(parts.traceTransport ? { transport: parts.traceTransport } : {}),
        ...parts.traceExporterDeps,
      });
      this.batcher = new SpanBatcher(exporter, metrics, log, bridge.queue);
    }
    if (parts.metricsOtlp) {
      this.metricsExporter = new OtlpMetricsExporter(parts.metricsOtlp, metrics, log, () => this.collectResourceMetrics(), bridge.metricExportIntervalMs, {
        retry: bridge.retry,
      });
    }
    if (bridge.prometheus) {
      this.server = new PrometheusServer(
        async () => ({ contentType: this.prometheus.contentType, body: await this.renderPrometheus() }),
        (m) => log.warn(m),
      );
    }
  }

  /** Opens the Prometheus endpoint (rejects with ERR_CONFIG if it cannot listen) and starts the metrics timer. */
  async start(): Promise<void> {
    const p = this.parts.bridge.prometheus;
    if (this.server && p) {
      const address = await this.server.listen(p.host, p.port);
      this.prometheusAddress = { host: p.host, port: address.port };
      this.parts.log.info(`prometheus: serving metrics at ${this.prometheusUrl}`);
      if (!isLoopbackHost(p.host)) {
        this.parts.log.warn(
          `prometheus: listening on ${p.host}, not only on loopback: anyone who can reach this address reads the RED metrics (routes, peers, self-metrics)`,
        );
      }
    }
    this.metricsExporter?.start();
  }

  /** `http://host:port/metrics` once started with the endpoint enabled. */
  get prometheusUrl(): string | undefined {
    if (!this.prometheusAddress) return undefined;
    const { host, port } = this.prometheusAddress;
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`;
  }

  /** Hot path: RED observation + queueing for export. Never throws. */
  add(span: Span): void {
    try {
      this.red.add(span);
    } catch {
      // A span the RED metrics cannot use must not cost its export.
      countRedError(this.parts.metrics);
    }
    this.batcher?.add(span);
  }

  /** Exports every span added so far, and the current metrics. */
  async forceFlush(): Promise<void> {
    await Promise.all([this.batcher?.forceFlush(), this.metricsExporter?.exportNow()]);
  }

  /** Flushes spans (within the queue's shutdown deadline), sends the final metrics, closes. Never rejects; idempotent. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      await this.batcher?.shutdown();
      // After the spans, so the final metrics carry the final span counters; bounded so that the
      // whole shutdown fits the CLI's 10 s (5 s for spans + 3 s for metrics).
      await this.metricsExporter?.shutdown(METRICS_SHUTDOWN_TIMEOUT_MS).catch(() => {});
      await this.server?.close().catch(() => {});
    })();
    return this.shutdownPromise;
  }

  /** The OTLP metrics payload: RED per traced process, self-metrics under the agent's resource. */
  collectResourceMetrics(): ResourceMetrics[] {
    const now = Date.now();
    this.refreshGauges();
    return [
      ...redResourceMetrics(this.store, now, this.resources),
      selfResourceMetrics(this.parts.metrics.snapshot(), this.selfResource, this.startMs, now),
    ];
  }

  /** The Prometheus exposition text (what GET /metrics answers). */
  async renderPrometheus(): Promise<string> {
    this.refreshGauges();
    this.prometheus.syncSelfMetrics(this.parts.metrics.snapshot());
    return this.prometheus.render();
  }

  private refreshGauges(): void {
    if (this.batcher) setQueueGauges(this.parts.metrics, this.batcher.queueState());
  }
}

/** 127.0.0.0/8, ::1 and localhost: the only hosts the local endpoints bind to without a warning. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}
