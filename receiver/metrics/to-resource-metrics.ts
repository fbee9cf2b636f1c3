/**
 * What the OTLP metrics exporter sends, as the SDK's `ResourceMetrics` the serializer reads: the
 * RED histograms of each traced process under that process's resource (merged with the agent's
 * OTEL_RESOURCE_ATTRIBUTES), and the agent's self-metrics under the agent's own resource.
 * Cumulative temporality throughout (what Prometheus-style backends and the Collector expect).
 * Pure given its inputs.
 */
import type { ValueType as ValueTypeEnum } from '@opentelemetry/api';
import type { MetricPoint, Resource } from '../model';
import type { ResourceMerger } from '../resource-merge';
import { CUMULATIVE, DATA_POINT_TYPE, type MetricData, type ResourceMetrics } from '../otlp/metric-types';
import { toOtelResource } from '../otlp/resource-adapter';
import { INSTRUMENTATION_SCOPE } from '../otlp/scope';
import type { HistogramStore } from './histogram-store';
import { HTTP_INSTRUMENT_DESCRIPTIONS, type HttpInstrument } from './http-duration';

/** @opentelemetry/api's ValueType, without loading the API package (~60 ms of start-up) for two numbers. */
const ValueType = { INT: 0 as ValueTypeEnum.INT, DOUBLE: 1 as ValueTypeEnum.DOUBLE };

type HrTime = [number, number];

export function msToHrTime(ms: number): HrTime {
  const whole = Math.floor(ms);
  return [Math.floor(whole / 1000), (whole % 1000) * 1_000_000 + Math.round((ms - whole) * 1_000_000)];
}

export function redResourceMetrics(store: HistogramStore, nowMs: number, merger?: ResourceMerger): ResourceMetrics[] {
  const out: ResourceMetrics[] = [];
  const end = msToHrTime(nowMs);
  for (const [resource, instruments] of store.entries()) {
    const metrics: MetricData[] = instruments.map(({ instrument, points }) => ({
      descriptor: {
        name: instrument,
        description: HTTP_INSTRUMENT_DESCRIPTIONS[instrument as HttpInstrument] ?? '',
        unit: 's',
        valueType: ValueType.DOUBLE,
      },
      aggregationTemporality: CUMULATIVE,
      dataPointType: DATA_POINT_TYPE.HISTOGRAM,
      dataPoints: points.map((p) => ({
        startTime: msToHrTime(p.startMs),
        endTime: end,
        attributes: p.attributes,
        value: {
          buckets: { boundaries: [...store.bounds], counts: [...p.counts] },
          sum: p.sum,
          count: p.count,
          hasMinMax: true,
          min: p.min,
          max: p.max,
        },
      })),
    }));
    out.push({
      resource: toOtelResource(merger ? merger.merge(resource) : resource),
      scopeMetrics: [{ scope: INSTRUMENTATION_SCOPE, metrics }],
    });
  }
  return out;
}

/** Self-metrics: counters as monotonic cumulative sums, gauges as gauges; since `startMs`. */
export function selfResourceMetrics(points: readonly MetricPoint[], resource: Resource, startMs: number, nowMs: number): ResourceMetrics {
  const byName = new Map<string, MetricPoint[]>();
  for (const p of points) {
    let list = byName.get(p.name);
    if (!list) byName.set(p.name, (list = []));
    list.push(p);
  }
  const start = msToHrTime(startMs);
  const end = msToHrTime(nowMs);
  const metrics: MetricData[] = [];
  for (const [name, list] of byName) {
    const { description, kind } = list[0];
    const valueType = list.every((p) => Number.isInteger(p.value)) ? ValueType.INT : ValueType.DOUBLE;
    const dataPoints = list.map((p) => ({ startTime: start, endTime: end, attributes: p.labels, value: p.value }));
    const descriptor = { name, description, unit: '', valueType };
    metrics.push(
      kind === 'counter'
        ? { descriptor, aggregationTemporality: CUMULATIVE, dataPointType: DATA_POINT_TYPE.SUM, isMonotonic: true, dataPoints }
        : { descriptor, aggregationTemporality: CUMULATIVE, dataPointType: DATA_POINT_TYPE.GAUGE, dataPoints },
    );
  }
  return { resource: toOtelResource(resource), scopeMetrics: [{ scope: INSTRUMENTATION_SCOPE, metrics }] };
}
