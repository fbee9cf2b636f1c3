/**
 * go.server_path syscall: Go HTTP/1 server spans from syscall tracepoints, the goroutine read from
 * the thread's TLS, for a frontend linked three ways (static, cgo with libc, PIE), each calling a
 * backend. What must hold on this path as on the uprobe one: the server span continues an incoming
 * traceparent and has the ServeMux route; client calls made on the handler's goroutine or one it
 * spawned are its children, and the header injected into them is exactly the reported client span
 * (a call two goroutines down starts its own trace with the default go.client_path syscall: depth 1);
 * the backend's server span is that client span's child; no per-request uprobe is attached; the
 * kernel read every request's goroutine and route.
 */
import http from 'node:http';
import https from 'node:https';
import { freePort } from './helpers/collector';
import { echoedTraceparents, frontendPair, goChainForSuite } from './helpers/go-chain';
import { buildGoApp, type GoLink } from '../helpers/go-build';
import { requireRootAndBpf } from './helpers/privileges';
import { startAgent, startProcess, waitFor, waitForPort, type AgentProcess, type Running } from './helpers/processes';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

describe.each(['static', 'cgo', 'pie'] as GoLink[])('Go server spans from syscalls (frontend %s)', (link) => {
  const chain = goChainForSuite('local', { frontendLink: link, agentEnv: { SPANBRIDGE_GO_SERVER_PATH: 'syscall' } });

  it('the traced-processes report says which path each Go process got', async () => {
    const front = (await chain().agent.processes()).find((p) => p.pid === chain().frontend.pid);
    expect(front?.serverSpans).toBe('syscall');
    expect(front?.notes.join('; ')).toMatch(/server spans: syscall tracepoints \(.*g at fs-8; no per-request uprobe\)/);
  });

  it('/nested (a call two goroutines down): SERVER continues the incoming trace, with its route; the CLIENT starts its own trace, which the backend continues', async () => {
    const q = new URLSearchParams({ target: `http://127.0.0.1:${chain().backendPort}/headers` });
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: chain().frontendPort, path: `/nested?${q}`, agent: false, headers: { traceparent: `00-${TRACE}-${PARENT}-01` } }, (res) => {
          let b = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => (b += d));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });
    const server = await waitFor('/nested server', () => frontendPair(chain().agent.spans(), chain().frontend.pid, '/nested').find((x) => x.server.traceId === TRACE)?.server);
    expect(server.parentSpanId).toBe(PARENT);
    expect(server.attributes['http.route']).toBe('/nested');
    const [tp] = echoedTraceparents(body);
    const client = await waitFor('nested client', () => chain().agent.spans().find((s) => s.kind === 'CLIENT' && s.spanId === tp.split('-')[2]));
    expect(client.traceId).not.toBe(TRACE);
    const backend = await waitFor('backend span', () => chain().agent.spans().find((s) => s.kind === 'SERVER' && s.resource['process.pid'] === chain().backend.pid && s.parentSpanId === client.spanId));
    expect(backend.traceId).toBe(client.traceId);
  });

  it.each(['/sync', '/async'])('%s: SERVER continues the incoming trace, with its route; CLIENT is its child; backend is the CLIENT\'s', async (route) => {
    const q = new URLSearchParams({ target: `http://127.0.0.1:${chain().backendPort}/headers` });
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: chain().frontendPort, path: `${route}?${q}`, agent: false, headers: { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'k=v' } }, (res) => {
          let b = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => (b += d));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });
    const pair = await waitFor(`${route} pair`, () => {
      const p = frontendPair(chain().agent.spans(), chain().frontend.pid, route).filter((x) => x.server.traceId === TRACE);
      return p.length === 1 && p[0].client && p[0];
    });
    const { server, client } = pair;
    expect(server.parentSpanId).toBe(PARENT);
    expect(server.traceState).toBe('k=v');
    expect(server.attributes['http.route']).toBe(route);
    expect(server.attributes['spanbridge.route.source']).toBe('framework');
    expect(server.name).toBe(`GET ${route}`);
    expect(client!.traceId).toBe(TRACE);
    expect(client!.parentSpanId).toBe(server.spanId);
    expect(echoedTraceparents(body)).toEqual([`00-${TRACE}-${client!.spanId}-01`]);
    expect(body.toLowerCase()).toContain('tracestate: k=v');
    const backend = await waitFor('backend span', () =>
      chain().agent.spans().find((s) => s.kind === 'SERVER' && s.resource['process.pid'] === chain().backend.pid && s.parentSpanId === client!.spanId),
    );
    expect(backend.traceId).toBe(TRACE);
  });

  it('keep-alive requests on one connection get a span each, every one with its own route', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (const route of ['/sync', '/fail', '/sync']) {
        await chain().get(route, '/headers', {}, agent);
      }
    } finally {
      agent.destroy();
    }
    await waitFor('three keep-alive spans', () => {
      const mine = chain()
        .agent.spans()
        .filter((s) => s.kind === 'SERVER' && s.resource['process.pid'] === chain().frontend.pid && s.traceId !== TRACE);
      const fail = mine.filter((s) => s.attributes['http.route'] === '/fail');
      return fail.length >= 1 && mine.filter((s) => s.attributes['http.route'] === '/sync').length >= 2;
    });
  });

  it('read every goroutine and route in the kernel', async () => {
    const counters = await chain().agent.kernelCounters();
    await chain().agent.stop();
    // /metrics lists every counter, zeros too: none of these may have counted anything.
    expect(Object.entries(counters).filter(([k, n]) => n > 0 && /go_goid_unread|go_route_unread/.test(k))).toEqual([]);
  });
});

describe('Go server spans from syscalls: a server that also serves HTTPS', () => {
  let app: Running | undefined;
  let agent: AgentProcess | undefined;
  let port = 0;
  let tlsPort = 0;
  beforeAll(async () => {
    requireRootAndBpf();
    [port, tlsPort] = [await freePort(), await freePort()];
    app = startProcess(buildGoApp('goserver'), ['-addr', `127.0.0.1:${port}`, '-tls-addr', `127.0.0.1:${tlsPort}`]);
    await waitForPort(port, 60_000);
    await waitForPort(tlsPort, 60_000);
    agent = await startAgent(['--pid', String(app.pid), '--export', 'none'], { SPANBRIDGE_GO_SERVER_PATH: 'syscall' }, 120_000);
  }, 180_000);
  afterAll(async () => {
    await agent?.stop();
    await app?.stop();
  });

  const get = (secure: boolean, path: string) =>
    new Promise<number>((resolve, reject) => {
      const mod = secure ? https : http;
      mod
        .get({ host: '127.0.0.1', port: secure ? tlsPort : port, path, agent: false, rejectUnauthorized: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
  const serverSpan = (path: string) => agent!.spans().find((s) => s.kind === 'SERVER' && s.attributes['url.path'] === path);

  it('HTTP/1 in clear text: spans from the syscall path', async () => {
    expect(await get(false, '/items/1')).toBe(200);
    const s = await waitFor('clear-text span', () => serverSpan('/items/1'));
    expect(s.attributes['http.route']).toBe('/items/{id}');
    expect(s.attributes['thread.id']).toBeDefined(); // made by the syscall path
  });

  it('after an HTTPS connection the process moves to uprobes, and HTTPS requests get spans', async () => {
    expect(await get(true, '/items/2')).toBe(200);
    await waitFor('the move to uprobes', async () => (await agent!.processes()).find((p) => p.pid === app!.pid)?.serverSpans === 'uprobes', 30_000);
    // The log line is the feature too: a warning that tells the user why the path changed.
    expect(agent!.stderr()).toMatch(/its server spans come from uprobes from now on/);
    expect(await get(true, '/items/3')).toBe(200);
    const s = await waitFor('HTTPS span', () => serverSpan('/items/3'));
    expect(s.attributes['http.route']).toBe('/items/{id}');
    expect(s.attributes['thread.id']).toBeUndefined(); // made by the uprobe path
    expect(await get(false, '/items/4')).toBe(200);
    await waitFor('clear-text span after the move', () => serverSpan('/items/4'));
    // one span per request: never one from each path
    await new Promise((r) => setTimeout(r, 1000));
    expect(agent!.spans().filter((x) => x.kind === 'SERVER' && x.attributes['url.path'] === '/items/4')).toHaveLength(1);
  });
});
