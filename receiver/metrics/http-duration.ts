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

/**
 * The attributes that decide a span's observation attributes, per kind (with the kind itself and
 * whether the status is ERROR): the RED sink's series cache walks them (red-sink.ts).
 */
export const SERIES_KEYS: { readonly server: readonly string[]; readonly client: readonly string[] } = Object.freeze({
  server: Object.freeze([...COMMON_KEYS]),
  client: Object.freeze([...COMMON_KEYS, ...CLIENT_KEYS]),
});

/** The tree key of an attribute value (red-sink.ts): '' is absent, as for the observation. */
function treeKey(v: unknown): unknown {
  return v === '' ? undefined : v;
}

/**
 * A span's tree keys of SERIES_KEYS (`treeKey` of each attribute, in that order) into `out`, by named
 * property loads: the RED sink reads them for every span, and a load by a key taken from an array
 * is megamorphic over the attribute objects' shapes (~8x slower in process). Held to SERIES_KEYS by
 * test/unit/receiver/metrics/red-sink.test.ts. Returns how many it wrote.
 */
export function readSeriesKeys(a: Readonly<Record<string, unknown>>, client: boolean, out: unknown[]): number {
  out[0] = treeKey(a['http.request.method']);
  out[1] = treeKey(a['http.route']);
  out[2] = treeKey(a['http.response.status_code']);
  out[3] = treeKey(a['error.type']);
  out[4] = treeKey(a['url.scheme']);
  out[5] = treeKey(a['network.protocol.version']);
  if (!client) return 6;
  out[6] = treeKey(a['server.address']);
  out[7] = treeKey(a['server.port']);
  return 8;
}

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
  const seconds = spanSeconds(span);
  return {
    instrument: span.kind === 'CLIENT' ? 'http.client.request.duration' : 'http.server.request.duration',
    attributes,
    seconds,
  };
}

/**
 * A string that identifies `httpDurationObservation(span)`'s instrument and attribute set, built
 * from the span without the attribute object: equal keys <=> equal observations' attributes.
 * Each part is type-tagged and length-prefixed, so no value can forge another's key. `undefined`
 * exactly when the span is not HTTP.
 */
export function httpDurationKey(span: Span): string | undefined {
  const a = span.attributes;
  if (a['http.request.method'] === undefined) return undefined;
  const client = span.kind === 'CLIENT';
  let key = client ? 'c' : 's';
  for (const k of COMMON_KEYS) key += part(a[k]);
  if (client) for (const k of CLIENT_KEYS) key += part(a[k]);
  // error.type is derived from the status when the span has none.
  if (span.status.code === 'ERROR') key += 'E';
  return key;
}

function part(v: AttributeValue | undefined): string {
  if (v === undefined || v === '') return '-';
  const s = String(v);
  return `${typeof v === 'string' ? 's' : typeof v === 'number' ? 'n' : 'b'}${s.length}:${s}`;
}

/** The duration of `span` in seconds, 0 when it ends before it starts. */
export function spanSeconds(span: Span): number {
  const nanos = span.endTimeUnixNano - span.startTimeUnixNano;
  return nanos > 0n ? Number(nanos) / 1e9 : 0;
}

function copy(value: AttributeValue | undefined, key: string, into: Attributes): void {
  if (value !== undefined && value !== '') into[key] = value;
}
