/**
 * go.client_path syscall, Go's standard-library reverse proxy (build/frameworks/go-proxy, no tracing
 * code) forwarding the incoming traceparent (httputil.ReverseProxy copies every header) on a
 * connection whose caller the syscall tracer cannot find: a connection the proxy held from before
 * the attach and did not use while the roundTrip probe was attached, so the probe went away before
 * its next call (sys_http_skip_go_client_no_conn; the same holds for a caller not yet parked in a
 * process without the probe). The agent runs with go.client_caller_probe_max_rate 0 (the probe only
 * adopts connections), so it goes after 256 calls however slow they are.
 *
 * What must hold (docs/limits.md, go.client_path): the forwarded value is never taken for the
 * proxy's own span. Its CLIENT span has an id of its own; its parent is the proxy's SERVER span
 * that received that traceparent when exactly one request of the process did, else (a second
 * request came in with the same value) the forwarded parent itself; the downstream receives the
 * CLIENT span's id in place of the forwarded value (one header), so its SERVER span's parent is a
 * span of the trace; no span id twice.
 */
import http from 'node:http';
import { callUrl, startFramework, type FrameworkService } from './helpers/frameworks';
import { lockedDown, requireRootAndBpf } from './helpers/privileges';
import { startAgent, waitFor, type AgentProcess } from './helpers/processes';
import { untilAdoptionProbeAway } from './helpers/go-adoption';
import { randomBytes } from 'node:crypto';

const maybe = lockedDown() ? describe : describe.skip; // sk_msg replaces the forwarded value

interface Echo {
  readonly status: number;
  readonly traceparent: string;
}

/** GET `url` on a connection of its own (no keep-alive: a server goroutine per request). */
const get = (url: string, headers: Record<string, string> = {}) =>
  new Promise<Echo>((resolve, reject) => {
    http
      .get(url, { headers, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          let traceparent = '';
          try {
            traceparent = (JSON.parse(body) as { traceparent?: string }).traceparent ?? '';
          } catch {
            /* not the /headers answer */
          }
          resolve({ status: res.statusCode ?? 0, traceparent });
        });
      })
      .on('error', reject);
  });

maybe('Go reverse proxy forwarding a traceparent on a call whose caller is not found (go.client_path syscall)', () => {
  let proxy: FrameworkService;
  let down: FrameworkService;
  let quiet: FrameworkService;
  let agent: AgentProcess;

  /** Calls through the proxy's Transport to another host until the roundTrip probe goes away
   * (256 calls with no write from an unknown connection), leaving the held connections to `down`
   * unknown. */
  const quietCalls = () =>
    untilAdoptionProbeAway(agent, async () => {
      expect((await get(callUrl(proxy, `${quiet.url}/headers`))).status).toBe(200);
    });
  const traceparentOf = (traceId: string, spanId: string) => `00-${traceId}-${spanId}-01`;
  const fresh = () => ({ traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex') });
  const proxyPid = () => proxy.proc.pid;
  const spansOf = (traceId: string) => agent.spans().filter((s) => s.traceId === traceId);

  beforeAll(async () => {
    requireRootAndBpf();
    down = await startFramework('go-proxy', 'go-down');
    quiet = await startFramework('go-proxy', 'go-quiet');
    proxy = await startFramework('go-proxy', 'go-proxy', { upstream: down.url });
    // Connections from the proxy to the downstream exist before the agent (two at once: the
    // Transport keeps two idle per host).
    const before = await Promise.all([1, 2, 3, 4].map(() => get(`${proxy.url}/up/headers`)));
    expect(before.map((e) => e.status)).toEqual([200, 200, 200, 200]);
    agent = await startAgent(['--pid', String(proxy.proc.pid), '--pid', String(down.proc.pid), '--export', 'none'], { SPANBRIDGE_GO_SERVER_PATH: 'syscall', SPANBRIDGE_GO_CLIENT_PATH: 'syscall', SPANBRIDGE_GO_CLIENT_CALLER_PROBE_MAX_RATE: '0' }, 120_000);
    expect((await agent.processes()).find((p) => p.pid === proxyPid())?.clientSpans).toBe('syscall');
  }, 300_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([proxy?.proc.stop(), down?.proc.stop(), quiet?.proc.stop()]);
  });

  it('one request: the CLIENT span is its SERVER span\'s child with an id of its own, and the downstream receives that id', async () => {
    await quietCalls();
    const before = await agent.kernelCounters();
    const up = fresh();
    const echo = await get(`${proxy.url}/up/headers`, { traceparent: traceparentOf(up.traceId, up.spanId) });
    expect(echo.status).toBe(200);
    const spans = await waitFor('the proxy\'s SERVER and CLIENT spans and the downstream\'s SERVER span', () => {
      const t = spansOf(up.traceId);
      const server = t.find((s) => s.kind === 'SERVER' && s.resource['process.pid'] === proxyPid());
      const client = t.find((s) => s.kind === 'CLIENT' && s.resource['process.pid'] === proxyPid());
      const downstream = t.find((s) => s.kind === 'SERVER' && s.resource['process.pid'] === down.proc.pid);
      return server && client && downstream && { server, client, downstream };
    });
    const after = await agent.kernelCounters();
    // The call was on a connection the syscall tracer did not know: the case under test.
    expect((after.sys_http_skip_go_client_no_conn ?? 0) - (before.sys_http_skip_go_client_no_conn ?? 0)).toBe(1);
    expect(spans.server.parentSpanId).toBe(up.spanId);
    expect(spans.client.spanId).not.toBe(up.spanId);
    expect(spans.client.parentSpanId).toBe(spans.server.spanId);
    expect(spans.client.attributes['spanbridge.parent.source']).toBe('thread');
    // One header, the CLIENT span's id in place of the forwarded value.
    expect(echo.traceparent).toBe(traceparentOf(up.traceId, spans.client.spanId));
    expect(spans.downstream.parentSpanId).toBe(spans.client.spanId);
    expect(agent.spans().filter((s) => s.spanId === up.spanId)).toEqual([]);
    expect((after.sys_http_link_go_forward ?? 0) - (before.sys_http_link_go_forward ?? 0)).toBe(1);
  }, 180_000);

  it('a traceparent two requests came in with: the CLIENT span has an id of its own and the forwarded parent', async () => {
    await quietCalls();
    const before = await agent.kernelCounters();
    const up = fresh();
    const header = { traceparent: traceparentOf(up.traceId, up.spanId) };
    // The proxy answers /headers itself; the next request comes in with the same value and is forwarded.
    expect((await get(`${proxy.url}/headers`, header)).status).toBe(200);
    const echo = await get(`${proxy.url}/up/headers`, header);
    expect(echo.status).toBe(200);
    const t = await waitFor('2 SERVER spans and a CLIENT span of the proxy, the downstream SERVER span', () => {
      const all = spansOf(up.traceId);
      const mine = (kind: string, pid: number) => all.filter((s) => s.kind === kind && s.resource['process.pid'] === pid);
      const r = { servers: mine('SERVER', proxyPid()), client: mine('CLIENT', proxyPid())[0], downstream: mine('SERVER', down.proc.pid)[0] };
      return r.servers.length === 2 && r.client && r.downstream && r;
    });
    const after = await agent.kernelCounters();
    const delta = (key: string) => (after[key] ?? 0) - (before[key] ?? 0);
    expect(delta('sys_http_skip_go_client_no_conn')).toBe(1);
    expect(delta('sys_http_skip_go_forward_parent_unknown')).toBe(1);
    expect(t.servers.map((s) => s.parentSpanId)).toEqual([up.spanId, up.spanId]);
    // Neither request is its parent (either could have sent it): the value's own parent-id is.
    expect(t.client.spanId).not.toBe(up.spanId);
    expect(t.client.parentSpanId).toBe(up.spanId);
    expect(t.client.attributes['spanbridge.parent.source']).toBe('traceparent');
    expect(echo.traceparent).toBe(traceparentOf(up.traceId, t.client.spanId));
    expect(t.downstream.parentSpanId).toBe(t.client.spanId);
    const ids = agent.spans().map((s) => s.spanId);
    expect(new Set(ids).size).toBe(ids.length);
  }, 180_000);
});
