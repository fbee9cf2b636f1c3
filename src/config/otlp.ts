/**
 * Where and how OTLP data of one signal (traces or metrics) is sent, resolved by the config layer
 * as explicit options > environment > defaults and handed to receiver/ ready to use.
 *
 * Environment variables follow the OpenTelemetry exporter specification: the signal-specific
 * variable (`OTEL_EXPORTER_OTLP_TRACES_*`, `OTEL_EXPORTER_OTLP_METRICS_*`) wins over the generic
 * one, an empty value counts as unset, and a value that cannot be used is reported through `warn`
 * and ignored (the next source applies) — a typo in an environment variable must never stop the
 * agent.
 *
 * Endpoints: for the HTTP protocols the generic endpoint is a base URL to which `/v1/traces` or
 * `/v1/metrics` is appended, and a signal-specific endpoint is used as given. For `grpc` both are
 * used as given (the path is the gRPC method, not part of the endpoint); `https:` means TLS.
 */
import type { OtlpCompression, OtlpExporterConfig, OtlpProtocol, OtlpSignal } from '../../receiver/model';
import { SpanbridgeError } from '../errors';
import { envValue, type Env, type Warn } from './env';

export type { OtlpCompression, OtlpExporterConfig, OtlpProtocol, OtlpSignal } from '../../receiver/model';

export const OTLP_PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'http/json', 'grpc'];

/** Explicit settings (CLI flags, YAML); they win over the environment. */
export interface OtlpExporterOptions {
  /** This signal's endpoint, used as given (no `/v1/<signal>` appended). */
  readonly endpoint?: string;
  /** A base endpoint like OTEL_EXPORTER_OTLP_ENDPOINT (`/v1/<signal>` appended for HTTP). */
  readonly baseEndpoint?: string;
  /** Extra request headers (gRPC: metadata); they override headers from the environment, key by key. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Per-attempt timeout in milliseconds. */
  readonly timeoutMs?: number;
  readonly protocol?: string;
  readonly compression?: string;
}

export { envValue, type Env, type Warn } from './env';

export const DEFAULT_HTTP_BASE_ENDPOINT = 'http://localhost:4318';
export const DEFAULT_GRPC_ENDPOINT = 'http://localhost:4317';
export const DEFAULT_TRACES_ENDPOINT = `${DEFAULT_HTTP_BASE_ENDPOINT}/v1/traces`;
export const DEFAULT_TIMEOUT_MS = 10_000;

/** RFC 9110 `token`: what a header name may contain (undici rejects anything else per request). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Header values may not contain control characters other than tab (no CR/LF injection). */
const HEADER_VALUE_FORBIDDEN = /[\u0000-\u0008\u000a-\u001f\u007f]/;

const SIGNAL_ENV: Record<OtlpSignal, string> = { traces: 'TRACES', metrics: 'METRICS' };

/** `OTEL_EXPORTER_OTLP_TRACES_<suffix>` then `OTEL_EXPORTER_OTLP_<suffix>`. */
function envNames(signal: OtlpSignal, suffix: string): [specific: string, generic: string] {
  return [`OTEL_EXPORTER_OTLP_${SIGNAL_ENV[signal]}_${suffix}`, `OTEL_EXPORTER_OTLP_${suffix}`];
}

/** Resolves one signal's exporter configuration. Never throws: bad values are warned about and skipped. */
export function resolveOtlpConfig(
  signal: OtlpSignal,
  options: OtlpExporterOptions = {},
  env: Env,
  warn: Warn = () => {},
): OtlpExporterConfig {
  const protocol = resolveProtocol(signal, options, env, warn);
  return {
    signal,
    endpoint: resolveEndpoint(signal, protocol, options, env, warn),
    headers: resolveHeaders(signal, options, env, warn),
    timeoutMs: resolveTimeout(signal, options, env, warn),
    protocol,
    compression: resolveCompression(signal, options, env, warn),
  };
}

/** The traces configuration (the first receiver's entry point). */
export function resolveOtlpTraceConfig(
  options: OtlpExporterOptions = {},
  env: Env,
  warn: Warn = () => {},
): OtlpExporterConfig {
  return resolveOtlpConfig('traces', options, env, warn);
}

function resolveEndpoint(signal: OtlpSignal, protocol: OtlpProtocol, options: OtlpExporterOptions, env: Env, warn: Warn): string {
  const [specific, generic] = envNames(signal, 'ENDPOINT');
  const asBase = (url: string | undefined): string | undefined =>
    protocol === 'grpc' ? url : appendSignalPath(url, signal);
  const candidates: Array<[source: string, url: string | undefined]> = [
    ['the endpoint option', options.endpoint],
    ['the base endpoint option', asBase(options.baseEndpoint)],
    [specific, envValue(env, specific)],
    [generic, asBase(envValue(env, generic))],
  ];
  for (const [source, url] of candidates) {
    if (url === undefined) continue;
    const problem = endpointProblem(url);
    if (problem === undefined) return url;
    // Userinfo in an endpoint is a credential: the warning shows where, not what.
    warn(`otlp config: ignoring ${source} ${JSON.stringify(url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1REDACTED:REDACTED@'))}: ${problem}`);
  }
  return protocol === 'grpc' ? DEFAULT_GRPC_ENDPOINT : `${DEFAULT_HTTP_BASE_ENDPOINT}/v1/${signal}`;
}

/** A base URL plus `/v1/<signal>`, with exactly one slash between them. */
export function appendSignalPath(base: string | undefined, signal: OtlpSignal): string | undefined {
  if (base === undefined) return undefined;
  return base.endsWith('/') ? `${base}v1/${signal}` : `${base}/v1/${signal}`;
}

/** The generic endpoint is a base URL: `/v1/traces` is appended to its path. */
export function appendTracesPath(base: string | undefined): string | undefined {
  return appendSignalPath(base, 'traces');
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

function resolveHeaders(signal: OtlpSignal, options: OtlpExporterOptions, env: Env, warn: Warn): Record<string, string> {
  const headers: Record<string, string> = {};
  const [specific, generic] = envNames(signal, 'HEADERS');
  for (const name of [generic, specific]) {
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
 * percent-decoded. A bad entry is warned about and skipped; the others still apply. Warnings name
 * an entry by its position and key, never its value (it is usually a credential).
 */
export function parseHeaderList(raw: string, source: string, warn: Warn): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = raw.split(',');
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    if (eq < 0) {
      warn(`otlp config: ignoring entry ${i + 1} in ${source}: expected key=value`);
      continue;
    }
    const named = `entry ${i + 1} (${JSON.stringify(entry.slice(0, eq).trim())})`;
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(entry.slice(0, eq).trim());
      value = decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      warn(`otlp config: ignoring ${named} in ${source}: invalid percent-encoding`);
      continue;
    }
    const problem = headerProblem(key, value);
    if (problem) {
      warn(`otlp config: ignoring ${named} in ${source}: ${problem}`);
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

function resolveTimeout(signal: OtlpSignal, options: OtlpExporterOptions, env: Env, warn: Warn): number {
  if (options.timeoutMs !== undefined) {
    if (isValidTimeout(options.timeoutMs)) return options.timeoutMs;
    warn(`otlp config: ignoring timeout option ${options.timeoutMs}: expected a positive number of milliseconds`);
  }
  for (const name of envNames(signal, 'TIMEOUT')) {
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

function resolveProtocol(signal: OtlpSignal, options: OtlpExporterOptions, env: Env, warn: Warn): OtlpProtocol {
  const [specific, generic] = envNames(signal, 'PROTOCOL');
  const candidates: Array<[source: string, value: string | undefined]> = [
    ['protocol option', options.protocol?.trim() || undefined],
    [specific, envValue(env, specific)],
    [generic, envValue(env, generic)],
  ];
  for (const [source, value] of candidates) {
    if (value === undefined) continue;
    if ((OTLP_PROTOCOLS as readonly string[]).includes(value)) return value as OtlpProtocol;
    warn(`otlp config: ignoring ${source} ${JSON.stringify(value)}: expected ${OTLP_PROTOCOLS.join(', ')}`);
  }
  return 'http/protobuf';
}

function resolveCompression(signal: OtlpSignal, options: OtlpExporterOptions, env: Env, warn: Warn): OtlpCompression {
  const [specific, generic] = envNames(signal, 'COMPRESSION');
  const candidates: Array<[source: string, value: string | undefined]> = [
    ['compression option', options.compression?.trim() || undefined],
    [specific, envValue(env, specific)],
    [generic, envValue(env, generic)],
  ];
  for (const [source, value] of candidates) {
    if (value === undefined) continue;
    if (value === 'gzip' || value === 'none') return value;
    warn(`otlp config: ignoring ${source} ${JSON.stringify(value)}: expected none or gzip`);
  }
  return 'none';
}

/** For callers that must reject rather than warn (command-line flags): throws ERR_CONFIG. */
export function assertProtocol(value: string, source: string): OtlpProtocol {
  if ((OTLP_PROTOCOLS as readonly string[]).includes(value)) return value as OtlpProtocol;
  throw new SpanbridgeError('ERR_CONFIG', `${source}: '${value}' is not one of ${OTLP_PROTOCOLS.join(', ')}`);
}
