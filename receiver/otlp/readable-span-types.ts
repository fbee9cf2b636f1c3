/**
 * The OpenTelemetry SDK types the OTLP serializer consumes, derived from the serializer's own
 * signature rather than imported from `@opentelemetry/sdk-trace` / `@opentelemetry/resources`.
 *
 * Why: those packages are not our dependencies; they are nested inside
 * `@opentelemetry/otlp-transformer`'s own node_modules at whatever version it pins. Deriving the
 * types from `ProtobufTraceSerializer.serializeRequest` keeps us type-checked against exactly the
 * shape the installed serializer expects, and a transformer upgrade that changes it fails
 * `tsc` here instead of failing at runtime.
 */
import type { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';

/** What `ProtobufTraceSerializer.serializeRequest` accepts, one element of its array argument. */
export type ReadableSpan = Parameters<typeof ProtobufTraceSerializer.serializeRequest>[0][number];

/** The SDK `Resource` interface (the serializer groups spans by its object identity). */
export type OtelResource = ReadableSpan['resource'];

/** The SDK `InstrumentationScope` (the protobuf serializer groups by its object identity too). */
export type OtelInstrumentationScope = ReadableSpan['instrumentationScope'];
