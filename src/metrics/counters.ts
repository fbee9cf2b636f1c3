/**
 * Self-metrics: monotonically increasing counters and gauges, labelled. The hot path counts here
 * instead of throwing; the Collector bridge (receiver/) exports the snapshot.
 */
export type Labels = Record<string, string>;

export interface MetricPoint {
  readonly name: string;
  readonly description: string;
  readonly kind: 'counter' | 'gauge';
  readonly labels: Labels;
  readonly value: number;
}

interface Series {
  labels: Labels;
  value: number;
}

interface Metric {
  description: string;
  kind: 'counter' | 'gauge';
  series: Map<string, Series>;
}

/** Sorted `k=v` pairs. Runs for every count: no arrays for the usual zero or one label. */
function labelKey(labels: Labels): string {
  let only: string | undefined;
  let n = 0;
  for (const k in labels) {
    if (++n > 1) break;
    only = k;
  }
  if (n === 0) return '';
  if (n === 1) return `${only}=${labels[only as string]}`;
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

export class SelfMetrics {
  private readonly metrics = new Map<string, Metric>();
  private readonly collectors: (() => void)[] = [];

  /**
   * Runs `collect` before every snapshot, so that values read from elsewhere (the kernel's
   * per-CPU counters) are current when /metrics is scraped or OTLP metrics are exported.
   */
  onSnapshot(collect: () => void): void {
    this.collectors.push(collect);
  }

  private series(name: string, description: string, kind: Metric['kind'], labels: Labels): Series {
    let metric = this.metrics.get(name);
    if (!metric) {
      metric = { description, kind, series: new Map() };
      this.metrics.set(name, metric);
    }
    const key = labelKey(labels);
    let s = metric.series.get(key);
    if (!s) {
      s = { labels: { ...labels }, value: 0 };
      metric.series.set(key, s);
    }
    return s;
  }

  /**
   * One counter series, resolved once: `add` then costs no label key and no lookup (for counts made
   * once per ring-buffer record). The series exists from its first `add`, as with `add` above.
   */
  bound(name: string, description: string, labels: Labels): { add(n?: number): void } {
    let s: Series | undefined;
    return {
      add: (n = 1) => {
        s ??= this.series(name, description, 'counter', labels);
        s.value += n;
      },
    };
  }

  /** Adds `n` (default 1) to a counter. */
  add(name: string, description: string, labels: Labels = {}, n = 1): void {
    this.series(name, description, 'counter', labels).value += n;
  }

  /** Sets a gauge. */
  set(name: string, description: string, labels: Labels, value: number): void {
    this.series(name, description, 'gauge', labels).value = value;
  }

  /** Current value of one series (0 when never touched). */
  get(name: string, labels: Labels = {}): number {
    return this.metrics.get(name)?.series.get(labelKey(labels))?.value ?? 0;
  }

  /** Sum over all label sets of one metric. */
  total(name: string): number {
    let sum = 0;
    for (const s of this.metrics.get(name)?.series.values() ?? []) sum += s.value;
    return sum;
  }

  snapshot(): MetricPoint[] {
    for (const collect of this.collectors) collect();
    const out: MetricPoint[] = [];
    for (const [name, m] of this.metrics) {
      for (const s of m.series.values()) {
        out.push({ name, description: m.description, kind: m.kind, labels: s.labels, value: s.value });
      }
    }
    return out;
  }
}
