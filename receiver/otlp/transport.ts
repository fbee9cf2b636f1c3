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
import type { Dispatcher, Pool as PoolType } from 'undici';
import { version as packageVersion } from '../../package.json';
import { errorMessage, ReceiverError } from '../errors';
import { parseRetryAfterMs } from './retry-after';
import { decodeRpcStatusMessage } from './rpc-status';

/*
 * undici by its parts: its index also loads fetch, WebSocket, caches, mocks and more, ~300 ms of
 * the agent's start-up on our VMs (a third of it before the first log line). The exporter needs a
 * Pool and `request` (undici's index puts `request` on every dispatcher's prototype; here it is
 * called on the pool).
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Pool = require('undici/lib/dispatcher/pool') as typeof PoolType;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { request } = require('undici/lib/api') as { request: (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData> };

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
/** How much of an error response is read and quoted; the rest is discarded. */
const MAX_ERROR_BODY_BYTES = 4096;
const MAX_ERROR_TEXT_CHARS = 512;
/** Success bodies (ExportTraceServiceResponse) are small; past this the connection is dropped instead of drained. */
const MAX_DRAIN_BYTES = 64 * 1024;

export class HttpTransport implements Transport {
  private readonly pool: PoolType;
  private readonly path: string;
  private readonly headers: Record<string, string>;
  private readonly url: string;
  private readonly gzip: boolean;

  constructor(options: HttpTransportOptions) {
    this.gzip = options.compression === 'gzip';
    const url = new URL(options.url);
    this.url = url.href;
    this.path = `${url.pathname}${url.search}`;
    this.pool = new Pool(url.origin, { connections: options.connections ?? 2 });
    this.headers = {
      'user-agent': `spanbridge/${packageVersion}`,
      ...lowerCaseKeys(options.headers ?? {}),
      // The body's format is ours to state; a user header must not contradict it.
      'content-type': options.contentType ?? 'application/x-protobuf',
      ...(this.gzip ? { 'content-encoding': 'gzip' } : {}),
    };
  }

  async send(body: Uint8Array, timeoutMs: number, signal?: AbortSignal): Promise<SendResult> {
    if (signal?.aborted) return { kind: 'failure', error: new OtlpExportError(`export: ${this.url}: cancelled`) };
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    timer.unref();
    const cancel = (): void => deadline.abort();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      const payload = this.gzip ? await gzip(body) : body;
      const res = await request.call(this.pool, {
        path: this.path,
        method: 'POST',
        headers: this.headers,
        body: payload,
        signal: deadline.signal,
      });
      if (res.statusCode >= 200 && res.statusCode < 300) {
        await res.body.dump({ limit: MAX_DRAIN_BYTES });
        return { kind: 'success' };
      }
      const reason = await readErrorReason(res.body, String(res.headers['content-type'] ?? ''));
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

  async close(): Promise<void> {
    await this.pool.close();
  }
}

function lowerCaseKeys(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

/**
 * The server's reason for an error status: a google.rpc.Status message for protobuf answers
 * (what the Collector sends), the text otherwise; read up to a bound, then truncated.
 */
async function readErrorReason(body: AsyncIterable<Uint8Array>, contentType: string): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= MAX_ERROR_BODY_BYTES) break; // leaving the loop destroys the stream
    }
  } catch {
    // A body cut short still leaves whatever arrived, and the status code says enough.
  }
  const bytes = Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY_BYTES);
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
