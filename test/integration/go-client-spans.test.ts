/**
 * Go client spans on the locked-down host kernel (bpf_probe_write_user forbidden), with the default
 * go.client_path (syscall here; uprobes where headers are written into memory, as in the VM suite):
 * client spans are reported with the right attributes and in-process parents (same goroutine,
 * spawned goroutine), an application's own traceparent is respected, transport errors that happen
 * before the request is written (connection refused) are ERROR spans under the server span, and
 * the agent says that memory injection falls back (to socket-level sk_msg injection, whose header
 * must be exactly the reported client span). A grandchild goroutine's call is linked by the uprobe
 * client path (opt-in: go.client_path uprobes) and starts its own trace on the syscall path (never
 * a wrong parent). Memory injection itself is proven in the VM suite (make test-vm).
 */
import { echoedTraceparents, frontendPair, goChainForSuite } from './helpers/go-chain';
import { freePort } from './helpers/collector';
import { waitFor } from './helpers/processes';
import { lockedDown } from './helpers/privileges';
import type { GoToolchain } from '../helpers/go-build';

describe.each(['local', 'go1.22.12'] as GoToolchain[])('Go client spans on the host (Go %s)', (toolchain) => {
  const chain = goChainForSuite(toolchain);

  it('reports which injection strategy is in effect', async () => {
    // Under lockdown the socket-level path (sock_ops + sk_msg) injects instead (test/integration/sk-inject-go.test.ts).
    const method = lockedDown() ? 'sk_msg' : 'go_memory';
    expect(await chain().agent.metric('spanbridge_header_injection', { runtime: 'go', method })).toBe(1);
    if (lockedDown()) {
      // The log line is the feature here: the start-up report tells the user why memory writes are off.
      expect(chain().agent.stderr()).toMatch(/memory write\): UNAVAILABLE .*bpf_probe_write_user forbidden \(lockdown=integrity/);
    }
  });

  const clientPath = async () => (await chain().agent.processes()).find((p) => p.pid === chain().frontend.pid)?.clientSpans;

  it('the client spans take the syscall path by default where headers are not written into memory', async () => {
    expect(await clientPath()).toBe(lockedDown() ? 'syscall' : 'uprobes');
  });

  it.each(['/sync', '/async'])('%s: the CLIENT span is a child of the frontend SERVER span', async (route) => {
    const r = await chain().get(route, '/headers');
    expect(r.status).toBe(200);
    const pair = await waitFor(`${route} pair`, () => {
      const p = frontendPair(chain().agent.spans(), chain().frontend.pid, route);
      return p.length === 1 && p[0].client && p[0];
    });
    const c = pair.client!;
    // Injected (sk_msg under lockdown, memory writes elsewhere): exactly the reported client span.
    expect(echoedTraceparents(r.body)).toEqual([`00-${c.traceId}-${c.spanId}-01`]);
    expect(c.kind).toBe('CLIENT');
    expect(c.traceId).toBe(pair.server.traceId);
    expect(c.parentSpanId).toBe(pair.server.spanId);
    expect(c.name).toBe('GET');
    expect(c.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.full': `http://127.0.0.1:${chain().backendPort}/headers`,
      'server.address': '127.0.0.1',
      'server.port': chain().backendPort,
      'http.response.status_code': 200,
    });
    expect(c.status.code).toBe('UNSET');
    expect(BigInt(c.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(pair.server.startTimeUnixNano));
    expect(BigInt(c.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(pair.server.endTimeUnixNano));
  });

  it('/nested (two goroutines below the handler): a child on the uprobe path, its own trace on the syscall path (never a wrong parent)', async () => {
    const r = await chain().get('/nested', '/headers');
    expect(r.status).toBe(200);
    const [tp] = echoedTraceparents(r.body);
    const spanId = tp.split('-')[2];
    const c = await waitFor('nested client span', () => chain().agent.spans().find((s) => s.kind === 'CLIENT' && s.spanId === spanId));
    const server = await waitFor('nested server span', () => frontendPair(chain().agent.spans(), chain().frontend.pid, '/nested')[0]?.server);
    if ((await clientPath()) === 'syscall') {
      expect(c.traceId).not.toBe(server.traceId);
    } else {
      expect(c.traceId).toBe(server.traceId);
      expect(c.parentSpanId).toBe(server.spanId);
    }
  });

  it('an application-set traceparent is respected: sent as is, and it is the client span context', async () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const r = await chain().get('/app-tp', '/headers', { tp });
    expect(echoedTraceparents(r.body)).toEqual([tp]);
    const c = await waitFor('app client span', () => chain().agent.spans().find((s) => s.kind === 'CLIENT' && s.traceId === '4bf92f3577b34da6a3ce929d0e0e4736'));
    expect(c.spanId).toBe('00f067aa0ba902b7');
    // The backend continues the application's trace.
    const b = await waitFor('backend span', () => chain().agent.spans().find((s) => s.kind === 'SERVER' && s.parentSpanId === '00f067aa0ba902b7'));
    expect(b.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('a transport error gives an ERROR client span without a status code', async () => {
    const closed = await freePort();
    const r = await chain().get('/fail', `/x`, { target: `http://127.0.0.1:${closed}/nothing` });
    expect(r.status).toBe(502);
    const c = await waitFor('error client span', () =>
      chain().agent.spans().find((s) => s.kind === 'CLIENT' && String(s.attributes['url.full']).includes(`:${closed}/nothing`)),
    );
    expect(c.status.code).toBe('ERROR');
    expect(c.attributes['error.type']).toBe('_OTHER');
    expect(c.attributes['http.response.status_code']).toBeUndefined();
    expect(c.attributes['url.full']).toBe(`http://127.0.0.1:${closed}/nothing`);
    expect(c.attributes['server.port']).toBe(closed);
    // Under the frontend's SERVER span, inside it, on either path.
    const server = await waitFor('/fail server span', () => frontendPair(chain().agent.spans(), chain().frontend.pid, '/fail')[0]?.server);
    expect(c.traceId).toBe(server.traceId);
    expect(c.parentSpanId).toBe(server.spanId);
    expect(BigInt(c.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(server.startTimeUnixNano));
    expect(BigInt(c.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(c.startTimeUnixNano));
    expect(BigInt(c.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(server.endTimeUnixNano));
    // Exactly one span for the call (never one from each path, never one per error return).
    await new Promise((res) => setTimeout(res, 500));
    expect(chain().agent.spans().filter((s) => s.kind === 'CLIENT' && String(s.attributes['url.full']).includes(`:${closed}/`))).toHaveLength(1);
  });

  it('counts what it saw in the kernel and nothing was dropped', async () => {
    const counters = await chain().agent.kernelCounters();
    const path = await clientPath();
    await chain().agent.stop();
    // The uprobe path counts the application's own header at the header writer; the syscall path
    // sees it in the write and makes that span the application's (asserted above).
    if (path === 'uprobes') expect(counters.inject_skip_app_header).toBeGreaterThanOrEqual(1);
    expect(counters.drop_ringbuf_full ?? 0).toBe(0);
    expect(counters.drop_no_start ?? 0).toBe(0);
  });
});

// Deeper goroutine ancestry is opt-in: go.client_path uprobes (runtime.newproc1, up to 4 levels).
describe('Go client spans on the host with go.client_path uprobes (deeper ancestry)', () => {
  const chain = goChainForSuite('local', { agentEnv: { SPANBRIDGE_GO_CLIENT_PATH: 'uprobes' } });

  it('/nested: a call two goroutines below the handler is the frontend SERVER span\'s child', async () => {
    expect((await chain().agent.processes()).find((p) => p.pid === chain().frontend.pid)?.clientSpans).toBe('uprobes');
    const r = await chain().get('/nested', '/headers');
    expect(r.status).toBe(200);
    const pair = await waitFor('/nested pair', () => {
      const p = frontendPair(chain().agent.spans(), chain().frontend.pid, '/nested');
      return p.length === 1 && p[0].client && p[0];
    });
    expect(echoedTraceparents(r.body)).toEqual([`00-${pair.client!.traceId}-${pair.client!.spanId}-01`]);
    expect(pair.client!.traceId).toBe(pair.server.traceId);
  });
});
