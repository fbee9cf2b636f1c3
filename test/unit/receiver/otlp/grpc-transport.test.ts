/**
 * GrpcTransport against a real grpc-js server on 127.0.0.1 (identity (de)serializers, like the
 * transport itself): the bytes, metadata, compression and the classification of status codes.
 */
import * as grpc from '@grpc/grpc-js';
import { GRPC_METHODS, GrpcTransport } from '../../../../receiver/otlp/grpc-transport';
import { unusedPort } from '../helpers/otlp-server';

type Handler = (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => void;

interface Received {
  body: Buffer;
  metadata: grpc.Metadata;
}

async function startGrpcServer(handler: Handler): Promise<{ port: number; received: Received[]; close(): Promise<void> }> {
  const server = new grpc.Server();
  const received: Received[] = [];
  const identity = (b: Buffer): Buffer => b;
  const definition = {
    Export: {
      path: GRPC_METHODS.traces,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  } as grpc.ServiceDefinition;
  server.addService(definition, {
    Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      received.push({ body: call.request, metadata: call.metadata });
      handler(call, callback);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    received,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

const ok: Handler = (_call, cb) => cb(null, Buffer.alloc(0));

describe('GrpcTransport (against a real grpc-js server)', () => {
  let server: Awaited<ReturnType<typeof startGrpcServer>> | undefined;
  let transport: GrpcTransport | undefined;

  afterEach(async () => {
    await transport?.close();
    await server?.close();
    transport = undefined;
    server = undefined;
  });

  it('calls TraceService/Export with the bytes as given and the headers as metadata', async () => {
    server = await startGrpcServer(ok);
    transport = new GrpcTransport({
      endpoint: `http://127.0.0.1:${server.port}`,
      signal: 'traces',
      headers: { 'X-Api-Key': 'k1' },
      compression: 'gzip',
    });
    const body = Uint8Array.from([10, 3, 1, 2, 3, 250]);
    await expect(transport.send(body, 5000)).resolves.toEqual({ kind: 'success' });
    expect([...server.received[0].body]).toEqual([...body]);
    expect(server.received[0].metadata.get('x-api-key')).toEqual(['k1']);
    expect(String(server.received[0].metadata.get('user-agent')[0])).toMatch(/^spanbridge\//);
  });

  it('classifies UNAVAILABLE as retryable and INVALID_ARGUMENT as a failure', async () => {
    const codes = [grpc.status.UNAVAILABLE, grpc.status.INVALID_ARGUMENT, grpc.status.RESOURCE_EXHAUSTED];
    server = await startGrpcServer((_call, cb) => cb({ code: codes.shift(), details: 'nope' }));
    transport = new GrpcTransport({ endpoint: `http://127.0.0.1:${server.port}`, signal: 'traces' });
    const unavailable = await transport.send(Uint8Array.of(1), 5000);
    expect(unavailable.kind).toBe('retryable');
    expect(unavailable.kind !== 'success' && unavailable.error.message).toMatch(/UNAVAILABLE: nope/);
    expect((await transport.send(Uint8Array.of(1), 5000)).kind).toBe('failure');
    // RESOURCE_EXHAUSTED without RetryInfo: not retryable (OTLP spec).
    expect((await transport.send(Uint8Array.of(1), 5000)).kind).toBe('failure');
  });

  it('honours RetryInfo in grpc-status-details-bin (RESOURCE_EXHAUSTED becomes retryable)', async () => {
    // google.rpc.Status{code=8, details=[Any{type_url=RetryInfo, value=RetryInfo{retry_delay{seconds=3}}}]}
    const typeUrl = Buffer.from('type.googleapis.com/google.rpc.RetryInfo');
    const retryInfo = Buffer.from([0x0a, 0x02, 0x08, 0x03]);
    const anyMsg = Buffer.concat([Buffer.from([0x0a, typeUrl.length]), typeUrl, Buffer.from([0x12, retryInfo.length]), retryInfo]);
    const statusMsg = Buffer.concat([Buffer.from([0x08, 0x08, 0x1a, anyMsg.length]), anyMsg]);
    server = await startGrpcServer((_call, cb) => {
      const metadata = new grpc.Metadata();
      metadata.set('grpc-status-details-bin', statusMsg);
      cb({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'slow down', metadata });
    });
    transport = new GrpcTransport({ endpoint: `http://127.0.0.1:${server.port}`, signal: 'traces' });
    const result = await transport.send(Uint8Array.of(1), 5000);
    expect(result).toMatchObject({ kind: 'retryable', retryAfterMs: 3000 });
  });

  it('connection refused is retryable', async () => {
    transport = new GrpcTransport({ endpoint: `http://127.0.0.1:${await unusedPort()}`, signal: 'metrics' });
    const result = await transport.send(Uint8Array.of(1), 5000);
    expect(result.kind).toBe('retryable');
  });

  it('a deadline that expires is retryable; a cancelled call is a failure', async () => {
    server = await startGrpcServer(() => {
      /* never answers */
    });
    transport = new GrpcTransport({ endpoint: `http://127.0.0.1:${server.port}`, signal: 'traces' });
    const timedOut = await transport.send(Uint8Array.of(1), 200);
    expect(timedOut.kind !== 'success' && timedOut.error.message).toMatch(/DEADLINE_EXCEEDED/);
    expect(timedOut.kind).toBe('retryable');
    const cancel = new AbortController();
    const pending = transport.send(Uint8Array.of(1), 60_000, cancel.signal);
    setTimeout(() => cancel.abort(), 50);
    expect((await pending).kind).toBe('failure');
  });
});
