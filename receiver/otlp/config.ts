/**
 * The resolved OTLP settings of one signal, as receiver/ takes them. Resolution (options >
 * OTEL_EXPORTER_OTLP_* environment > the specification's defaults) is the agent's config layer's
 * (src/config/otlp.ts): receiver/ reads no environment.
 */
export type { OtlpCompression, OtlpExporterConfig, OtlpProtocol, OtlpSignal } from '../model';
