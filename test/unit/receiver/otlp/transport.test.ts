import { gunzipSync } from 'node:zlib';
import { HttpTransport, OtlpExportError } from '../../../../receiver/otlp/transport';
import { ok, startOtlpServer, unusedPort, type TestServer } from '../helpers/otlp-server';

describe('HttpTransport (against a real local HTTP server)', () => {
  let server: TestServer | undefined;
  let transport: HttpTransport | undefined;

  afterEach(async () => {
    await transport?.close();
    await server?.close();
    transport = undefined;
    server = undefined;
  });

  it('POSTs the body as application/x-protobuf with the configured headers; 2xx is success', async () => {
    server = await startOtlpServer(ok);
    transport = new HttpTransport({
      url: `${server.url}?tenant=a`,
      headers: { Authorization: 'Bearer t0ken', 'x-scope': 'a,b', 'Content-Type': 'text/plain' },
    });
    const body = Uint8Array.from([1, 2, 3, 250]);
    await expect(transport.send(body, 2000)).resolves.toEqual({ kind: 'success' });
    const [req] = server.requests;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/v1/traces?tenant=a');
    expect(req.headers['content-type']).toBe('application/x-protobuf');
    expect(req.headers.authorization).toBe('Bearer t0ken');
    expect(req.headers['x-scope']).toBe('a,b');
    expect(req.headers['user-agent']).toMatch(/^spanbridge\//);
    expect([...req.body]).toEqual([1, 2, 3, 250]);
  });

  it('classifies 503 with Retry-After seconds as retryable with that delay', async () => {
    server = await startOtlpServer((_req, res) => {
      res.writeHead(503, { 'retry-after': '7' });
      res.end('overloaded');
    });
    transport = new HttpTransport({ url: server.url });
    const result = await transport.send(Uint8Array.of(1), 2000);
    expect(result.kind).toBe('retryable');
    if (result.kind !== 'retryable') throw new Error('unreachable');
    expect(result.retryAfterMs).toBe(7000);
    expect(result.error).toBeInstanceOf(OtlpExportError);
    expect(result.error.code).toBe('ERR_EXPORT');
    expect(result.error.statusCode).toBe(503);
  });

  it('classifies 429/502/504 as retryable and reads an HTTP-date Retry-After', async () => {
    const statuses = [429, 502, 504];
    server = await startOtlpServer((req, res) => {
      const status = statuses[server!.requests.indexOf(req)];
      res.writeHead(status, status === 429 ? { 'retry-after': new Date(Date.now() + 30_000).toUTCString() } : {});
      res.end();
    });
    transport = new HttpTransport({ url: server.url });
    const results = [];
    for (let i = 0; i < statuses.length; i++) results.push(await transport.send(Uint8Array.of(1), 2000));
    expect(results.map((r) => r.kind)).toEqual(['retryable', 'retryable', 'retryable']);
    const first = results[0];
    if (first.kind !== 'retryable') throw new Error('unreachable');
    // HTTP-dates have 1 s resolution: 30 s ahead, minus up to 1 s of truncation and test time.
    expect(first.retryAfterMs).toBeGreaterThan(28_000);
    expect(first.retryAfterMs).toBeLessThanOrEqual(30_000);
    expect(results[1]).not.toHaveProperty('retryAfterMs');
  });

  it('classifies 400 as failure, quoting the (truncated) response text', async () => {
    server = await startOtlpServer((_req, res) => {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`bad request: ${'x'.repeat(10_000)}`);
    });
    transport = new HttpTransport({ url: server.url });
    const result = await transport.send(Uint8Array.of(1), 2000);
    expect(result.kind).toBe('failure');
    if (result.kind !== 'failure') throw new Error('unreachable');
    expect(result.error.statusCode).toBe(400);
    expect(result.error.message).toMatch(/HTTP 400: bad request: x+\.\.\.$/);
    expect(result.error.message.length).toBeLessThan(700);
  });

  it('decodes a protobuf google.rpc.Status error body (what the Collector sends)', async () => {
    const msg = Buffer.from('span id must be 8 bytes');
    server = await startOtlpServer((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/x-protobuf' });
      res.end(Buffer.concat([Buffer.from([0x08, 0x03, 0x12, msg.length]), msg]));
    });
    transport = new HttpTransport({ url: server.url });
    const result = await transport.send(Uint8Array.of(1), 2000);
    expect(result.kind === 'failure' && result.error.message).toMatch(/HTTP 400: span id must be 8 bytes$/);
  });

  it('ends an attempt at the timeout when the server never answers (retryable: the retry policy decides)', async () => {
    server = await startOtlpServer(() => 'hang');
    transport = new HttpTransport({ url: server.url });
    const started = Date.now();
    const result = await transport.send(Uint8Array.of(1), 300);
    const elapsed = Date.now() - started;
    expect(result.kind).toBe('retryable');
    expect(result.kind === 'retryable' && result.error.message).toMatch(/did not answer within 300 ms/);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1500);
  });

  it('classifies connection refused as retryable', async () => {
    const port = await unusedPort();
    transport = new HttpTransport({ url: `http://127.0.0.1:${port}/v1/traces` });
    const result = await transport.send(Uint8Array.of(1), 2000);
    expect(result.kind).toBe('retryable');
    expect(result.kind !== 'success' && result.error.message).toMatch(/ECONNREFUSED/);
  });

  it('gzips the body with content-encoding: gzip when asked to', async () => {
    server = await startOtlpServer(ok);
    transport = new HttpTransport({ url: server.url, compression: 'gzip', contentType: 'application/json' });
    const body = new TextEncoder().encode(JSON.stringify({ resourceSpans: [] }).repeat(50));
    await expect(transport.send(body, 2000)).resolves.toEqual({ kind: 'success' });
    const [req] = server.requests;
    expect(req.headers['content-encoding']).toBe('gzip');
    expect(req.headers['content-type']).toBe('application/json');
    expect(gunzipSync(req.body).equals(Buffer.from(body))).toBe(true);
  });

  it('a cancelled send ends at once as a failure (not retryable)', async () => {
    server = await startOtlpServer(() => 'hang');
    transport = new HttpTransport({ url: server.url });
    const cancel = new AbortController();
    const pending = transport.send(Uint8Array.of(1), 60_000, cancel.signal);
    await server.waitForRequests(1);
    cancel.abort();
    const result = await pending;
    expect(result.kind).toBe('failure');
    expect(result.kind === 'failure' && result.error.message).toMatch(/cancelled/);
  });
});
