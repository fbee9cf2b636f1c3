/** The transport a resolved configuration asks for: gRPC, or HTTP with the matching content type. */
import type { OtlpExporterConfig } from './config';
import type * as Grpc from './grpc-transport';
import { HttpTransport, type Transport } from './transport';

export function createTransport(config: OtlpExporterConfig): Transport {
  if (config.protocol === 'grpc') {
    // @grpc/grpc-js loads only for a gRPC exporter (65 modules an HTTP run does not need).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { GrpcTransport } = require('./grpc-transport') as typeof Grpc;
    return new GrpcTransport({
      endpoint: config.endpoint,
      signal: config.signal,
      headers: config.headers,
      compression: config.compression,
    });
  }
  return new HttpTransport({
    url: config.endpoint,
    headers: config.headers,
    compression: config.compression,
    contentType: config.protocol === 'http/json' ? 'application/json' : 'application/x-protobuf',
  });
}
