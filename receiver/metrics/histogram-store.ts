/**
 * Cumulative explicit-bucket histograms, one stream per (resource, instrument, attribute set) —
 * the OTLP side of the RED metrics. Bounded: at most `maxSeriesPerInstrument` attribute sets per
 * instrument (across resources); observations beyond that go to one overflow series per resource
 * carrying `otel.metric.overflow=true` (the SDK convention), and are counted.
 *
 * Resources are keyed by object identity (one per process, as in the span model).
 */
import type { Attributes, Resource } from '../model';

export interface HistogramPoint {
  readonly attributes: Attributes;
  /** Unix milliseconds of the stream's first observation (the cumulative start time). */
  readonly startMs: number;
  /** counts[i] = observations in (bounds[i-1], bounds[i]]; the last one above the last bound. */
  readonly counts: number[];
  sum: number;
  count: number;
  min: number;
  max: number;
}

export interface InstrumentPoints {
  readonly instrument: string;
  readonly points: readonly HistogramPoint[];
}

export const OVERFLOW_ATTRIBUTES: Readonly<Attributes> = Object.freeze({ 'otel.metric.overflow': true });
export const DEFAULT_MAX_SERIES_PER_INSTRUMENT = 2000;

/**
 * A stable key for an attribute set: sorted keys, typed values (the string "200" and the number 200
 * differ), unambiguous (keys and strings JSON-quoted). Once per span on the hot path: no
 * intermediate arrays.
 */
export function attributesKey(attributes: Attributes): string {
  const keys = Object.keys(attributes);
  if (keys.length > 1) keys.sort();
  let out = '';
  for (const k of keys) {
    const v = attributes[k];
    out += `${JSON.stringify(k)}:${typeof v === 'string' ? JSON.stringify(v) : `${typeof v}:${String(v)}`},`;
  }
  return out;
}

export class HistogramStore {
  /** resource -> instrument -> attributes key -> point */
  private readonly streams = new Map<Resource, Map<string, Map<string, HistogramPoint>>>();
  private readonly seriesPerInstrument = new Map<string, number>();

  constructor(
    readonly bounds: readonly number[],
    private readonly maxSeriesPerInstrument: number = DEFAULT_MAX_SERIES_PER_INSTRUMENT,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Adds one observation; returns the attributes it was recorded under (`OVERFLOW_ATTRIBUTES`
   * when the instrument's series limit was reached), so other outputs can record the same.
   */
  record(
    resource: Resource,
    instrument: string,
    attributes: Attributes,
    value: number,
  ): { attributes: Attributes; overflow: boolean; point: HistogramPoint } {
    let byInstrument = this.streams.get(resource);
    if (!byInstrument) {
      byInstrument = new Map();
      this.streams.set(resource, byInstrument);
    }
    let series = byInstrument.get(instrument);
    if (!series) {
      series = new Map();
      byInstrument.set(instrument, series);
    }
    let key = attributesKey(attributes);
    let point = series.get(key);
    let overflow = false;
    if (!point) {
      const used = this.seriesPerInstrument.get(instrument) ?? 0;
      if (used >= this.maxSeriesPerInstrument) {
        overflow = true;
        attributes = OVERFLOW_ATTRIBUTES;
        key = attributesKey(attributes);
        point = series.get(key);
      }
      if (!point) {
        point = { attributes, startMs: this.now(), counts: new Array(this.bounds.length + 1).fill(0), sum: 0, count: 0, min: Infinity, max: -Infinity };
        series.set(key, point);
        if (!overflow) this.seriesPerInstrument.set(instrument, used + 1);
      }
    }
    this.observe(point, value);
    return { attributes: point.attributes, overflow, point };
  }

  /** Adds one observation to a point `record` returned (callers that resolved the series already). */
  observe(point: HistogramPoint, value: number): void {
    point.counts[bucketIndex(this.bounds, value)]++;
    point.sum += value;
    point.count++;
    if (value < point.min) point.min = value;
    if (value > point.max) point.max = value;
  }

  /** Every resource with its instruments and points (live objects: serialize before the next record). */
  *entries(): Generator<[Resource, InstrumentPoints[]]> {
    for (const [resource, byInstrument] of this.streams) {
      const out: InstrumentPoints[] = [];
      for (const [instrument, series] of byInstrument) out.push({ instrument, points: [...series.values()] });
      yield [resource, out];
    }
  }
}

/** The bucket of `value`: the first bound >= value (upper bounds inclusive), else the overflow bucket. */
export function bucketIndex(bounds: readonly number[], value: number): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (value <= bounds[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
