/**
 * Bad input on traced ports (real kernel, real services): TLS-looking bytes, binary garbage, half
 * requests, 20 KB headers, non-HTTP protocols, HTTP/2 preface. No bogus spans, no crash, the
 * skips counted in the kernel; then the per-connection state limit: connections beyond it are not
 * tracked (counted), and tracking resumes once they close.
 */
import { randomBytes } from 'node:crypto';
import { freePort } from './helpers/collector';
import { startAgent, startProcess, waitFor, waitForPort, type AgentProcess, type Running } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';
import { buildCServer, httpRequest, observeOnlyArgs, rawExchange, startServers, type Lang, type LangServer } from './helpers/any-language';
import { copyBinary } from '../helpers/go-build';
import net from 'node:net';

const NOISE_LANGS: Lang[] = ['python', 'c', 'node'];

function tlsClientHello(): Buffer {
  const body = randomBytes(300);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x01, 0x2c, 0x01, 0x00, 0x01, 0x28, 0x03, 0x03]), body]);
}

describe('any-language tracing under bad input', () => {
  let agent: AgentProcess;
  const servers = new Map<Lang, LangServer>();
  const bigStatus = new Map<number, number>();

  beforeAll(async () => {
    requireRootAndBpf();
    await startServers(servers, NOISE_LANGS, (lang) => `noise-${lang}`);
    agent = await startAgent([...observeOnlyArgs([...servers.values()].map((s) => s.proc.pid)), '--export', 'none']);
    for (const { port } of servers.values()) {
      await rawExchange(port, [tlsClientHello()]);
      await rawExchange(port, [randomBytes(4096)]);
      await rawExchange(port, ['GET /half HTTP/1.1\r\nHost: x'], { waitMs: 200 });
      await rawExchange(port, ['*1\r\n$4\r\nPING\r\n']);
      await rawExchange(port, ['EHLO mail.example\r\n']);
      await rawExchange(port, ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n']);
      await rawExchange(port, [Buffer.concat([Buffer.from('GET /'), randomBytes(64), Buffer.from('\r\n\r\n')])]);
      await rawExchange(port, ['get /lower HTTP/1.1\r\n\r\n']);
      // A request head split into many small writes, then a 20 KB header, then a normal request.
      await rawExchange(port, ['GET /sp', 'lit HTTP/1.1\r\n', 'Host: a\r\n', 'Connection: close\r\n', '\r\n'], { gapMs: 30, waitMs: 800 });
      // 20 KB of headers (10 x 2 KB): accepted (200) or refused with 431 (Node's 16 KB limit).
      const headers: Record<string, string> = {};
      for (let i = 0; i < 10; i++) headers[`x-big-${i}`] = 'v'.repeat(2048);
      const big = await httpRequest(port, '/big-headers', { headers });
      bigStatus.set(port, big.status);
      expect([200, 431]).toContain(big.status);
      expect((await httpRequest(port, '/after-noise')).status).toBe(200);
    }
  }, 180_000);

  afterAll(async () => {
    if (agent && agent.proc.exitCode === null) await agent.stop();
    for (const s of servers.values()) await s.proc.stop();
  });

  it.each(NOISE_LANGS)('%s: spans only for the real requests', async (lang) => {
    const { service, port } = servers.get(lang)!;
    const spansOf = (): string[] =>
      agent
        .spans()
        .filter((s) => s.resource['service.name'] === service)
        .map((s) => String(s.attributes['url.path']))
        .sort();
    await waitFor(`${lang} spans`, () => spansOf().includes('/after-noise'), 20_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(spansOf()).toEqual(['/after-noise', '/big-headers', '/split']);
    const big = agent.spans().find((s) => s.resource['service.name'] === service && s.attributes['url.path'] === '/big-headers')!;
    expect(big.attributes['http.response.status_code']).toBe(bigStatus.get(port));
    expect(big.attributes['spanbridge.request.head_truncated']).toBe(true);
    for (const s of agent.spans()) {
      expect(s.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(String(s.attributes['http.request.method'])).toMatch(/^(GET|POST)$/);
    }
  });

  it('the agent keeps running and counts what it skipped', async () => {
    expect(agent.proc.exitCode).toBeNull();
    const k = await agent.kernelCounters();
    expect(await agent.stop()).toBe(0);
    expect(k.sys_http_skip_not_http).toBeGreaterThanOrEqual(NOISE_LANGS.length * 4);
    expect(k.sys_http_skip_capture_truncated).toBeGreaterThan(0);
    expect(k.sys_http_drop_ringbuf_full ?? 0).toBe(0);
  });
});

describe('per-connection state limit', () => {
  it('tracks at most the configured number of connections, counts the rest, frees state at close and at process exit', async () => {
    requireRootAndBpf();
    // A uniquely named copy of the C server, selected by name, so a restarted server is followed.
    const name = `limit-c-${randomBytes(4).toString('hex')}`;
    const bin = copyBinary(buildCServer(), name);
    const start = async (): Promise<{ proc: Running; port: number }> => {
      const port = await freePort();
      const proc = startProcess(bin, [String(port)], { OTEL_SERVICE_NAME: 'limit-c' });
      await waitForPort(port);
      return { proc, port };
    };
    let server = await start();
    const agent = await startAgent(['--exe', name, '--export', 'none'], {
      SPANBRIDGE_SYS_HTTP_MAX_CONNECTIONS: '4',
    });
    const sockets: net.Socket[] = [];
    const hold = async (port: number, n: number, tag: string): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => undefined);
        await new Promise((r) => s.once('connect', r));
        sockets.push(s);
        await new Promise<void>((resolve) => {
          s.once('data', () => resolve());
          s.write(`GET /${tag}/${i} HTTP/1.1\r\nHost: a\r\n\r\n`);
        });
      }
    };
    const paths = (prefix: string): string[] => agent.spans().map((s) => String(s.attributes['url.path'])).filter((p) => p.startsWith(prefix));
    try {
      // 10 connections open at once, one request each: only 4 are tracked.
      await hold(server.port, 10, 'held');
      await waitFor('spans of tracked connections', () => paths('/held/').length >= 4, 15_000);
      await new Promise((r) => setTimeout(r, 500));
      expect(paths('/held/')).toHaveLength(4);
      for (const s of sockets.splice(0)) s.destroy();
      await new Promise((r) => setTimeout(r, 300));
      // State was freed at close: new connections are tracked again.
      expect((await httpRequest(server.port, '/after-close')).status).toBe(200);
      await waitFor('span after close', () => paths('/after-close').length === 1, 15_000);

      // Fill the table again, then kill the server: it never closes those fds itself, the
      // kernel side frees them at process exit, so its successor is traced.
      await hold(server.port, 4, 'again');
      await server.proc.stop('SIGKILL');
      for (const s of sockets.splice(0)) s.destroy();
      server = await start();
      const restarted = server.proc.pid;
      await waitFor('restart attached', async () => (await agent.processes()).some((p) => p.pid === restarted), 15_000);
      expect((await httpRequest(server.port, '/after-exit')).status).toBe(200);
      await waitFor('span after process exit', () => paths('/after-exit').length === 1, 15_000);
      expect((await agent.kernelCounters()).sys_http_drop_conn_state_full).toBe(6);
    } finally {
      for (const s of sockets) s.destroy();
      const code = await agent.stop();
      await server.proc.stop();
      expect(code).toBe(0);
    }
  });
});
