/**
 * The OpenTelemetry SDK metric types the OTLP metrics serializer consumes, derived from its own
 * signature (see readable-span-types.ts for why they are not imported from the SDK packages).
 *
 * The SDK's `DataPointType` and `AggregationTemporality` are numeric enums of a package that is
 * not our dependency; their values are fixed by the SDK's public API and restated here once.
 * serializers.test.ts decodes the serializer's output with an independent decoder, so a change
 * of those values would fail there.
 */
import type { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';

export type ResourceMetrics = NonNullable<Parameters<typeof ProtobufMetricsSerializer.serializeRequest>[0]>;
export type ScopeMetrics = ResourceMetrics['scopeMetrics'][number];
export type MetricData = ScopeMetrics['metrics'][number];
export type HistogramMetricData = Extract<MetricData, { dataPoints: Array<{ value: { buckets: unknown } }> }>;
export type SumMetricData = Extract<MetricData, { isMonotonic: boolean }>;
export type GaugeMetricData = Exclude<MetricData, HistogramMetricData | SumMetricData | Extract<MetricData, { dataPoints: Array<{ value: { scale: number } }> }>>;

export const DATA_POINT_TYPE = {
  HISTOGRAM: 0 as HistogramMetricData['dataPointType'],
  GAUGE: 2 as GaugeMetricData['dataPointType'],
  SUM: 3 as SumMetricData['dataPointType'],
} as const;

export const CUMULATIVE = 1 as MetricData['aggregationTemporality'];
