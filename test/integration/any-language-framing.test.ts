/**
 * HTTP/1.x framing on real servers through syscall tracepoints: pipelined requests arriving in one
 * read (ids from the kernel's spare ids), chunked responses ending at their last chunk, a request
 * head written byte-group by byte-group, bodies much larger than the capture, and a thread-per-
 * request server calling out on keep-alive connections (each call a child of its own request).
 */
import http from 'node:http';
import { freePort } from './helpers/collector';
import path from 'node:path';
import { startAgent, startProcess, waitFor, type AgentProcess, type PrintedSpanLine, type Running } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';
import { APPS, httpRequest, observeOnlyArgs, rawExchange, startServers, type Lang, type LangServer } from './helpers/any-language';

const LANGS: Lang[] = ['python', 'c', 'node'];

describe('any-language HTTP/1.x framing (syscall tracepoints)', () => {
  let agent: AgentProcess;
  const servers = new Map<Lang, LangServer>();
  const replies = new Map<Lang, string>();
  const v6 = { port: 0, proc: undefined as Running | undefined };
  let lateReply = '';

  beforeAll(async () => {
    requireRootAndBpf();
    await startServers(servers, LANGS, (lang) => `framing-${lang}`);
    v6.port = await freePort();
    v6.proc = startProcess(process.execPath, [path.join(APPS, 'node-http', 'server.js'), String(v6.port), '::1'], { OTEL_SERVICE_NAME: 'node-v6' });
    await waitFor('node on ::1', () => v6.proc!.stdout().includes('listening'), 15_000);
    agent = await startAgent([...observeOnlyArgs([...servers.values(), v6].map((s) => s.proc!.pid)), '--export', 'none']);
    for (const lang of LANGS) {
      const { port } = servers.get(lang)!;
      // Three requests in one write: the server reads them in one go.
      const pipelined = ['/pipe/1', '/pipe/2', '/pipe/3'].map((p) => `GET ${p} HTTP/1.1\r\nHost: a\r\n\r\n`).join('');
      const got = await rawExchange(port, [pipelined], { waitMs: 1500 });
      replies.set(lang, got.toString('latin1'));
      // A large upload and a large download (far beyond the 1 KiB capture).
      const ka = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const up = await httpRequest(port, '/upload', { method: 'POST', body: 'u'.repeat(200_000), headers: { 'content-type': 'text/plain' }, agent: ka });
      expect(up.status).toBe(200);
      expect(up.body.length).toBe(200_000);
      expect((await httpRequest(port, '/after-upload', { agent: ka })).status).toBe(200);
      ka.destroy();
    }
    // Pipelined in a later read: the second request arrives (and Node reads it at once) while
    // the first is still being handled.
    lateReply = (
      await rawExchange(servers.get('node')!.port, ['GET /sleep?ms=300 HTTP/1.1\r\nHost: a\r\n\r\n', 'GET /pipe-late HTTP/1.1\r\nHost: a\r\n\r\n'], {
        gapMs: 50,
        waitMs: 1500,
      })
    ).toString('latin1');
    for (const lang of ['python', 'node'] as const) {
      const r = await httpRequest(servers.get(lang)!.port, '/chunked');
      expect(r.status).toBe(200);
    }
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    for (const s of servers.values()) await s.proc.stop();
    await v6.proc?.stop();
  });

  const spansOf = (lang: Lang): PrintedSpanLine[] => agent.spans().filter((s) => s.resource['service.name'] === servers.get(lang)!.service);

  it.each(LANGS)('%s: pipelined requests give one span each, in order, with distinct kernel ids', async (lang) => {
    const answered = (replies.get(lang)!.match(/HTTP\/1\.[01] 200/g) ?? []).length;
    const paths = (): string[] => spansOf(lang).map((s) => String(s.attributes['url.path'])).filter((p) => p.startsWith('/pipe/'));
    await waitFor(`${lang} pipelined spans`, () => paths().length >= answered, 15_000);
    await new Promise((r) => setTimeout(r, 300));
    // Each server answers all three (Node and Python read them in one go; C as well).
    expect(answered).toBe(3);
    expect(paths()).toEqual(['/pipe/1', '/pipe/2', '/pipe/3']);
    const pipe = spansOf(lang).filter((s) => String(s.attributes['url.path']).startsWith('/pipe/'));
    expect(new Set(pipe.map((s) => s.spanId)).size).toBe(3);
    expect(new Set(pipe.map((s) => s.traceId)).size).toBe(3);
  });

  it('node: a request pipelined in a later read (first still running) gets its own span', async () => {
    expect((lateReply.match(/HTTP\/1\.1 200/g) ?? []).length).toBe(2);
    await waitFor('late pipelined span', () => spansOf('node').some((s) => s.attributes['url.path'] === '/pipe-late'), 15_000);
    const slow = spansOf('node').find((s) => s.attributes['url.path'] === '/sleep')!;
    const late = spansOf('node').find((s) => s.attributes['url.path'] === '/pipe-late')!;
    expect(late.spanId).not.toBe(slow.spanId);
    expect(late.traceId).not.toBe(slow.traceId);
    expect(BigInt(late.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(slow.endTimeUnixNano));
  });

  it.each(LANGS)('%s: a 200 KB upload is one span and the next request on the connection is framed', async (lang) => {
    await waitFor(`${lang} after-upload`, () => spansOf(lang).some((s) => s.attributes['url.path'] === '/after-upload'), 15_000);
    const up = spansOf(lang).filter((s) => String(s.attributes['url.path']).startsWith('/upload'));
    expect(up).toHaveLength(1);
    expect(up[0].attributes['http.request.method']).toBe('POST');
    expect(up[0].attributes['http.response.status_code']).toBe(200);
  });

  it('IPv6: Python -> Node over ::1 is one trace (tuple read from the IPv6 sockets)', async () => {
    const r = await httpRequest(servers.get('python')!.port, `/call?url=${encodeURIComponent(`http://[::1]:${v6.port}/items/v6`)}`);
    expect(r.body).toBe('200 ok /items/v6');
    const found = await waitFor(
      'spans over ::1',
      () => {
        const c = spansOf('python').find((s) => s.kind === 'CLIENT' && String(s.attributes['url.full']).includes('/items/v6'));
        const srv = agent.spans().find((s) => s.resource['service.name'] === 'node-v6' && s.attributes['url.path'] === '/items/v6');
        return c && srv ? { c, srv } : undefined;
      },
      15_000,
    );
    expect(found.c.attributes['network.peer.address']).toBe('::1');
    expect(found.c.attributes['network.peer.port']).toBe(v6.port);
    expect(found.c.attributes['spanbridge.parent.source']).toBe('thread');
    expect(found.srv.attributes['network.peer.address']).toBe('::1');
    expect(found.srv.parentSpanId).toBe(found.c.spanId);
    expect(found.srv.traceId).toBe(found.c.traceId);
  });

  it.each(['python', 'node'] as const)('%s: a chunked response ends at its last chunk', async (lang) => {
    const span = await waitFor(`${lang} chunked`, () => spansOf(lang).find((s) => s.attributes['url.path'] === '/chunked'), 15_000);
    expect(span.attributes['http.response.status_code']).toBe(200);
    const durNs = BigInt(span.endTimeUnixNano) - BigInt(span.startTimeUnixNano);
    if (lang === 'node') expect(durNs).toBeGreaterThanOrEqual(4_000_000n); // the last chunk is written 5 ms later
  });
});
