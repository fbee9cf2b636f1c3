/**
 * OTLP/gRPC with @grpc/grpc-js: one unary call of `<Service>/Export` per attempt, and the
 * classification of its outcome (the same `SendResult` as the HTTP transport).
 *
 * No .proto loading: the request bytes come from otlp-transformer's protobuf serializer (the very
 * bytes OTLP/HTTP sends), so the call uses identity (de)serializers. The response
 * (Export*ServiceResponse) is not decoded.
 *
 * Classification (OTLP/gRPC specification):
 *   - OK                                                   -> success
 *   - CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE,
 *     UNAVAILABLE, DATA_LOSS                               -> retryable
 *   - RESOURCE_EXHAUSTED                                   -> retryable only with RetryInfo
 *   - anything else                                        -> failure
 * A RetryInfo in `grpc-status-details-bin` sets the delay before the retry.
 *
 * Reconnect backoff of the channel is kept short (1 s .. 5 s) so that a Collector that comes back
 * is reached within seconds, not after grpc-js' default of up to two minutes.
 */
import * as grpc from '@grpc/grpc-js';
import { version as packageVersion } from '../../package.json';
import type { OtlpSignal } from './config';
import { decodeRetryInfoDelayMs } from './rpc-status';
import { OtlpExportError, type SendResult, type Transport } from './transport';

export const GRPC_METHODS: Record<OtlpSignal, string> = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
};

const RETRYABLE_CODES = new Set([
  grpc.status.CANCELLED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.ABORTED,
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNAVAILABLE,
  grpc.status.DATA_LOSS,
]);

/** grpc-js' compression algorithm ids (CompressionAlgorithms enum). */
const GZIP_ALGORITHM = 2;

export interface GrpcTransportOptions {
  /** http://host:port (plaintext) or https://host:port (TLS). */
  readonly endpoint: string;
  readonly signal: OtlpSignal;
  /** Sent as call metadata (keys lower-cased). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly compression?: 'none' | 'gzip';
}

const identity = (b: Buffer): Buffer => b;

export class GrpcTransport implements Transport {
  private readonly client: grpc.Client;
  private readonly method: string;
  private readonly metadata: grpc.Metadata;
  private readonly target: string;

  constructor(options: GrpcTransportOptions) {
    const url = new URL(options.endpoint);
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    this.target = `${url.hostname}:${port}`;
    const credentials = url.protocol === 'https:' ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
    const channelOptions: grpc.ChannelOptions = {
      'grpc.primary_user_agent': `spanbridge/${packageVersion}`,
      'grpc.initial_reconnect_backoff_ms': 1000,
      'grpc.max_reconnect_backoff_ms': 5000,
      ...(options.compression === 'gzip' ? { 'grpc.default_compression_algorithm': GZIP_ALGORITHM } : {}),
    };
    this.client = new grpc.Client(this.target, credentials, channelOptions);
    this.method = GRPC_METHODS[options.signal];
    this.metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(options.headers ?? {})) this.metadata.set(k.toLowerCase(), v);
  }

  send(body: Uint8Array, timeoutMs: number, signal?: AbortSignal): Promise<SendResult> {
    if (signal?.aborted) return Promise.resolve({ kind: 'failure', error: new OtlpExportError(`export: grpc ${this.target}: cancelled`) });
    return new Promise<SendResult>((resolve) => {
      const call = this.client.makeUnaryRequest<Buffer, Buffer>(
        this.method,
        identity,
        identity,
        Buffer.from(body.buffer, body.byteOffset, body.byteLength),
        this.metadata,
        { deadline: Date.now() + timeoutMs },
        (err) => {
          signal?.removeEventListener('abort', cancel);
          if (!err) return resolve({ kind: 'success' });
          resolve(this.classify(err, signal));
        },
      );
      const cancel = (): void => call.cancel();
      signal?.addEventListener('abort', cancel, { once: true });
    });
  }

  private classify(err: grpc.ServiceError, signal: AbortSignal | undefined): SendResult {
    const name = grpc.status[err.code] ?? String(err.code);
    const error = new OtlpExportError(`export: grpc ${this.target}${this.method}: ${name}: ${err.details}`, { cause: err });
    if (signal?.aborted) return { kind: 'failure', error };
    const details = err.metadata?.get('grpc-status-details-bin')[0];
    const retryAfterMs = details instanceof Buffer ? decodeRetryInfoDelayMs(details) : undefined;
    const retryable = RETRYABLE_CODES.has(err.code) || (err.code === grpc.status.RESOURCE_EXHAUSTED && retryAfterMs !== undefined);
    if (!retryable) return { kind: 'failure', error };
    return retryAfterMs === undefined ? { kind: 'retryable', error } : { kind: 'retryable', error, retryAfterMs };
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
