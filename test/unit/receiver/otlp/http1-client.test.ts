/**
 * The exporter's HTTP/1.1 client against real local servers: node:http (keep-alive, chunked
 * answers), raw TCP servers for what node:http never sends (an idle close, a cut response, a
 * response that is not HTTP, a body delimited by the close, an interim 100), and TLS.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { Http1Client, Http1Error } from '../../../../receiver/otlp/http1-client';
import { HttpTransport } from '../../../../receiver/otlp/transport';

// A self-signed certificate for localhost and 127.0.0.1 (valid to 2126), for the TLS cases only.
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg6vLXiHQ0s5Go22Hv
isEOorP0czGmQ0rqtFkfUDaCTV+hRANCAAQJF57LpGQhc7kE2SFky9zf5uJAOJqL
5GxUoz8of3HwdPTI/IOPsKLBYqIeKtes/EwZvweLInduxtQv9a9CkcA5
-----END PRIVATE KEY-----`;
const CERT = `-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUT8pmcUfR/02Tr8ZzfolpKBAxhIgwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNzE1MTQ0N1oYDzIxMjYxMTEz
MTUxNDQ3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQJF57LpGQhc7kE2SFky9zf5uJAOJqL5GxUoz8of3HwdPTI/IOPsKLB
YqIeKtes/EwZvweLInduxtQv9a9CkcA5o28wbTAdBgNVHQ4EFgQUaHRABZPYkE/g
k7KNSVoLX74zndwwHwYDVR0jBBgwFoAUaHRABZPYkE/gk7KNSVoLX74zndwwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDSAAwRQIgckta2DD+coRzlMjy/30a0JlPDeP6gTis7MTvZ0u66f4CIQCu
xS1e0CMRRSre/rZv8fg3Jn5k83TmQQPSyfw7t6P56Q==
-----END CERTIFICATE-----`;

const HEAD = Buffer.from('POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n', 'latin1');

interface Served {
  url: URL;
  connections: number;
  bodies: Buffer[];
  close(): Promise<void>;
}

async function listen(server: net.Server, scheme: string, served: Omit<Served, 'url' | 'close'>): Promise<Served> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sockets = new Set<net.Socket>();
  server.on(scheme === 'https' ? 'secureConnection' : 'connection', (s: net.Socket) => {
    served.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return Object.assign(served, {
    url: new URL(`${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  });
}

/** node:http: each request's body recorded; `answer` writes the response. */
function httpServer(answer: (res: http.ServerResponse, n: number) => void): Promise<Served> {
  const served = { connections: 0, bodies: [] as Buffer[] };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      served.bodies.push(Buffer.concat(chunks));
      answer(res, served.bodies.length);
    });
  });
  return listen(server, 'http', served);
}

/** A raw TCP server: `answer` gets the socket once a whole request head arrived. */
function rawServer(answer: (s: net.Socket) => void): Promise<Served> {
  const served = { connections: 0, bodies: [] as Buffer[] };
  const server = net.createServer((s) => {
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        got = '';
        answer(s);
      }
    });
    s.on('error', () => {});
  });
  return listen(server, 'http', served);
}

const body = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i & 0xff);

describe('Http1Client', () => {
  let served: Served | undefined;
  let client: Http1Client | undefined;
  afterEach(async () => {
    client?.close();
    await served?.close();
    client = undefined;
    served = undefined;
  });

  it('sends the body whole, with its content-length, and reuses one kept-alive connection', async () => {
    served = await httpServer((res) => res.end());
    client = new Http1Client(served.url);
    for (const n of [0, 3, 300_000]) {
      const res = await client.request({ head: HEAD, body: body(n) });
      expect(res.statusCode).toBe(200);
    }
    expect(served.bodies.map((b) => b.length)).toEqual([0, 3, 300_000]);
    expect(served.bodies[2].equals(Buffer.from(body(300_000)))).toBe(true);
    expect(served.connections).toBe(1);
  });

  it('reads chunked answers (pieces, trailers) and keeps the connection', async () => {
    served = await httpServer((res, n) => {
      res.writeHead(n === 1 ? 400 : 200, { 'content-type': 'text/plain', trailer: 'x-t' });
      res.write('first ');
      setTimeout(() => {
        res.write('second');
        res.addTrailers({ 'x-t': 'end' });
        res.end();
      }, 20);
    });
    client = new Http1Client(served.url);
    const a = await client.request({ head: HEAD, body: body(1) });
    expect([a.statusCode, a.headers['transfer-encoding'], a.body.toString()]).toEqual([400, 'chunked', 'first second']);
    const b = await client.request({ head: HEAD, body: body(1) });
    expect([b.statusCode, b.body.toString()]).toEqual([200, 'first second']);
    expect(served.connections).toBe(1);
  });

  it('keeps at most bodyLimit bytes of a long answer and then drops that connection', async () => {
    served = await httpServer((res) => res.end('y'.repeat(100_000)));
    client = new Http1Client(served.url);
    const res = await client.request({ head: HEAD, body: body(1), bodyLimit: 4096 });
    expect([res.statusCode, res.body.length]).toEqual([200, 4096]);
    expect((await client.request({ head: HEAD, body: body(1) })).statusCode).toBe(200);
    expect(served.connections).toBe(2);
  });

  it('opens a new connection when the server closed the idle one', async () => {
    served = await rawServer((s) => {
      s.write('HTTP/1.1 204 No Content\r\n\r\n');
      setTimeout(() => s.end(), 30); // the server's idle timeout
    });
    client = new Http1Client(served.url);
    expect((await client.request({ head: HEAD, body: body(1) })).statusCode).toBe(204);
    await new Promise((r) => setTimeout(r, 300)); // past the server's idle timeout
    expect((await client.request({ head: HEAD, body: body(1) })).statusCode).toBe(204);
    expect(served.connections).toBe(2);
  });

  it('a response cut short rejects with ERR_HTTP_SOCKET_CLOSED', async () => {
    served = await rawServer((s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc'));
    client = new Http1Client(served.url);
    await expect(client.request({ head: HEAD, body: body(1) })).rejects.toMatchObject({ code: 'ERR_HTTP_SOCKET_CLOSED' });
  });

  it('an answer that is not HTTP rejects with ERR_HTTP_PARSE', async () => {
    served = await rawServer((s) => s.write('SSH-2.0-OpenSSH\r\n\r\n'));
    client = new Http1Client(served.url);
    const err = await client.request({ head: HEAD, body: body(1) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Http1Error);
    expect(err).toMatchObject({ code: 'ERR_HTTP_PARSE' });
  });

  it('skips an interim 100 and reads a body delimited by the close', async () => {
    served = await rawServer((s) => {
      s.write('HTTP/1.1 100 Continue\r\n\r\n');
      s.end('HTTP/1.0 503 Service Unavailable\r\nRetry-After: 3\r\n\r\nbusy');
    });
    client = new Http1Client(served.url);
    const res = await client.request({ head: HEAD, body: body(1) });
    expect([res.statusCode, res.headers['retry-after'], res.body.toString()]).toEqual([503, '3', 'busy']);
  });

  it('an aborted request rejects at once and closes its connection', async () => {
    served = await rawServer(() => {}); // never answers
    client = new Http1Client(served.url);
    const abort = new AbortController();
    const pending = client.request({ head: HEAD, body: body(1), signal: abort.signal });
    await new Promise((r) => setTimeout(r, 50));
    abort.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
  });

  it('speaks TLS to an https endpoint (a trusted CA: answered; the system store: refused)', async () => {
    const served0 = { connections: 0, bodies: [] as Buffer[] };
    const server = tls.createServer({ key: KEY, cert: CERT }, (s) => {
      s.on('data', () => s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'));
      s.on('error', () => {});
    });
    served = await listen(server, 'https', served0);
    client = new Http1Client(new URL(`https://localhost:${served.url.port}/v1/traces`), 2, { ca: CERT });
    const res = await client.request({ head: HEAD, body: body(1) });
    expect([res.statusCode, res.body.toString()]).toEqual([200, 'ok']);
    const transport = new HttpTransport({ url: `https://localhost:${served.url.port}/v1/traces` });
    const result = await transport.send(body(1), 2000);
    await transport.close();
    expect(result.kind).toBe('failure'); // a self-signed certificate: not retried
    expect(result.kind === 'failure' && result.error.message).toMatch(/certificate/i);
  });
});

describe('HttpTransport request head', () => {
  it('a header value with CR/LF makes every send a failure, never a request', async () => {
    const served = await httpServer((res) => res.end());
    const transport = new HttpTransport({ url: served.url.href, headers: { 'x-a': 'b\r\nx-injected: 1' } });
    const result = await transport.send(body(1), 2000);
    await transport.close();
    await served.close();
    expect(result.kind === 'failure' && result.error.message).toMatch(/invalid header "x-a"/);
    expect(served.bodies).toHaveLength(0);
  });
});
