/**
 * go.client_path syscall (issue 15 item 2): Go client spans from the syscall tracer, with no
 * uprobe per request: the request write finds its caller through the connection's persistConn
 * (recorded once per connection at (*persistConn).writeLoop entry) and the caller waiting on the
 * call's response channel (bpf/common/go_client_ctx.h).
 * What must hold as on the uprobe path: a call on the handler's goroutine or one it spawned is the
 * server span's child, with method, URL and status, and the header sk_msg inserts is exactly the
 * reported client span; the incoming tracestate goes along; the application's own traceparent is
 * respected (sent as is, and it is the client span's context); the backend's server span is the
 * client span's child and ends inside it (the client span covers the whole exchange); a call that
 * fails before it is written (connection refused) is an ERROR span under the server span, with its
 * URL; a request whose head outgrows the Transport's buffer is sent untouched and its span says
 * spanbridge.propagation=skipped. Four uprobes are attached to the process and none fires per
 * request (counted with the kernel's BPF statistics): (*conn).serve (per server connection),
 * persistConn.writeLoop (per client connection), (*Transport).dialConn (per new connection) and
 * net/http.stripPassword (per failed call); the agent runs with go.client_caller_probe_max_rate 0
 * (the roundTrip probe that names the caller of a request written ahead of it, one hit per call on
 * a slow caller by default, is go-client-caller-probe.test.ts's). What this path does not do (docs/limits.md): a call
 * two goroutines below the handler starts its own trace, never a wrong parent; an HTTPS call has
 * no span here, so a process that makes one moves its client spans to uprobes (its server spans
 * stay on syscalls).
 */
import http from 'node:http';
import { freePort } from './helpers/collector';
import { echoedTraceparents, frontendPair, goChainForSuite } from './helpers/go-chain';
import { buildGoApp } from '../helpers/go-build';
import { lockedDown, requireRootAndBpf } from './helpers/privileges';
import { agentProgStats, isUprobeProg, progDelta, withBpfStats } from '../../bench/lib/bpf-stats';
import { startAgent, startProcess, waitFor, waitForPort, type AgentProcess, type Running } from './helpers/processes';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const maybe = lockedDown() ? describe : describe.skip; // memory injection keeps the uprobe client path

maybe('Go client spans from syscalls (go.client_path syscall)', () => {
  const chain = goChainForSuite('local', { agentEnv: { SPANBRIDGE_GO_SERVER_PATH: 'syscall', SPANBRIDGE_GO_CLIENT_PATH: 'syscall', SPANBRIDGE_GO_CLIENT_CALLER_PROBE_MAX_RATE: '0' } });

  const getWith = (route: string, headers: Record<string, string>) =>
    new Promise<string>((resolve, reject) => {
      const q = new URLSearchParams({ target: `http://127.0.0.1:${chain().backendPort}/headers` });
      http
        .get({ host: '127.0.0.1', port: chain().frontendPort, path: `${route}?${q}`, agent: false, headers }, (res) => {
          let b = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => (b += d));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });

  it('the traced-processes report says which path the client spans take, and four uprobes are attached', async () => {
    const front = (await chain().agent.processes()).find((p) => p.pid === chain().frontend.pid);
    expect(front?.serverSpans).toBe('syscall');
    expect(front?.clientSpans).toBe('syscall');
    expect(front?.notes.join('; ')).toMatch(/client spans: syscall tracepoints \(no uprobe per request: one per connection at \(\*persistConn\)\.writeLoop/);
    expect(front?.probes).toBe(4);
  });

  it('a call that fails before its request is written (connection refused): an ERROR CLIENT span under the SERVER span, with its URL', async () => {
    const closed = await freePort();
    const target = `http://127.0.0.1:${closed}/refused?q=1`;
    const r = await chain().get('/fail', '/x', { target });
    expect(r.status).toBe(502);
    const c = await waitFor('error client span', () => chain().agent.spans().find((s) => s.kind === 'CLIENT' && String(s.attributes['url.full']).startsWith(`http://127.0.0.1:${closed}/`)));
    const server = await waitFor('/fail server span', () => frontendPair(chain().agent.spans(), chain().frontend.pid, '/fail').find((p) => p.client?.spanId === c.spanId)?.server);
    expect(c.traceId).toBe(server.traceId);
    expect(c.status.code).toBe('ERROR');
    expect(c.attributes).toMatchObject({ 'url.full': target, 'server.address': '127.0.0.1', 'server.port': closed, 'error.type': '_OTHER' });
    expect(c.attributes['http.response.status_code']).toBeUndefined();
    expect(BigInt(c.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(server.startTimeUnixNano));
    expect(BigInt(c.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(server.endTimeUnixNano));
  });

  it('a request whose head outgrows the Transport\'s 4 KiB buffer: sent untouched, and its CLIENT span says propagation was skipped', async () => {
    const r = await chain().get('/big', '/headers', { size: '6000' });
    expect(r.status).toBe(200);
    expect(echoedTraceparents(r.body)).toEqual([]);
    const pair = await waitFor('/big pair', () => {
      const p = frontendPair(chain().agent.spans(), chain().frontend.pid, '/big');
      return p.length === 1 && p[0].client && p[0];
    });
    expect(pair.client!.attributes['spanbridge.propagation']).toBe('skipped');
    expect(pair.client!.attributes['thread.id']).toBeDefined(); // the syscall path's span
    // A call that was injected carries no such attribute.
    const small = await chain().get('/big', '/headers', { size: '10' });
    const [tp] = echoedTraceparents(small.body);
    expect(tp).toBeDefined();
    const injected = await waitFor('injected client span', () => chain().agent.spans().find((s) => s.kind === 'CLIENT' && s.spanId === tp.split('-')[2]));
    expect(injected.attributes['spanbridge.propagation']).toBeUndefined();
  });

  it.each(['/sync', '/async'])('%s: the CLIENT span is the SERVER span\'s child, carries method/url/status, and is the header sent', async (route) => {
    const r = await chain().get(route, '/headers');
    expect(r.status).toBe(200);
    const pair = await waitFor(`${route} pair`, () => {
      const p = frontendPair(chain().agent.spans(), chain().frontend.pid, route);
      return p.length === 1 && p[0].client && p[0];
    });
    const c = pair.client!;
    expect(echoedTraceparents(r.body)).toEqual([`00-${c.traceId}-${c.spanId}-01`]);
    expect(c.traceId).toBe(pair.server.traceId);
    expect(c.parentSpanId).toBe(pair.server.spanId);
    expect(c.name).toBe('GET');
    expect(c.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.full': `http://127.0.0.1:${chain().backendPort}/headers`,
      'server.port': chain().backendPort,
      'http.response.status_code': 200,
    });
    expect(BigInt(c.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(pair.server.startTimeUnixNano));
    expect(BigInt(c.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(pair.server.endTimeUnixNano));
    const backend = await waitFor('backend span', () =>
      chain().agent.spans().find((s) => s.kind === 'SERVER' && s.resource['process.pid'] === chain().backend.pid && s.parentSpanId === c.spanId),
    );
    expect(backend.traceId).toBe(c.traceId);
    // The client span covers the whole exchange: the response is read after the backend wrote it.
    expect(BigInt(c.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(backend.endTimeUnixNano));
  });

  it('an incoming traceparent and tracestate: the CLIENT continues the trace and sends the tracestate on', async () => {
    const body = await getWith('/sync', { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'k=v' });
    const pair = await waitFor('pair', () => {
      const p = frontendPair(chain().agent.spans(), chain().frontend.pid, '/sync').filter((x) => x.server.traceId === TRACE);
      return p.length === 1 && p[0].client && p[0];
    });
    expect(pair.server.parentSpanId).toBe(PARENT);
    expect(pair.client!.parentSpanId).toBe(pair.server.spanId);
    expect(echoedTraceparents(body)).toEqual([`00-${TRACE}-${pair.client!.spanId}-01`]);
    expect(body.toLowerCase()).toContain('tracestate: k=v');
  });

  it('an application-set traceparent is respected: sent as is, and it is the client span context', async () => {
    const tp = '00-5bf92f3577b34da6a3ce929d0e0e4736-10f067aa0ba902b7-01';
    const r = await chain().get('/app-tp', '/headers', { tp });
    expect(echoedTraceparents(r.body)).toEqual([tp]);
    const c = await waitFor('app client span', () => chain().agent.spans().find((s) => s.kind === 'CLIENT' && s.traceId === '5bf92f3577b34da6a3ce929d0e0e4736'));
    expect(c.spanId).toBe('10f067aa0ba902b7');
  });

  it('a call two goroutines below the handler (depth 2) starts its own trace: never a wrong parent', async () => {
    const r = await chain().get('/nested', '/headers');
    expect(r.status).toBe(200);
    const [tp] = echoedTraceparents(r.body);
    const spanId = tp.split('-')[2];
    const c = await waitFor('nested client span', () => chain().agent.spans().find((s) => s.kind === 'CLIENT' && s.spanId === spanId));
    const server = frontendPair(chain().agent.spans(), chain().frontend.pid, '/nested')[0]?.server;
    expect(server).toBeDefined();
    expect(c.parentSpanId ?? '').not.toBe(server!.spanId);
    expect(c.traceId).not.toBe(server!.traceId);
  });

  it('keep-alive calls on one client connection each get their own span and parent', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 5; i++) await chain().get('/sync', '/items/7', {}, agent);
    } finally {
      agent.destroy();
    }
    const pairs = await waitFor('five pairs', () => {
      const p = frontendPair(chain().agent.spans(), chain().frontend.pid, '/sync').filter((x) => x.client?.attributes['url.full'] === `http://127.0.0.1:${chain().backendPort}/items/7`);
      return p.length === 5 && p;
    });
    for (const p of pairs) expect(p.client!.traceId).toBe(p.server.traceId);
    expect(new Set(pairs.map((p) => p.client!.spanId)).size).toBe(5);
  });

  it('no uprobe fires per request (kernel BPF statistics of the agent\'s programs), and every call of the handler or its goroutine is linked from its write', async () => {
    // Keep-alive on both sides: the frontend's connection and its Transport's connection to the
    // backend exist before the counting, so only per-request probes could run.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await chain().get('/sync', '/items/warm', {}, agent);
      await chain().get('/async', '/items/warm', {}, agent);
      const before0 = await chain().agent.kernelCounters();
      const N = 40;
      const runs = await withBpfStats(async () => {
        const before = agentProgStats(chain().agent.pid);
        for (let i = 0; i < N; i++) await chain().get(i % 2 ? '/async' : '/sync', `/items/count-${i}`, {}, agent);
        return progDelta(before, agentProgStats(chain().agent.pid));
      });
      const uprobes = runs.filter(isUprobeProg);
      expect(uprobes.map((p) => [p.name, p.runs])).toEqual([]);
      // The syscall path did run (the counting works): the frontend's reads and writes at least.
      expect(runs.filter((p) => !isUprobeProg(p)).reduce((n, p) => n + p.runs, 0)).toBeGreaterThan(N);
      const url = (i: number) => `http://127.0.0.1:${chain().backendPort}/items/count-${i}`;
      const clients = await waitFor(`${N} client spans`, () => {
        const c = [...Array(N).keys()].map((i) => chain().agent.spans().find((s) => s.kind === 'CLIENT' && s.attributes['url.full'] === url(i)));
        return c.every((x) => x) && c;
      });
      const after = await chain().agent.kernelCounters();
      const delta = (k: string) => (after[k] ?? 0) - (before0[k] ?? 0);
      // Each call's parent is the SERVER span of its own request (its query names the call's
      // target), or, when the writer goroutine ran before the caller parked (counted), none.
      let linked = 0;
      for (const [i, c] of clients.entries()) {
        const server = chain().agent.spans().find((s) => s.kind === 'SERVER' && s.spanId === c!.parentSpanId);
        if (!server) {
          expect(c!.parentSpanId || '').toBe('');
          continue;
        }
        linked++;
        expect(server.resource['process.pid']).toBe(chain().frontend.pid);
        expect(server.attributes['url.path']).toBe(i % 2 ? '/async' : '/sync');
        expect(decodeURIComponent(String(server.attributes['url.query']))).toMatch(new RegExp(`/items/count-${i}$`));
        expect(c!.traceId).toBe(server.traceId);
      }
      expect(delta('sys_http_link_go_client')).toBe(linked);
      expect(linked + delta('sys_http_skip_go_client_unparked')).toBe(N);
      expect(linked).toBeGreaterThanOrEqual(N / 2);
      expect(delta('sys_http_skip_go_client_stale')).toBe(0);
    } finally {
      agent.destroy();
    }
  });

  it('nothing was dropped and no Go client span came from the uprobe path', async () => {
    const counters = await chain().agent.kernelCounters();
    const spans = chain().agent.spans();
    await chain().agent.stop();
    expect(counters.drop_ringbuf_full ?? 0).toBe(0);
    expect(counters.drop_read_failed ?? 0).toBe(0);
    expect(counters.drop_state_map_full ?? 0).toBe(0);
    // Spans of the syscall path carry the thread id (the uprobe path's do not): no double reporting.
    // The one call that failed before writing has its span from the failed-call probe (no thread).
    const clients = spans.filter((s) => s.kind === 'CLIENT' && s.resource['process.pid'] === chain().frontend.pid);
    expect(clients.length).toBeGreaterThan(0);
    expect(clients.filter((s) => s.attributes['thread.id'] === undefined).map((s) => s.attributes['url.full'])).toEqual([expect.stringMatching(/\/refused\?q=1$/)]);
  });
});

maybe('Go client spans from syscalls: a process that makes HTTPS calls', () => {
  let backend: Running | undefined;
  let front: Running | undefined;
  let agent: AgentProcess | undefined;
  let [port, tlsPort, frontPort] = [0, 0, 0];
  beforeAll(async () => {
    requireRootAndBpf();
    [port, tlsPort, frontPort] = [await freePort(), await freePort(), await freePort()];
    backend = startProcess(buildGoApp('goserver'), ['-addr', `127.0.0.1:${port}`, '-tls-addr', `127.0.0.1:${tlsPort}`]);
    front = startProcess(buildGoApp('gochain'), ['-addr', `127.0.0.1:${frontPort}`]);
    await waitForPort(port, 60_000);
    await waitForPort(tlsPort, 60_000);
    await waitForPort(frontPort, 60_000);
    agent = await startAgent(['--pid', String(front.pid), '--export', 'none'], { SPANBRIDGE_GO_SERVER_PATH: 'syscall', SPANBRIDGE_GO_CLIENT_PATH: 'syscall' }, 120_000);
  }, 180_000);
  afterAll(async () => {
    await agent?.stop();
    await front?.stop();
    await backend?.stop();
  });

  const call = (target: string) =>
    new Promise<number>((resolve, reject) => {
      const q = new URLSearchParams({ target });
      http
        .get({ host: '127.0.0.1', port: frontPort, path: `/sync?${q}`, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
  const clientSpans = (url: string) => agent!.spans().filter((s) => s.kind === 'CLIENT' && s.attributes['url.full'] === url);

  it('clear-text calls: client spans from the syscall path', async () => {
    expect((await agent!.processes()).find((p) => p.pid === front!.pid)?.clientSpans).toBe('syscall');
    const url = `http://127.0.0.1:${port}/items/1`;
    expect(await call(url)).toBe(200);
    const c = await waitFor('clear-text client span', () => clientSpans(url)[0]);
    expect(c.attributes['thread.id']).toBeDefined(); // made by the syscall path
  });

  it('after an HTTPS call the client spans move to uprobes (the server spans stay), and HTTPS calls get spans', async () => {
    // The test server's certificate is self-signed: the call fails after the TLS handshake began.
    expect(await call(`https://127.0.0.1:${tlsPort}/items/2`)).toBe(502);
    await waitFor('the move to uprobes', async () => (await agent!.processes()).find((p) => p.pid === front!.pid)?.clientSpans === 'uprobes', 30_000);
    // The log line is the feature too: a warning that tells the user why the path changed.
    expect(agent!.stderr()).toMatch(/made HTTPS calls .*its client spans come from uprobes from now on/);
    const proc = (await agent!.processes()).find((p) => p.pid === front!.pid);
    expect(proc?.serverSpans).toBe('syscall');
    const https = `https://127.0.0.1:${tlsPort}/items/3`;
    expect(await call(https)).toBe(502);
    const e = await waitFor('HTTPS client span', () => clientSpans(https)[0]);
    expect(e.status.code).toBe('ERROR');
    expect(e.attributes['thread.id']).toBeUndefined(); // made by the uprobe path
    const url = `http://127.0.0.1:${port}/items/4`;
    expect(await call(url)).toBe(200);
    const c = await waitFor('clear-text client span after the move', () => clientSpans(url)[0]);
    expect(c.attributes['thread.id']).toBeUndefined();
    const server = agent!.spans().find((s) => s.kind === 'SERVER' && s.spanId === c.parentSpanId);
    expect(server?.traceId).toBe(c.traceId);
    // one client span per call: never one from each path
    await new Promise((r) => setTimeout(r, 1000));
    expect(clientSpans(url)).toHaveLength(1);
  });
});
