/**
 * Socket-level injection (sk_msg) on bad and awkward input (any kernel: the client is not Go): a traced
 * Python process sends, over connections registered in the SOCKHASH, requests the injector must
 * leave alone (request line longer than the inspected window, a header block longer than it),
 * heads spread over several sends (injected before the blank line), garbage, and connections
 * closed mid-request. Everything is forwarded byte for byte, skips are counted, nothing stalls,
 * and the next normal request is injected again.
 */
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { buildGoApp } from '../helpers/go-build';
import { freePort } from './helpers/collector';
import { echoedTraceparents } from './helpers/go-chain';
import { startAgent, startProcess, waitFor, waitForPort, type AgentProcess, type Running } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';
import { b64, startPyClient, type PyClient } from './helpers/py-raw-client';

describe('sk_msg injection: bad input is forwarded untouched, counted, and never stalls', () => {
  let backend: Running;
  let backendPort: number;
  let echoPort: number;
  let echo: net.Server;
  let agent: AgentProcess;
  let py: PyClient;

  beforeAll(async () => {
    requireRootAndBpf();
    backendPort = await freePort();
    backend = startProcess(buildGoApp('goserver'), ['-addr', `127.0.0.1:${backendPort}`]);
    await waitForPort(backendPort, 60_000);
    // A raw TCP echo: returns every byte it receives, closes when the peer half-closes.
    echo = net.createServer((s) => {
      s.on('data', (d) => s.write(d));
      s.on('end', () => s.end());
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    echoPort = (echo.address() as net.AddressInfo).port;
    py = startPyClient(mkdtempSync(path.join(os.tmpdir(), 'sk-inject-bad-')));
    await py.send({ kind: 'raw', port: echoPort, chunks: [b64('warm-up')] }); // also waits until ready
    agent = await startAgent(['--pid', String(py.pid), '--pid', String(backend.pid), '--export', 'none'], {}, 120_000);
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    await py?.stop();
    await backend?.stop();
    await new Promise((r) => echo?.close(r));
  });

  const getHeaders = async (query = '', headers: Record<string, string> = {}): Promise<string> => {
    const r = await py.send({ kind: 'get', url: `http://127.0.0.1:${backendPort}/headers${query}`, headers });
    expect(r.error).toBeUndefined();
    return r.body ?? '';
  };

  it('a normal request is injected (the connection path works)', async () => {
    expect(echoedTraceparents(await getHeaders())).toHaveLength(1);
  });

  it('a request line longer than the inspected window (4 KiB) is left untouched', async () => {
    const body = await getHeaders(`?q=${'a'.repeat(6000)}`);
    expect(echoedTraceparents(body)).toEqual([]);
    expect(body).toMatch(/^user-agent: Python-urllib/m);
  });

  it('a header block longer than the window (no way to rule out a traceparent) is left untouched', async () => {
    const body = await getHeaders('', { 'X-Big': 'b'.repeat(6000) });
    expect(echoedTraceparents(body)).toEqual([]);
    expect(body).toContain(`x-big: ${'b'.repeat(6000)}`);
  });

  it('garbage and HTTP-lookalikes on a traced connection come back byte for byte', async () => {
    const inputs: Buffer[] = [
      Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), // TLS ClientHello start
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), // HTTP/2 preface
      Buffer.concat([Buffer.from('GET '), Buffer.alloc(3000, 0x01), Buffer.from('\r\n\r\n')]),
      Buffer.from('POST /x HTTX/9.9\r\nHost: a\r\n\r\n'),
      Buffer.from('get / http/1.1\r\n\r\n'),
      Buffer.from('GET / HTTP/1.1\n\n'), // bare LF
      Buffer.alloc(100_000, 0x41), // big non-HTTP message
    ];
    for (const input of inputs) {
      const r = await py.send({ kind: 'raw', port: echoPort, chunks: [b64(input)] });
      expect(r.error).toBeUndefined();
      expect(Buffer.from(r.data ?? '', 'base64').equals(input)).toBe(true);
    }
  });

  it('a request line split over two sends, and a head over three: one header each (before the blank line), the reported client span', async () => {
    const head = `GET /headers?split=1 HTTP/1.1\r\nHost: 127.0.0.1:${backendPort}\r\nX-Split: yes\r\nConnection: close\r\n\r\n`;
    for (const cuts of [[20], [40, 70]]) {
      const pieces = [0, ...cuts].map((c, i, all) => head.slice(c, all[i + 1]));
      const r = await py.send({ kind: 'raw', port: backendPort, chunks: pieces.map(b64), gap_ms: 50 });
      const resp = Buffer.from(r.data ?? '', 'base64').toString('latin1');
      expect(resp).toMatch(/^HTTP\/1\.1 200/);
      expect(resp).toContain('x-split: yes');
      const tps = echoedTraceparents(resp.split('\r\n\r\n').slice(1).join(''));
      expect(tps).toHaveLength(1);
      const spanId = tps[0].split('-')[2];
      await waitFor('client span of the split request', () =>
        agent.spans().find((s) => s.kind === 'CLIENT' && s.resource['process.pid'] === py.pid && s.spanId === spanId && String(s.attributes['url.full']).endsWith('/headers?split=1')),
      );
    }
  });

  it('a connection closed mid-request harms nothing; the next request is injected again', async () => {
    const r = await py.send({ kind: 'raw', port: backendPort, chunks: [b64('GET /headers HTTP/1.1\r\nHost: x\r\n')], read: false });
    expect(r.error).toBeUndefined();
    expect(echoedTraceparents(await getHeaders())).toHaveLength(1);
  });

  it('a request with a 100 KB body, sent as head + body chunks: one header inserted, every other byte identical', async () => {
    const bodyBytes = Buffer.alloc(100_000);
    for (let i = 0; i < bodyBytes.length; i++) bodyBytes[i] = (i * 7 + 13) & 0xff;
    const head = `POST /upload?x=1 HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bodyBytes.length}\r\nX-Keep: a  b\t c\r\n\r\n`;
    const chunks = [Buffer.from(head), bodyBytes.subarray(0, 30_000), bodyBytes.subarray(30_000)];
    const r = await py.send({ kind: 'raw', port: echoPort, chunks: chunks.map(b64), gap_ms: 20 });
    expect(r.error).toBeUndefined();
    const got = Buffer.from(r.data ?? '', 'base64');
    const lineEnd = head.indexOf('\r\n') + 2;
    const inserted = got.subarray(lineEnd, lineEnd + 70).toString('latin1');
    expect(inserted).toMatch(/^traceparent: 00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\r\n$/);
    const withoutHeader = Buffer.concat([got.subarray(0, lineEnd), got.subarray(lineEnd + 70)]);
    expect(withoutHeader.equals(Buffer.concat(chunks))).toBe(true);
  });

  it('head and 100 KB body in one send, and a request pipelined behind that body (past the 1 KiB the tracer frames): the first request gets the header, the rest is identical', async () => {
    const bodyBytes = Buffer.alloc(100_000, 0x5a);
    const req1 = `PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: ${bodyBytes.length}\r\n\r\n`;
    const req2 = 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n';
    for (const sent of [Buffer.concat([Buffer.from(req1), bodyBytes]), Buffer.concat([Buffer.from(req1), bodyBytes, Buffer.from(req2)])]) {
      const r = await py.send({ kind: 'raw', port: echoPort, chunks: [b64(sent)] });
      const got = Buffer.from(r.data ?? '', 'base64');
      const lineEnd = req1.indexOf('\r\n') + 2;
      expect(got.subarray(lineEnd, lineEnd + 70).toString('latin1')).toMatch(/^traceparent: 00-[0-9a-f]{32}-[0-9a-f]{16}-01\r\n$/);
      expect(Buffer.concat([got.subarray(0, lineEnd), got.subarray(lineEnd + 70)]).equals(sent)).toBe(true);
    }
  });

  it('counts the skips', async () => {
    const c = await agent.kernelCounters();
    await agent.stop();
    expect(c.sk_inject_done).toBeGreaterThanOrEqual(2);
    expect(c.sk_inject_skip_line_too_long).toBeGreaterThanOrEqual(1);
    expect(c.sk_inject_skip_head_too_long).toBeGreaterThanOrEqual(1);
    expect(c.sk_inject_skip_push_failed ?? 0).toBe(0);
    expect(c.sk_inject_split_done).toBe(2);
  });
});
