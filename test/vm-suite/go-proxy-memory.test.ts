/**
 * Go's standard-library reverse proxy and client (build/frameworks/go-proxy) with memory injection
 * (bpf_probe_write_user), INSIDE the lockdown-free guest (`make test-vm`), in front of a second
 * go-proxy whose /headers echoes (any method) the traceparent it received:
 * - a forwarded incoming traceparent is replaced in the proxy's own buffer by its CLIENT span's id
 *   (one header; the CLIENT span is the SERVER span's child);
 * - client requests with bodies (POST, PUT, streamed) carry the CLIENT span's header.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { startFramework, type FrameworkService } from '../integration/helpers/frameworks';
import { startAgent, waitFor, type AgentProcess } from '../integration/helpers/processes';
import { requireGuest } from './guest';

function send(url: string, method: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers }, (res) => {
      let b = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The traceparent values the backend's JSON echo names ("" when none; a second header joins with ","). */
function echoedTraceparents(body: string): string[] {
  const v = /"traceparent":\s*"([^"]*)"/.exec(body)?.[1] ?? '';
  return v === '' ? [] : v.split(/,\s*/);
}

describe('Go reverse proxy and client bodies with memory injection', () => {
  let backend: FrameworkService;
  let backendPort: number;
  let proxy: FrameworkService;
  let agent: AgentProcess;

  beforeAll(async () => {
    requireGuest();
    backend = await startFramework('go-proxy', 'go-backend');
    backendPort = backend.port;
    proxy = await startFramework('go-proxy', 'go-proxy', { upstream: backend.url });
    agent = await startAgent(['--pid', String(proxy.proc.pid), '--pid', String(backend.proc.pid), '--export', 'none'], {}, 600_000);
    expect(agent.stderr()).toMatch(/header injection: Go memory writes/);
  }, 900_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([proxy?.proc.stop(), backend?.proc.stop()]);
  }, 120_000);

  async function clientSpanOf(spanId: string) {
    return waitFor(`client span ${spanId}`, () => agent.spans().find((s) => s.kind === 'CLIENT' && s.spanId === spanId), 120_000, 250);
  }

  it('a forwarded traceparent is replaced by the CLIENT span id, in place', async () => {
    for (const method of ['GET', 'POST']) {
      const traceId = randomBytes(16).toString('hex');
      const caller = randomBytes(8).toString('hex');
      const r = await send(`${proxy.url}/up/headers`, method, method === 'POST' ? 'z'.repeat(500) : undefined, { traceparent: `00-${traceId}-${caller}-01` });
      expect(r.status).toBe(200);
      const tps = echoedTraceparents(r.body);
      expect(tps).toHaveLength(1);
      const [, t, id] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(tps[0])!;
      expect(t).toBe(traceId);
      expect(id).not.toBe(caller);
      const c = await clientSpanOf(id);
      expect(c.attributes['spanbridge.propagation']).toBe('replaced');
      // The SERVER span ends after its CLIENT span and comes on another ring (the syscall tracer's):
      // wait for it rather than race it.
      const server = await waitFor(`server span ${c.parentSpanId}`, () => agent.spans().find((s) => s.spanId === c.parentSpanId), 120_000, 250);
      expect(server?.kind).toBe('SERVER');
      expect(server?.parentSpanId).toBe(caller);
    }
  });

  it.each([
    ['POST', ''],
    ['PUT', ''],
    ['POST', '&stream=1'],
  ])('client %s%s with a body: one header = the CLIENT span', async (method, extra) => {
    const target = encodeURIComponent(`http://127.0.0.1:${backendPort}/headers`);
    const r = await send(`${proxy.url}/call?url=${target}${extra}`, method, 'w'.repeat(1500));
    expect(r.status).toBe(200);
    const tps = echoedTraceparents(r.body);
    expect(tps).toHaveLength(1);
    const id = tps[0].split('-')[2];
    const c = await clientSpanOf(id);
    expect(c.attributes['spanbridge.propagation']).toBe('injected');
    expect(c.attributes['http.request.method']).toBe(method);
  });

  it('counts', async () => {
    const counters = await agent.kernelCounters();
    await agent.stop();
    expect(counters.inject_forwarded).toBe(2);
    expect(counters.inject_done).toBeGreaterThanOrEqual(3);
  }, 60_000);
});
