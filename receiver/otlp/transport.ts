/**
 * One OTLP/HTTP POST and the classification of its outcome — nothing else. Retrying, queueing and
 * counting live in the layers above (retry.ts uses `retryable` and `retryAfterMs`), so this file
 * can be tested against a real local server in isolation.
 *
 * Classification (OTLP/HTTP specification):
 *   - 2xx                                   -> success (a partial_success body is not inspected)
 *   - 429, 502, 503, 504                    -> retryable, honouring Retry-After
 *   - connection refused/reset, socket loss -> retryable
 *   - the per-attempt deadline expired      -> retryable (the retry policy has its own budget;
 *                                              the server may have processed it: at-least-once)
 *   - cancelled by the caller's signal      -> failure (shutdown)
 *   - anything else (400, 401, 404, TLS...) -> failure, with the server's reason in the message
 *
 * With `compression: 'gzip'` the body is gzipped and sent with `content-encoding: gzip`.
 */
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { version as packageVersion } from '../../package.json';
import { errorMessage, ReceiverError } from '../errors';
import { parseRetryAfterMs } from './retry-after';
import { decodeRpcStatusMessage } from './rpc-status';
import { UndiciPost } from './undici-post';

export type SendResult =
  | { readonly kind: 'success' }
  | { readonly kind: 'failure'; readonly error: OtlpExportError }
  | { readonly kind: 'retryable'; readonly error: OtlpExportError; readonly retryAfterMs?: number };

const gzip = promisify(gzipCallback);

/** What an exporter needs from a transport: HTTP (this file) or gRPC (grpc-transport.ts). */
export interface Transport {
  /** One attempt; never rejects. `signal` cancels it (the result is then a failure). */
  send(body: Uint8Array, timeoutMs: number, signal?: AbortSignal): Promise<SendResult>;
  /** Closes connections; sends still in flight finish first. */
  close(): Promise<void>;
}

/** An export failed. `statusCode` is the HTTP status when the server answered. */
export class OtlpExportError extends ReceiverError {
  readonly statusCode: number | undefined;

  constructor(message: string, options?: { cause?: unknown; statusCode?: number }) {
    super('ERR_EXPORT', message, options);
    this.name = 'OtlpExportError';
    this.statusCode = options?.statusCode;
  }
}

export interface HttpTransportOptions {
  /** Absolute http(s) URL the body is POSTed to. */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly contentType?: string;
  readonly compression?: 'none' | 'gzip';
  /** Concurrent connections to the endpoint (the exporters send one request at a time each). */
  readonly connections?: number;
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
/** Transient network conditions: the Collector restarting, a load balancer dropping a connection. */
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);
/** RFC 9110 `token`, and a field value without control characters (CR and LF above all). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// eslint-disable-next-line no-control-regex
const HEADER_VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;
/**
 * How much of a response body is read and kept (an error's is quoted); past this the connection is
 * dropped instead of drained. Success bodies (Export*ServiceResponse, a partial_success at most)
 * are small.
 */
const MAX_ERROR_BODY_BYTES = 4096;
const MAX_ERROR_TEXT_CHARS = 512;

export class HttpTransport implements Transport {
  private readonly client: UndiciPost;
  /** Why no request can be sent (an invalid header), reported by every send. */
  private readonly invalid: string | undefined;
  private readonly url: string;
  private readonly gzip: boolean;

  constructor(options: HttpTransportOptions) {
    this.gzip = options.compression === 'gzip';
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OtlpExportError(`export: ${url.href}: not an http(s) URL`);
    this.url = url.href;
    const headers: Record<string, string> = {
      'user-agent': `spanbridge/${packageVersion}`,
      ...lowerCaseKeys(options.headers ?? {}),
      // The body's format and framing are ours to state; a user header must not contradict them.
      'content-type': options.contentType ?? 'application/x-protobuf',
      ...(this.gzip ? { 'content-encoding': 'gzip' } : {}),
    };
    delete headers['content-length'];
    delete headers['transfer-encoding'];
    delete headers.connection;
    const bad = Object.entries(headers).find(([k, v]) => !HEADER_NAME.test(k) || !HEADER_VALUE.test(v));
    this.invalid = bad ? `export: ${this.url}: invalid header ${JSON.stringify(bad[0])}` : undefined;
    this.client = new UndiciPost(url, Object.entries(headers).flat(), options.connections ?? 2);
  }

  async send(body: Uint8Array, timeoutMs: number, signal?: AbortSignal): Promise<SendResult> {
    if (signal?.aborted) return { kind: 'failure', error: new OtlpExportError(`export: ${this.url}: cancelled`) };
    if (this.invalid) return { kind: 'failure', error: new OtlpExportError(this.invalid) };
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    timer.unref();
    const cancel = (): void => deadline.abort();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      const payload = this.gzip ? await gzip(body) : body;
      const ok = (code: number): boolean => code >= 200 && code < 300;
      const res = await this.client.post(payload, deadline.signal, MAX_ERROR_BODY_BYTES);
      if (ok(res.statusCode)) return { kind: 'success' };
      const reason = readErrorReason(res.body, res.headers['content-type'] ?? '');
      const error = new OtlpExportError(
        `export: ${this.url} answered HTTP ${res.statusCode}${reason ? `: ${reason}` : ''}`,
        { statusCode: res.statusCode },
      );
      if (!RETRYABLE_STATUS.has(res.statusCode)) return { kind: 'failure', error };
      const retryAfterMs = parseRetryAfterMs(res.headers['retry-after']);
      return retryAfterMs === undefined ? { kind: 'retryable', error } : { kind: 'retryable', error, retryAfterMs };
    } catch (err) {
      if (signal?.aborted) {
        return { kind: 'failure', error: new OtlpExportError(`export: ${this.url}: cancelled`, { cause: err }) };
      }
      if (deadline.signal.aborted) {
        return {
          kind: 'retryable',
          error: new OtlpExportError(`export: ${this.url} did not answer within ${timeoutMs} ms`, { cause: err }),
        };
      }
      const error = new OtlpExportError(`export: POST ${this.url}: ${describeNetworkError(err)}`, { cause: err });
      return RETRYABLE_NETWORK_CODES.has(errorCode(err) ?? '') ? { kind: 'retryable', error } : { kind: 'failure', error };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', cancel);
    }
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

function lowerCaseKeys(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

/**
 * The server's reason for an error status: a google.rpc.Status message for protobuf answers
 * (what the Collector sends), the text otherwise; read up to a bound (the client keeps at most
 * MAX_ERROR_BODY_BYTES of it), then truncated.
 */
function readErrorReason(body: Buffer, contentType: string): string {
  const bytes = body.subarray(0, MAX_ERROR_BODY_BYTES);
  const text = (contentType.includes('protobuf') ? decodeRpcStatusMessage(bytes) : undefined) ?? bytes.toString('utf8');
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > MAX_ERROR_TEXT_CHARS ? `${oneLine.slice(0, MAX_ERROR_TEXT_CHARS)}...` : oneLine;
}

/** The error `code` of a network failure; Node's happy-eyeballs connect wraps them in an AggregateError. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const c = errorCode(inner);
      if (c) return c;
    }
  }
  return undefined;
}

function describeNetworkError(err: unknown): string {
  const code = errorCode(err);
  const message = err instanceof AggregateError && err.message === '' ? err.errors.map(errorMessage).join('; ') : errorMessage(err);
  return code && !message.includes(code) ? `${code} ${message}` : message || String(code ?? 'unknown error');
}
