/**
 * Request bytes per protocol, from otlp-transformer's serializers: protobuf for `http/protobuf`
 * and `grpc` (the same ExportTrace/MetricsServiceRequest message), OTLP/JSON for `http/json`.
 *
 * The metrics serializer takes ONE ResourceMetrics; a request for several resources is built by
 * concatenating the protobuf encodings (in protobuf, concatenated messages merge and repeated
 * fields append, so the result is one request with every `resource_metrics` entry) or, for JSON,
 * by joining the `resourceMetrics` arrays.
 *
 * otlp-transformer (136 modules) loads on the first use, not at start-up: protobuf traces have
 * their own encoder (trace-encoder.ts) and metrics go out only after the first period.
 */
import type * as Transformer from '@opentelemetry/otlp-transformer';
import type { OtlpProtocol } from './config';
import type { ResourceMetrics } from './metric-types';
import type { ReadableSpan } from './readable-span-types';

let transformer: typeof Transformer | undefined;
function otlpTransformer(): typeof Transformer {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (transformer ??= require('@opentelemetry/otlp-transformer') as typeof Transformer);
}

export function serializeTraces(protocol: OtlpProtocol, spans: ReadableSpan[]): Uint8Array | undefined {
  const { JsonTraceSerializer, ProtobufTraceSerializer } = otlpTransformer();
  return protocol === 'http/json' ? JsonTraceSerializer.serializeRequest(spans) : ProtobufTraceSerializer.serializeRequest(spans);
}

export function serializeMetrics(protocol: OtlpProtocol, resources: readonly ResourceMetrics[]): Uint8Array | undefined {
  if (resources.length === 0) return undefined;
  const { JsonMetricsSerializer, ProtobufMetricsSerializer } = otlpTransformer();
  if (protocol === 'http/json') {
    const all: unknown[] = [];
    for (const rm of resources) {
      const bytes = JsonMetricsSerializer.serializeRequest(rm);
      if (!bytes) return undefined;
      const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { resourceMetrics?: unknown[] };
      all.push(...(parsed.resourceMetrics ?? []));
    }
    return new TextEncoder().encode(JSON.stringify({ resourceMetrics: all }));
  }
  const parts: Uint8Array[] = [];
  for (const rm of resources) {
    const bytes = ProtobufMetricsSerializer.serializeRequest(rm);
    if (!bytes) return undefined;
    parts.push(bytes);
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}
