/**
 * Any-language HTTP/1.x tracing from syscall tracepoints, end to end on the real kernel: servers in
 * Python (http.server, threads), Node (http), Java (com.sun.net.httpserver, pool) and C (threads,
 * read/write), nobody instrumented, the agent CLI with --inject-headers off, the stock Collector.
 * Then chains across processes joined into one trace by same-node black-box correlation and
 * thread linking only (no header changes).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { startCollector, freePort, type FlatSpan, type RunningCollector } from './helpers/collector';
import { startAgent, startProcess, waitFor, waitForPort, type AgentProcess, type PrintedSpanLine, type Running } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';
import { heuristicRoute } from '../../src/spans/routes/heuristic';
import { APPS, httpRequest, observeOnlyArgs, startServers, type Lang, type LangServer } from './helpers/any-language';
import { buildGoApp } from '../helpers/go-build';

const LANGS: Lang[] = ['python', 'node', 'java', 'c'];
const hex = (n: number): string => randomBytes(n).toString('hex');

interface Case {
  readonly path: string;
  readonly method: string;
  readonly status: number;
  readonly body?: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
}

function plan(tag: string): Case[] {
  return [
    { path: `/items/${tag}1?x=1&y=two`, method: 'GET', status: 200 },
    { path: `/items/${tag}2`, method: 'GET', status: 200, traceparent: `00-${hex(16)}-${hex(8)}-01`, tracestate: 'vendor=v1,other=x' },
    { path: '/fail', method: 'GET', status: 500 },
    { path: '/missing', method: 'GET', status: 404 },
    { path: `/echo-${tag}`, method: 'POST', status: 200, body: 'x'.repeat(3000) },
    // Malformed traceparent (uppercase) -> a new root.
    { path: `/items/${tag}bad`, method: 'GET', status: 200, traceparent: `00-${hex(16).toUpperCase()}-${hex(8)}-01` },
  ];
}

describe('any-language HTTP/1.x server spans (syscall tracepoints)', () => {
  let collector: RunningCollector;
  let agent: AgentProcess;
  const servers = new Map<Lang, LangServer>();
  const sent = new Map<Lang, Case[]>();
  let goApp: Running;
  let goPort: number;
  let pyClient: Running;
  let nodeClient: Running;
  let chainPython: { port: number } | undefined;

  beforeAll(async () => {
    requireRootAndBpf();
    collector = await startCollector();
    await startServers(servers, LANGS, (lang) => `${lang}-svc`);
    goPort = await freePort();
    goApp = startProcess(buildGoApp('goserver'), ['-addr', `127.0.0.1:${goPort}`], { OTEL_SERVICE_NAME: 'go-svc' });
    await waitForPort(goPort);
    const nodePort = servers.get('node')!.port;
    const pyPort = servers.get('python')!.port;
    chainPython = { port: pyPort };
    // Clients that wait for SIGUSR2, so they are traced from their first connection.
    pyClient = startProcess('python3', [path.join(APPS, 'python-http', 'client.py'), `http://127.0.0.1:${nodePort}/items/from-python`], {
      OTEL_SERVICE_NAME: 'python-client',
    });
    nodeClient = startProcess(
      process.execPath,
      [path.join(APPS, 'node-http', 'client.js'), `http://127.0.0.1:${pyPort}/call?url=${encodeURIComponent(`http://127.0.0.1:${goPort}/items/from-chain`)}`],
      { OTEL_SERVICE_NAME: 'node-client' },
    );
    await waitFor('clients ready', () => pyClient.stdout().includes('ready') && nodeClient.stdout().includes('ready'), 20_000);

    const pids = [...[...servers.values()].map((s) => s.proc.pid), goApp.pid, pyClient.pid, nodeClient.pid];
    agent = await startAgent([...observeOnlyArgs(pids), '--otlp-endpoint', collector.endpoint]);
    for (const lang of LANGS) {
      const { port } = servers.get(lang)!;
      const cases = plan(lang);
      sent.set(lang, cases);
      // One keep-alive connection per server: request boundaries on a reused connection.
      const ka = new http.Agent({ keepAlive: true, maxSockets: 1 });
      for (const c of cases) {
        const headers: Record<string, string> = {};
        if (c.traceparent) headers.traceparent = c.traceparent;
        if (c.tracestate) headers.tracestate = c.tracestate;
        if (c.body) headers['content-type'] = 'text/plain';
        const r = await httpRequest(port, c.path, { method: c.method, headers, body: c.body, agent: ka });
        expect(r.status).toBe(c.status);
        if (c.body) expect(r.body).toBe(c.body);
      }
      ka.destroy();
    }
  }, 240_000);

  afterAll(async () => {
    await agent?.stop();
    for (const s of servers.values()) await s.proc.stop();
    await goApp?.stop();
    await pyClient?.stop();
    await nodeClient?.stop();
    await collector?.stop();
  });

  const serverSpans = (service: string): PrintedSpanLine[] =>
    agent.spans().filter((s) => s.resource['service.name'] === service && s.kind === 'SERVER');

  it.each(LANGS)('%s: one correct SERVER span per request', async (lang) => {
    const { service, port, proc } = servers.get(lang)!;
    const cases = sent.get(lang)!;
    await waitFor(`${lang} spans`, () => serverSpans(service).length >= cases.length, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    const spans = serverSpans(service);
    expect(spans).toHaveLength(cases.length);
    for (const c of cases) {
      const [p, q] = c.path.split('?');
      const matches = spans.filter((s) => s.attributes['url.path'] === p);
      expect(matches).toHaveLength(1);
      const s = matches[0];
      // No framework route from syscalls: the heuristic one (src/spans/routes), e.g. /items/{id}.
      expect(s.attributes['http.route']).toBe(heuristicRoute(p));
      expect(s.attributes['spanbridge.route.source']).toBe('heuristic');
      expect(s.name).toBe(`${c.method} ${heuristicRoute(p)}`);
      expect(s.attributes['http.request.method']).toBe(c.method);
      expect(s.attributes['http.response.status_code']).toBe(c.status);
      expect(s.attributes['url.scheme']).toBe('http');
      expect(s.attributes['url.query']).toBe(q);
      expect(s.attributes['server.port']).toBe(port);
      expect(s.attributes['network.peer.address']).toBe('127.0.0.1');
      expect(s.attributes['network.protocol.version']).toBe('1.1');
      expect(s.status.code).toBe(c.status >= 500 ? 'ERROR' : 'UNSET');
      if (c.status >= 500) expect(s.attributes['error.type']).toBe(String(c.status));
      expect(s.resource['process.pid']).toBe(proc.pid);
      expect(s.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(s.spanId).toMatch(/^[0-9a-f]{16}$/);
      if (c.traceparent && c.traceparent === c.traceparent.toLowerCase()) {
        const [, traceId, parent] = c.traceparent.split('-');
        expect(s.traceId).toBe(traceId);
        expect(s.parentSpanId).toBe(parent);
        expect(s.traceState).toBe(c.tracestate ?? '');
      } else {
        expect(s.parentSpanId).toBe('');
      }
      const dur = BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano);
      expect(dur).toBeGreaterThanOrEqual(0n);
      expect(dur).toBeLessThan(10_000_000_000n);
      expect(Math.abs(Number(BigInt(s.startTimeUnixNano) / 1_000_000n) - Date.now())).toBeLessThan(300_000);
    }
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(spans.length);
  });

  it('Python client -> Node server: one trace by black-box correlation', async () => {
    pyClient.proc.kill('SIGUSR2');
    await waitFor('python client done', () => pyClient.stdout().includes('done'), 20_000);
    expect(pyClient.stdout()).toContain('done 200');
    const [client, server] = await waitFor(
      'chain spans',
      () => {
        const c = agent.spans().find((s) => s.resource['service.name'] === 'python-client' && s.kind === 'CLIENT');
        const s = agent.spans().find((x) => x.resource['service.name'] === 'node-svc' && x.attributes['url.path'] === '/items/from-python');
        return c && s ? [c, s] : undefined;
      },
      20_000,
    );
    expect(client.parentSpanId).toBe('');
    expect(client.attributes['url.full']).toBe(`http://127.0.0.1:${servers.get('node')!.port}/items/from-python`);
    expect(client.attributes['http.response.status_code']).toBe(200);
    expect(server.traceId).toBe(client.traceId);
    expect(server.parentSpanId).toBe(client.spanId);
    expect(server.attributes['spanbridge.parent.source']).toBe('blackbox');
    expect(BigInt(server.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(client.startTimeUnixNano));
  });

  it('Node client -> Python server -> Python client -> Go server: one trace', async () => {
    nodeClient.proc.kill('SIGUSR2');
    await waitFor('node client done', () => nodeClient.stdout().includes('done'), 20_000);
    expect(nodeClient.stdout()).toContain('done 200');
    const find = (pred: (s: PrintedSpanLine) => boolean): PrintedSpanLine | undefined => agent.spans().find(pred);
    const chain = await waitFor(
      'chain spans',
      () => {
        const nodeC = find((s) => s.resource['service.name'] === 'node-client' && s.kind === 'CLIENT');
        const pyS = find((s) => s.resource['service.name'] === 'python-svc' && s.attributes['url.path'] === '/call');
        const pyC = find((s) => s.resource['service.name'] === 'python-svc' && s.kind === 'CLIENT');
        const goS = find((s) => s.resource['service.name'] === 'go-svc' && s.attributes['url.path'] === '/items/from-chain');
        return nodeC && pyS && pyC && goS ? { nodeC, pyS, pyC, goS } : undefined;
      },
      20_000,
    );
    const { nodeC, pyS, pyC, goS } = chain;
    expect(nodeC.parentSpanId).toBe('');
    expect(pyS.traceId).toBe(nodeC.traceId);
    expect(pyS.parentSpanId).toBe(nodeC.spanId);
    expect(pyC.traceId).toBe(nodeC.traceId);
    expect(pyC.parentSpanId).toBe(pyS.spanId);
    expect(pyC.attributes['spanbridge.parent.source']).toBe('thread');
    expect(goS.traceId).toBe(nodeC.traceId);
    expect(goS.parentSpanId).toBe(pyC.spanId);
    // The Go server is reported once, by the Go tracer (not also by the syscall path).
    expect(agent.spans().filter((s) => s.resource['service.name'] === 'go-svc' && s.attributes['url.path'] === '/items/from-chain')).toHaveLength(1);
    expect(goS.resource['process.runtime.name']).toBe('go');
    void chainPython;
  });

  it('Python -> Go over one keep-alive connection: every request linked (not only the first)', async () => {
    const pyPort = servers.get('python')!.port;
    for (const i of [1, 2, 3]) {
      const r = await httpRequest(pyPort, `/call?keepalive=1&url=${encodeURIComponent(`http://127.0.0.1:${goPort}/items/ka${i}`)}`);
      expect(r.body).toBe(`200 {"id":"ka${i}"}`);
    }
    for (const i of [1, 2, 3]) {
      const pair = await waitFor(
        `keep-alive call ${i}`,
        () => {
          const c = agent.spans().find((s) => s.kind === 'CLIENT' && String(s.attributes['url.full']).endsWith(`/items/ka${i}`));
          const g = agent.spans().find((s) => s.resource['service.name'] === 'go-svc' && s.attributes['url.path'] === `/items/ka${i}`);
          return c && g ? { c, g } : undefined;
        },
        20_000,
      );
      expect(pair.g.traceId).toBe(pair.c.traceId);
      expect(pair.g.parentSpanId).toBe(pair.c.spanId);
    }
    // One connection carried the three calls.
    const ports = agent.spans().filter((s) => s.kind === 'CLIENT' && String(s.attributes['url.full']).includes('/items/ka'));
    expect(ports).toHaveLength(3);
  });

  it('thread linking in a Java pool; in Node (event loop) by its async ids, never by thread', async () => {
    const javaPort = servers.get('java')!.port;
    const nodePort = servers.get('node')!.port;
    const pyPort = servers.get('python')!.port;
    const r1 = await httpRequest(javaPort, `/call?url=${encodeURIComponent(`http://127.0.0.1:${nodePort}/items/from-java`)}`);
    expect(r1.body).toBe('200 ok /items/from-java');
    const r2 = await httpRequest(nodePort, `/call?url=${encodeURIComponent(`http://127.0.0.1:${pyPort}/items/from-node`)}`);
    expect(r2.body).toBe('200 ok /items/from-node');
    const find = (pred: (s: PrintedSpanLine) => boolean): PrintedSpanLine | undefined => agent.spans().find(pred);
    const got = await waitFor(
      'java and node call spans',
      () => {
        const javaS = find((s) => s.resource['service.name'] === 'java-svc' && s.attributes['url.path'] === '/call');
        const javaC = find((s) => s.resource['service.name'] === 'java-svc' && s.kind === 'CLIENT');
        const nodeS1 = find((s) => s.resource['service.name'] === 'node-svc' && s.attributes['url.path'] === '/items/from-java');
        const nodeS = find((s) => s.resource['service.name'] === 'node-svc' && s.attributes['url.path'] === '/call');
        const nodeC = find((s) => s.resource['service.name'] === 'node-svc' && s.kind === 'CLIENT');
        const pyS = find((s) => s.resource['service.name'] === 'python-svc' && s.attributes['url.path'] === '/items/from-node');
        return javaS && javaC && nodeS1 && nodeS && nodeC && pyS ? { javaS, javaC, nodeS1, nodeS, nodeC, pyS } : undefined;
      },
      20_000,
    );
    // Java: server -> client on the same pool thread -> Node server (black-box): one trace.
    expect(got.javaC.parentSpanId).toBe(got.javaS.spanId);
    expect(got.javaC.traceId).toBe(got.javaS.traceId);
    expect(got.javaC.attributes['spanbridge.parent.source']).toBe('thread');
    expect(got.nodeS1.parentSpanId).toBe(got.javaC.spanId);
    expect(got.nodeS1.traceId).toBe(got.javaS.traceId);
    // Node: the client call is tied to the request not by thread but by node's async ids
    // (docs/limits.md: made in the handler's callback), and the server it calls is its child.
    expect(got.nodeC.parentSpanId).toBe(got.nodeS.spanId);
    expect(got.nodeC.traceId).toBe(got.nodeS.traceId);
    expect(got.nodeC.attributes['spanbridge.parent.source']).toBe('node_async');
    expect(got.pyS.parentSpanId).toBe(got.nodeC.spanId);
    expect(got.pyS.traceId).toBe(got.nodeC.traceId);
  });

  it("a client request carrying the application's own traceparent keeps those ids (never a second context)", async () => {
    const nodePort = servers.get('node')!.port;
    const traceId = hex(16);
    const appSpan = hex(8);
    const tp = `00-${traceId}-${appSpan}-01`;
    const r = await httpRequest(servers.get('python')!.port, `/call?url=${encodeURIComponent(`http://127.0.0.1:${nodePort}/items/app-tp`)}&tp=${encodeURIComponent(tp)}`);
    expect(r.body).toBe('200 ok /items/app-tp');
    const found = await waitFor(
      'app traceparent spans',
      () => {
        const c = agent.spans().find((s) => s.kind === 'CLIENT' && String(s.attributes['url.full']).endsWith('/items/app-tp'));
        const srv = agent.spans().find((s) => s.resource['service.name'] === 'node-svc' && s.attributes['url.path'] === '/items/app-tp');
        return c && srv ? { c, srv } : undefined;
      },
      20_000,
    );
    expect(found.c.traceId).toBe(traceId);
    expect(found.c.spanId).toBe(appSpan);
    expect(found.c.attributes['spanbridge.parent.source']).toBe('application');
    expect(found.srv.traceId).toBe(traceId);
    expect(found.srv.parentSpanId).toBe(appSpan);
    expect(found.srv.attributes['spanbridge.parent.source']).toBe('traceparent');
  });

  it('delivers the spans to the stock Collector over OTLP', async () => {
    const printed = agent.spans();
    const fromCollector: FlatSpan[] = await collector.waitForSpans((s) => s.length >= printed.length, 30_000);
    const byId = new Map(fromCollector.map((s) => [s.spanId, s]));
    for (const p of printed) {
      const c = byId.get(p.spanId);
      expect(c).toBeDefined();
      expect(c!.traceId).toBe(p.traceId);
      expect(c!.parentSpanId).toBe(p.parentSpanId);
      expect(c!.kind).toBe(p.kind);
      expect(c!.status.code).toBe(p.status.code);
      expect(c!.resource['service.name']).toBe(p.resource['service.name']);
    }
  });
});
