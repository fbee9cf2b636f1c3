/**
 * The RED observation of one finished HTTP span, per the stable HTTP semantic conventions:
 * `http.server.request.duration` (SERVER spans) or `http.client.request.duration` (CLIENT spans),
 * in seconds, with only low-cardinality attributes — never `url.path`, `url.full` or a query.
 * `http.route` only when the span has one; `server.address`/`server.port` only for clients (on a
 * server they come from the Host header, which any caller can vary). A pure function.
 */
import type { Attributes, AttributeValue, Span } from '../model';

export type HttpInstrument = 'http.server.request.duration' | 'http.client.request.duration';

/** Semconv explicit bucket boundaries for both histograms, in seconds. */
export const HTTP_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
]);

export const HTTP_INSTRUMENT_DESCRIPTIONS: Record<HttpInstrument, string> = {
  'http.server.request.duration': 'Duration of HTTP server requests.',
  'http.client.request.duration': 'Duration of HTTP client requests.',
};

const COMMON_KEYS = [
  'http.request.method',
  'http.route',
  'http.response.status_code',
  'error.type',
  'url.scheme',
  'network.protocol.version',
] as const;
const CLIENT_KEYS = ['server.address', 'server.port'] as const;

export interface HttpDurationObservation {
  readonly instrument: HttpInstrument;
  readonly attributes: Attributes;
  readonly seconds: number;
}

/** `undefined` for spans that are not HTTP (no `http.request.method`). */
export function httpDurationObservation(span: Span): HttpDurationObservation | undefined {
  const a = span.attributes;
  if (a['http.request.method'] === undefined) return undefined;
  const attributes: Attributes = {};
  for (const key of COMMON_KEYS) copy(a[key], key, attributes);
  if (span.kind === 'CLIENT') for (const key of CLIENT_KEYS) copy(a[key], key, attributes);
  if (attributes['error.type'] === undefined && span.status.code === 'ERROR') {
    const status = a['http.response.status_code'];
    attributes['error.type'] = status !== undefined ? String(status) : '_OTHER';
  }
  const nanos = span.endTimeUnixNano - span.startTimeUnixNano;
  const seconds = nanos > 0n ? Number(nanos) / 1e9 : 0;
  return {
    instrument: span.kind === 'CLIENT' ? 'http.client.request.duration' : 'http.server.request.duration',
    attributes,
    seconds,
  };
}

function copy(value: AttributeValue | undefined, key: string, into: Attributes): void {
  if (value !== undefined && value !== '') into[key] = value;
}
