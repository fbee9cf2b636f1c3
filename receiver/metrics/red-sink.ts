/**
 * RED metrics from finished spans: a span sink that turns every HTTP span into one duration
 * observation and records it in the OTLP histograms (HistogramStore) and on the Prometheus
 * registry, under the same attributes (the store's series limit decides both). O(attributes) per
 * span, never throws (a span it cannot use is skipped).
 *
 * Rate = count, errors = count with `error.type`, duration = the histogram.
 */
import type { SelfMetrics, Span } from '../model';
import type { PrometheusRegistry } from '../prometheus/registry';
import type { ResourceMerger } from '../resource-merge';
import { RED_SERIES_OVERFLOW } from '../self-metrics';
import { HistogramStore } from './histogram-store';
import { httpDurationObservation } from './http-duration';

export class RedMetricsSink {
  constructor(
    readonly store: HistogramStore,
    private readonly metrics: SelfMetrics,
    private readonly prometheus?: PrometheusRegistry,
    private readonly resources?: ResourceMerger,
  ) {}

  add(span: Span): void {
    const obs = httpDurationObservation(span);
    if (!obs) return;
    const { attributes, overflow } = this.store.record(span.resource, obs.instrument, obs.attributes, obs.seconds);
    if (overflow) {
      this.metrics.add(RED_SERIES_OVERFLOW, 'RED observations recorded in the overflow series (attribute-set limit reached)', { instrument: obs.instrument });
    }
    const resource = this.resources ? this.resources.merge(span.resource) : span.resource;
    this.prometheus?.observeRed(obs.instrument, resource, attributes, obs.seconds);
  }

  async shutdown(): Promise<void> {}
}
