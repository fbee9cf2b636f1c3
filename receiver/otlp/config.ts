/**
 * Where and how OTLP traces are sent, merged as explicit options > environment > defaults.
 *
 * Environment variables follow the OpenTelemetry exporter specification: the traces-specific
 * variable wins over the generic one, an empty value counts as unset, and a value that cannot be
 * used is reported through `warn` and ignored (the next source applies) — a typo in an
 * environment variable must never stop the agent. The one exception is a protocol we recognise
 * but do not implement yet (`http/json`, `grpc`): silently sending http/protobuf to a gRPC port
 * would fail every export in a confusing way, so that is a configuration error.
 */
import { SpanbridgeError } from '../../src/errors';

export type OtlpProtocol = 'http/protobuf';

export interface OtlpTraceExporterOptions {
  /** Full URL of the traces endpoint, used as given (no `/v1/traces` appended). */
  readonly endpoint?: string;
  /** Extra request headers; they override headers from the environment, key by key. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Per-export timeout in milliseconds. */
  readonly timeoutMs?: number;
  readonly protocol?: string;
}

export interface OtlpTraceExporterConfig {
  /** Absolute http(s) URL of the traces endpoint. */
  readonly endpoint: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly protocol: OtlpProtocol;
}

export type Env = Readonly<Record<string, string | undefined>>;
export type Warn = (message: string) => void;

export const DEFAULT_TRACES_ENDPOINT = 'http://localhost:4318/v1/traces';
export const DEFAULT_TIMEOUT_MS = 10_000;
const TRACES_PATH = 'v1/traces';

/** Protocols the specification defines that a later version of spanbridge will add. */
const NOT_YET_SUPPORTED_PROTOCOLS = new Set(['http/json', 'grpc']);

/** RFC 9110 `token`: what a header name may contain (undici rejects anything else per request). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Header values may not contain control characters other than tab (no CR/LF injection). */
const HEADER_VALUE_FORBIDDEN = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** Resolves the traces exporter configuration. Throws `SpanbridgeError` ERR_CONFIG only for an unsupported protocol. */
export function resolveOtlpTraceConfig(
  options: OtlpTraceExporterOptions = {},
  env: Env = process.env,
  warn: Warn = () => {},
): OtlpTraceExporterConfig {
  const config: OtlpTraceExporterConfig = {
    endpoint: resolveEndpoint(options, env, warn),
    headers: resolveHeaders(options, env, warn),
    timeoutMs: resolveTimeout(options, env, warn),
    protocol: resolveProtocol(options, env, warn),
  };
  warnAboutCompression(env, warn);
  return config;
}

/** An environment variable's value, `undefined` when unset or empty (the spec treats both alike). */
function envValue(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function resolveEndpoint(options: OtlpTraceExporterOptions, env: Env, warn: Warn): string {
  const candidates: Array<[source: string, url: string | undefined]> = [
    ['the endpoint option', options.endpoint],
    ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', appendTracesPath(envValue(env, 'OTEL_EXPORTER_OTLP_ENDPOINT'))],
  ];
  for (const [source, url] of candidates) {
    if (url === undefined) continue;
    const problem = endpointProblem(url);
    if (problem === undefined) return url;
    warn(`otlp config: ignoring ${source} ${JSON.stringify(url)}: ${problem}`);
  }
  return DEFAULT_TRACES_ENDPOINT;
}

/** The generic endpoint is a base URL: `/v1/traces` is appended to its path, with exactly one slash. */
export function appendTracesPath(base: string | undefined): string | undefined {
  if (base === undefined) return undefined;
  return base.endsWith('/') ? `${base}${TRACES_PATH}` : `${base}/${TRACES_PATH}`;
}

function endpointProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not a valid URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `unsupported scheme ${parsed.protocol}`;
  return undefined;
}

function resolveHeaders(options: OtlpTraceExporterOptions, env: Env, warn: Warn): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    const raw = envValue(env, name);
    if (raw !== undefined) Object.assign(headers, parseHeaderList(raw, name, warn));
  }
  for (const [key, value] of Object.entries(options.headers ?? {})) {
    const problem = headerProblem(key, value);
    if (problem) warn(`otlp config: ignoring header option ${JSON.stringify(key)}: ${problem}`);
    else headers[key] = value;
  }
  return headers;
}

/**
 * `k1=v1,k2=v2` (the W3C Baggage-like format the spec prescribes): keys and values trimmed and
 * percent-decoded. A bad entry is warned about and skipped; the others still apply.
 */
export function parseHeaderList(raw: string, source: string, warn: Warn): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of raw.split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    if (eq < 0) {
      warn(`otlp config: ignoring entry ${JSON.stringify(entry.trim())} in ${source}: expected key=value`);
      continue;
    }
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(entry.slice(0, eq).trim());
      value = decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      warn(`otlp config: ignoring entry ${JSON.stringify(entry.trim())} in ${source}: invalid percent-encoding`);
      continue;
    }
    const problem = headerProblem(key, value);
    if (problem) {
      warn(`otlp config: ignoring entry ${JSON.stringify(entry.trim())} in ${source}: ${problem}`);
      continue;
    }
    out[key] = value;
  }
  return out;
}

function headerProblem(key: string, value: string): string | undefined {
  if (!HEADER_NAME.test(key)) return 'invalid header name';
  if (HEADER_VALUE_FORBIDDEN.test(value)) return 'header value contains control characters';
  return undefined;
}

function resolveTimeout(options: OtlpTraceExporterOptions, env: Env, warn: Warn): number {
  if (options.timeoutMs !== undefined) {
    if (isValidTimeout(options.timeoutMs)) return options.timeoutMs;
    warn(`otlp config: ignoring timeout option ${options.timeoutMs}: expected a positive number of milliseconds`);
  }
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT']) {
    const raw = envValue(env, name);
    if (raw === undefined) continue;
    const ms = Number(raw);
    if (isValidTimeout(ms)) return ms;
    warn(`otlp config: ignoring ${name}=${JSON.stringify(raw)}: expected a positive number of milliseconds`);
  }
  return DEFAULT_TIMEOUT_MS;
}

/** Positive and finite; also below the 32-bit limit of `setTimeout`, which fires at once beyond it. */
function isValidTimeout(ms: number): boolean {
  return Number.isFinite(ms) && ms > 0 && ms <= 2 ** 31 - 1;
}

function resolveProtocol(options: OtlpTraceExporterOptions, env: Env, warn: Warn): OtlpProtocol {
  const candidates: Array<[source: string, value: string | undefined]> = [
    ['protocol option', options.protocol?.trim() || undefined],
    ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL')],
    ['OTEL_EXPORTER_OTLP_PROTOCOL', envValue(env, 'OTEL_EXPORTER_OTLP_PROTOCOL')],
  ];
  for (const [source, value] of candidates) {
    if (value === undefined) continue;
    if (value === 'http/protobuf') return value;
    if (NOT_YET_SUPPORTED_PROTOCOLS.has(value)) {
      throw new SpanbridgeError(
        'ERR_CONFIG',
        `otlp config: ${source} ${JSON.stringify(value)} is not supported yet; use http/protobuf`,
      );
    }
    warn(`otlp config: ignoring ${source} ${JSON.stringify(value)}: expected http/protobuf, http/json or grpc`);
  }
  return 'http/protobuf';
}

/**
 * OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION: requests are sent uncompressed for now (the Collector
 * accepts that whatever it is configured with); a request for gzip is said out loud, not ignored.
 */
function warnAboutCompression(env: Env, warn: Warn): void {
  const name = envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION') !== undefined
    ? 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION'
    : 'OTEL_EXPORTER_OTLP_COMPRESSION';
  const value = envValue(env, name);
  if (value === undefined || value === 'none') return;
  if (value === 'gzip') warn(`otlp config: ${name}=gzip is not supported yet; sending uncompressed`);
  else warn(`otlp config: ignoring ${name}=${JSON.stringify(value)}: expected none or gzip`);
}
