/**
 * RED metrics from finished spans: a span sink that turns every HTTP span into one duration
 * observation and records it in the OTLP histograms (HistogramStore) and on the Prometheus
 * registry, under the same attributes (the store's series limit decides both). O(attributes) per
 * span, never throws (a span it cannot use is skipped).
 *
 * Rate = count, errors = count with `error.type`, duration = the histogram.
 *
 * Hot path: a span's series is found by one string key built from its values (`httpDurationKey`)
 * in a per-process cache; only the first span of a series builds the attribute object, sorts
 * keys for the store and hands the series' point with its labels to the Prometheus registry,
 * which renders the store's points at scrape time (nothing per span). The cache is exact because a
 * series, once created (or once sent to the overflow series), stays what it is for the store's
 * lifetime.
 */
import type { Resource, SelfMetrics, Span } from '../model';
import type { PrometheusRegistry } from '../prometheus/registry';
import { redLabels } from '../prometheus/registry';
import type { ResourceMerger } from '../resource-merge';
import { RED_SERIES_OVERFLOW } from '../self-metrics';
import type { HistogramPoint, HistogramStore } from './histogram-store';
import { httpDurationKey, httpDurationObservation, spanSeconds, type HttpInstrument } from './http-duration';

interface Series {
  readonly instrument: HttpInstrument;
  readonly point: HistogramPoint;
  readonly overflow: boolean;
}

/** Series remembered per process; past this, spans of new series take the slow path (still exact). */
const MAX_CACHED_SERIES_PER_RESOURCE = 4096;

export class RedMetricsSink {
  private readonly cache = new WeakMap<Resource, Map<string, Series>>();

  constructor(
    readonly store: HistogramStore,
    private readonly metrics: SelfMetrics,
    private readonly prometheus?: PrometheusRegistry,
    private readonly resources?: ResourceMerger,
  ) {}

  add(span: Span): void {
    const key = httpDurationKey(span);
    if (key === undefined) return;
    let byKey = this.cache.get(span.resource);
    if (!byKey) {
      byKey = new Map();
      this.cache.set(span.resource, byKey);
    }
    let series = byKey.get(key);
    const seconds = spanSeconds(span);
    if (series) {
      this.store.observe(series.point, seconds);
    } else {
      series = this.resolve(span);
      if (!series) return;
      if (byKey.size < MAX_CACHED_SERIES_PER_RESOURCE) byKey.set(key, series);
    }
    if (series.overflow) {
      this.metrics.add(RED_SERIES_OVERFLOW, 'RED observations recorded in the overflow series (attribute-set limit reached)', { instrument: series.instrument });
    }
  }

  async shutdown(): Promise<void> {}

  /** The slow path: records the span's observation and returns its series for the cache. */
  private resolve(span: Span): Series | undefined {
    const obs = httpDurationObservation(span);
    if (!obs) return undefined;
    const { attributes, overflow, point } = this.store.record(span.resource, obs.instrument, obs.attributes, obs.seconds);
    if (this.prometheus) {
      const resource = this.resources ? this.resources.merge(span.resource) : span.resource;
      this.prometheus.addRedSeries(obs.instrument, redLabels(resource, attributes), point);
    }
    return { instrument: obs.instrument, point, overflow };
  }
}
