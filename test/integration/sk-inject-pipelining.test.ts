/**
 * Socket-level injection for an HTTP/1.1 client that pipelines (any kernel: the client is not Go): a traced
 * Python process writes several requests before reading any response, to a Go server whose
 * /headers echoes the request headers it received (Go serves pipelined requests in order).
 *
 * - several requests in ONE send: the syscall tracer frames them (Content-Length bodies included)
 *   and decides a client span for each; sk_msg writes each one's header into the same send;
 * - requests in SEPARATE sends before any response: each send carries its own pending context;
 * - the header the server saw is exactly the CLIENT span the agent reported for that request, in
 *   the order the responses came back; never more requests than the kernel had ids for.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_GO_SERVER_PATH } from '../../src/tracers/go-server-path';
import { buildGoApp } from '../helpers/go-build';
import { freePort } from './helpers/collector';
import { echoedTraceparents } from './helpers/go-chain';
import { startAgent, startProcess, waitFor, waitForPort, type AgentProcess, type Running } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';
import { b64, startPyClient, type PyClient } from './helpers/py-raw-client';
import { captureSegments } from './helpers/segments';

/** The Go server's spans come from the syscall tracer (go.server_path). */
const GO_SYSCALL = (process.env.SPANBRIDGE_GO_SERVER_PATH ?? DEFAULT_GO_SERVER_PATH) === 'syscall';
const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

interface Response {
  readonly status: number;
  readonly body: string;
}

/** Splits the bytes of several HTTP/1.1 responses (each with Content-Length) in order. */
function splitResponses(raw: Buffer): Response[] {
  const out: Response[] = [];
  let at = 0;
  while (at < raw.length) {
    const headEnd = raw.indexOf('\r\n\r\n', at, 'latin1');
    if (headEnd < 0) throw new Error(`incomplete response head at ${at}: ${raw.toString('latin1', at, at + 200)}`);
    const head = raw.toString('latin1', at, headEnd);
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
    if (!status || Number.isNaN(len)) throw new Error(`unexpected response head: ${head}`);
    out.push({ status, body: raw.toString('latin1', headEnd + 4, headEnd + 4 + len) });
    at = headEnd + 4 + len;
  }
  return out;
}

describe('sk_msg injection into pipelined HTTP/1.1 requests (non-Go client: every kernel)', () => {
  let backend: Running;
  let backendPort: number;
  let agent: AgentProcess;
  let py: PyClient;
  let metricsPort: number;

  beforeAll(async () => {
    requireRootAndBpf();
    backendPort = await freePort();
    backend = startProcess(buildGoApp('goserver'), ['-addr', `127.0.0.1:${backendPort}`]);
    await waitForPort(backendPort, 60_000);
    py = startPyClient(mkdtempSync(path.join(os.tmpdir(), 'sk-inject-pipe-')));
    metricsPort = await freePort();
    agent = await startAgent(
      ['--pid', String(py.pid), '--pid', String(backend.pid), '--export', 'none', '--prometheus-port', String(metricsPort)],
      {},
      120_000,
    );
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    await py?.stop();
    await backend?.stop();
  });

  const get = (p: string, last = false): string => `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1:${backendPort}\r\n${last ? 'Connection: close\r\n' : ''}\r\n`;
  /** A GET with a body (legal HTTP; the Go /headers handler takes GET only): framed by Content-Length. */
  const withBody = (p: string, body: string): string =>
    `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1:${backendPort}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

  /** Sends the chunks (one send each) on one connection, reads until the server closes. */
  async function pipeline(chunks: string[], gapMs = 0): Promise<Response[]> {
    const r = await py.send({ kind: 'raw', port: backendPort, chunks: chunks.map(b64), gap_ms: gapMs, half_close: false });
    expect(r.error).toBeUndefined();
    return splitResponses(Buffer.from(r.data ?? '', 'base64'));
  }

  /** Each echoed traceparent must be the reported CLIENT span of that request (url path, status). */
  async function expectReported(responses: Response[], paths: string[]): Promise<{ traceId: string; spanId: string }[]> {
    const ids = responses.map((r) => {
      const tps = echoedTraceparents(r.body);
      expect(tps).toHaveLength(1);
      const m = TP.exec(tps[0]);
      expect(m).not.toBeNull();
      return { traceId: m![1], spanId: m![2] };
    });
    for (const [i, id] of ids.entries()) {
      const client = await waitFor(`client span ${paths[i]}`, () =>
        agent.spans().find((s) => s.kind === 'CLIENT' && s.resource['process.pid'] === py.pid && s.spanId === id.spanId),
      );
      expect(client.traceId).toBe(id.traceId);
      expect(String(client.attributes['url.full'])).toMatch(new RegExp(`${paths[i].replace('?', '\\?')}$`));
      expect(client.attributes['http.response.status_code']).toBe(200);
      // The Go server continued exactly that context.
      const server = await waitFor(`server span ${paths[i]}`, () =>
        agent.spans().find((s) => s.kind === 'SERVER' && s.resource['process.pid'] === backend.pid && s.parentSpanId === id.spanId),
      );
      expect(server.traceId).toBe(id.traceId);
    }
    expect(new Set(ids.map((i) => i.spanId)).size).toBe(ids.length);
    return ids;
  }

  it('four requests in one send (one with a body): each gets its own header, the reported client span, one trace, one segment', async () => {
    const paths = ['/headers?n=1', '/headers?n=2', '/headers?n=3', '/headers?n=4'];
    const send = get(paths[0]) + withBody(paths[1], 'hello=world') + get(paths[2]) + get(paths[3], true);
    const wire = await captureSegments(mkdtempSync(path.join(os.tmpdir(), 'sk-inject-seg-')), backendPort);
    const responses = await pipeline([send]);
    // The send leaves as ONE segment with the four inserted lines ("traceparent: <55>\r\n", 70
    // bytes each): lines left as scatterlist elements of their own would go out as 9 segments,
    // and a server reading between them would see a head cut where a header goes in.
    expect(await wire.stop()).toEqual([Buffer.byteLength(send) + 4 * 70]);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(responses[1].body).toMatch(/^content-length: 11$/m); // the body was framed, not taken for a request
    const ids = await expectReported(responses, paths);
    // One write, one decision: the kernel gave all four the same trace (a new root here).
    expect(new Set(ids.map((i) => i.traceId)).size).toBe(1);
  });

  it('requests in separate sends before any response: each send its own header and span', async () => {
    const paths = ['/headers?s=1', '/headers?s=2', '/headers?s=3'];
    const responses = await pipeline([get(paths[0]), withBody(paths[1], 'abc'), get(paths[2], true)], 30);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    await expectReported(responses, paths);
  });

  it("a request sent while the previous one's handler runs: its own span, though Go's 1-byte background read takes its first byte", async () => {
    // net/http reads one byte ahead while a handler runs (connReader.backgroundRead); the rest of
    // the request comes in the next read, after the first response: the syscall path holds the byte.
    const paths = ['/headers?sleep=400&b=1', '/headers?b=2'];
    const responses = await pipeline([get(paths[0]), get(paths[1], true)], 150);
    expect(responses.map((r) => r.status)).toEqual([200, 200]);
    await expectReported(responses, paths);
  });

  it('a fifth request in one send is beyond the kernel ids: forwarded without a header, counted, no span with made-up ids', async () => {
    const paths = [1, 2, 3, 4, 5].map((n) => `/headers?f=${n}`);
    const responses = await pipeline([paths.map((p, i) => get(p, i === 4)).join('')]);
    expect(responses).toHaveLength(5);
    await expectReported(responses.slice(0, 4), paths.slice(0, 4));
    expect(echoedTraceparents(responses[4].body)).toEqual([]);
    expect(responses[4].body).toMatch(/^connection: close$/m);
    // The fifth has no client span (its server span is a new trace of the Go server's own).
    await new Promise((r) => setTimeout(r, 1500));
    expect(agent.spans().filter((s) => s.kind === 'CLIENT' && String(s.attributes['url.full']).endsWith('/headers?f=5'))).toEqual([]);
  });

  it('counts pipelined injections in the kernel and the one request beyond the ids in user space', async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    // The client's fifth request in one send; on the syscall path also the Go server's fifth in one
    // read (the kernel decides 3 behind the first: bpf/sys_http/sys_http_pipelined.h).
    const beyond = GO_SYSCALL ? 2 : 1;
    expect(metrics).toMatch(new RegExp(`^spanbridge_sys_http_exchanges_dropped_total\\{reason="pipelined_beyond_spare_ids"\\} ${beyond}$`, 'm'));
    const c = await agent.kernelCounters();
    await agent.stop();
    expect(c.sk_inject_pipelined_done).toBe(6); // 3 (first test) + 3 (third test)
    expect(c.sk_inject_pipelined_skipped ?? 0).toBe(0);
    expect(c.sk_inject_skip_push_failed ?? 0).toBe(0);
  });
});
