/**
 * RED metrics from finished spans: a span sink that turns every HTTP span into one duration
 * observation and records it in the OTLP histograms (HistogramStore) and on the Prometheus
 * registry, under the same attributes (the store's series limit decides both). O(attributes) per
 * span, never throws (a span it cannot use is skipped).
 *
 * Rate = count, errors = count with `error.type`, duration = the histogram.
 *
 * Hot path: a span's series is found in a per-process tree keyed by the span's own attribute values
 * (`SERIES_KEYS`, then whether the status is ERROR): a few Map lookups on values the span already
 * holds, no key string built per span. Only the first span of a series builds the attribute
 * object, sorts keys for the store and hands the series' point with its labels to the Prometheus
 * registry, which renders the store's points at scrape time (nothing per span). The cache is
 * exact: the path determines the observation's attributes (Map keys compare by SameValueZero, so
 * 200 and '200' take different paths, as they make different series; '' is taken as absent, as
 * the observation takes it), and a series, once created (or once sent to the overflow series),
 * stays what it is for the store's lifetime.
 */
import type { Resource, SelfMetrics, Span } from '../model';
import type { PrometheusRegistry } from '../prometheus/registry';
import { redLabels } from '../prometheus/registry';
import type { ResourceMerger } from '../resource-merge';
import { RED_SERIES_OVERFLOW } from '../self-metrics';
import type { HistogramPoint, HistogramStore } from './histogram-store';
import { httpDurationObservation, readSeriesKeys, SERIES_KEYS, spanSeconds, type HttpInstrument } from './http-duration';

interface Series {
  readonly instrument: HttpInstrument;
  readonly point: HistogramPoint;
  readonly overflow: boolean;
}

/** Series remembered per process; past this, spans of new series take the slow path (still exact). */
const MAX_CACHED_SERIES_PER_RESOURCE = 4096;

/** One level of the series tree: attribute value -> next level; the last level: is-error -> series. */
type Level = Map<unknown, unknown>;

interface ResourceSeries {
  readonly server: Level;
  readonly client: Level;
  size: number;
}

/**
 * The last span's path through the tree (its values of SERIES_KEYS, as tree keys) and where it
 * led: consecutive spans of one kind mostly take the same path, and comparing the span's values
 * with it (===, most of them short strings) costs less than a Map lookup per level, which hashes
 * each value anew (the values are fresh strings). Exact as the tree is: === tells 200 from '200'
 * and takes -0 as 0, as SameValueZero does; NaN, never ===, takes the tree.
 */
class LastPath {
  readonly values: unknown[];
  tree: ResourceSeries | undefined;
  error = false;
  series: Series | undefined;

  constructor(n: number) {
    this.values = new Array<unknown>(n).fill(undefined);
  }

  /** `keys`: the span's tree keys (readSeriesKeys), `n` of them. */
  match(keys: readonly unknown[], n: number): Series | undefined {
    const values = this.values;
    for (let i = 0; i < n; i++) if (keys[i] !== values[i]) return undefined;
    return this.series;
  }

  /** `values`: the span's tree keys (readSeriesKeys: '' read as absent), all of them. */
  set(tree: ResourceSeries, error: boolean, values: readonly unknown[], series: Series): void {
    for (let i = 0; i < this.values.length; i++) this.values[i] = values[i];
    this.tree = tree;
    this.error = error;
    this.series = series;
  }
}

export class RedMetricsSink {
  private readonly cache = new WeakMap<Resource, ResourceSeries>();
  /** The last span's resource and its tree: consecutive spans mostly come from one process. */
  private lastResource: Resource | undefined;
  private lastSeries: ResourceSeries | undefined;
  /** The last span's path and series, per kind (a service that calls another alternates them). */
  private readonly lastServer = new LastPath(SERIES_KEYS.server.length);
  private readonly lastClient = new LastPath(SERIES_KEYS.client.length);
  /** A span's tree keys as they are read on a miss of the last path (copied when kept). */
  private readonly scratch = new Array<unknown>(Math.max(SERIES_KEYS.server.length, SERIES_KEYS.client.length)).fill(undefined);

  constructor(
    readonly store: HistogramStore,
    private readonly metrics: SelfMetrics,
    private readonly prometheus?: PrometheusRegistry,
    private readonly resources?: ResourceMerger,
  ) {}

  add(span: Span): void {
    const a = span.attributes;
    if (a['http.request.method'] === undefined) return;
    let rs = this.lastSeries;
    if (rs === undefined || span.resource !== this.lastResource) {
      rs = this.cache.get(span.resource);
      if (!rs) {
        rs = { server: new Map(), client: new Map(), size: 0 };
        this.cache.set(span.resource, rs);
      }
      this.lastResource = span.resource;
      this.lastSeries = rs;
    }
    const client = span.kind === 'CLIENT';
    const error = span.status.code === 'ERROR';
    const last = client ? this.lastClient : this.lastServer;
    // The span's tree keys, read once (named loads): compared with the last path, else walked.
    const values = this.scratch;
    const n = readSeriesKeys(a, client, values);
    let series = last.series !== undefined && last.tree === rs && last.error === error ? last.match(values, n) : undefined;
    if (series === undefined) {
      let level: Level | undefined = client ? rs.client : rs.server;
      for (let i = 0; i < n && level !== undefined; i++) level = level.get(values[i]) as Level | undefined;
      series = level?.get(error) as Series | undefined;
      if (series) last.set(rs, error, values, series);
    }
    if (series) {
      this.store.observe(series.point, spanSeconds(span));
    } else {
      series = this.resolve(span);
      if (!series) return;
      if (rs.size < MAX_CACHED_SERIES_PER_RESOURCE) {
        let at: Level = client ? rs.client : rs.server;
        for (let i = 0; i < n; i++) {
          const v = values[i];
          let next = at.get(v) as Level | undefined;
          if (!next) {
            next = new Map();
            at.set(v, next);
          }
          at = next;
        }
        at.set(error, series);
        rs.size++;
      }
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
