/**
 * A tiny OTLP/HTTP sink in the harness process: accepts /v1/traces and /v1/metrics, answers with an
 * empty (valid) protobuf response, and remembers when trace data arrived. The agent's export path
 * (batching, protobuf encoding, HTTP) runs for real; the sink costs next to nothing.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Sink {
  readonly endpoint: string;
  /** performance.now() of the first non-empty /v1/traces request since `reset()`. */
  firstTracesAt(): number | undefined;
  traceRequests(): number;
  reset(): void;
  close(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  let first: number | undefined;
  let traces = 0;
  const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (d: Buffer) => (bytes += d.length));
    req.on('end', () => {
      if (req.url?.startsWith('/v1/traces') && bytes > 0) {
        traces++;
        first ??= performance.now();
      }
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    firstTracesAt: () => first,
    traceRequests: () => traces,
    reset() {
      first = undefined;
      traces = 0;
    },
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
