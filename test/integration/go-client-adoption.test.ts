/**
 * go.client_path syscall, a Go process that already has client connections when the agent
 * attaches: their writer goroutines started before the once-per-connection probe, so the syscall
 * tracer cannot name their persistConn. What must hold: a call on such a connection is counted
 * (sys_http_skip_go_client_no_conn) and never gets a wrong parent; the agent then adopts the
 * connections (a probe at (*persistConn).roundTrip, src/tracers/go-client-adoption.ts), after
 * which calls on the same connection are the server span's children; once no unknown connection
 * has been written to for 1.5 s the probe goes away, and no uprobe fires per request again
 * (kernel BPF statistics).
 */
import http from 'node:http';
import { freePort } from './helpers/collector';
import { frontendPair } from './helpers/go-chain';
import { buildGoApp } from '../helpers/go-build';
import { lockedDown, requireRootAndBpf } from './helpers/privileges';
import { startAgent, startProcess, waitFor, waitForPort, type AgentProcess, type Running } from './helpers/processes';
import { agentProgStats, isUprobeProg, progDelta, withBpfStats } from '../../bench/lib/bpf-stats';

const maybe = lockedDown() ? describe : describe.skip; // memory injection keeps the uprobe client path

maybe('Go client connections opened before the attach (go.client_path syscall)', () => {
  let backend: Running | undefined;
  let front: Running | undefined;
  let agent: AgentProcess | undefined;
  let [port, frontPort] = [0, 0];
  // One keep-alive connection into the frontend; the frontend's Transport keeps its own to the backend.
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });

  const call = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const q = new URLSearchParams({ target: `http://127.0.0.1:${port}${path}` });
      http
        .get({ host: '127.0.0.1', port: frontPort, path: `/sync?${q}`, agent: keepAlive }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
  const pairOf = (path: string) =>
    frontendPair(agent!.spans(), front!.pid, '/sync').find((p) => p.client?.attributes['url.full'] === `http://127.0.0.1:${port}${path}`);
  const clientOf = (path: string) => agent!.spans().find((s) => s.kind === 'CLIENT' && s.attributes['url.full'] === `http://127.0.0.1:${port}${path}`);

  beforeAll(async () => {
    requireRootAndBpf();
    [port, frontPort] = [await freePort(), await freePort()];
    backend = startProcess(buildGoApp('goserver'), ['-addr', `127.0.0.1:${port}`]);
    front = startProcess(buildGoApp('gochain'), ['-addr', `127.0.0.1:${frontPort}`]);
    await waitForPort(port, 60_000);
    await waitForPort(frontPort, 60_000);
    // The frontend's connection to the backend exists before the agent.
    expect(await call('/items/before')).toBe(200);
    agent = await startAgent(['--pid', String(front.pid), '--export', 'none'], { SPANBRIDGE_GO_SERVER_PATH: 'syscall', SPANBRIDGE_GO_CLIENT_PATH: 'syscall' }, 120_000);
  }, 180_000);
  afterAll(async () => {
    keepAlive.destroy();
    await agent?.stop();
    await front?.stop();
    await backend?.stop();
  });

  it('a call on the old connection is counted and left without a parent, never a wrong one; the connection is then adopted and its calls are the SERVER spans\' children', async () => {
    expect((await agent!.processes()).find((p) => p.pid === front!.pid)?.clientSpans).toBe('syscall');
    expect(await call('/items/old-0')).toBe(200);
    const first = await waitFor('client span of the first call', () => clientOf('/items/old-0'));
    await waitFor('a SERVER span of the frontend', () => frontendPair(agent!.spans(), front!.pid, '/sync').length > 0);
    // No parent at all: in particular no SERVER span's.
    expect(agent!.spans().filter((s) => s.kind === 'SERVER' && s.spanId === first.parentSpanId)).toEqual([]);
    expect((await agent!.kernelCounters()).sys_http_skip_go_client_no_conn ?? 0).toBeGreaterThanOrEqual(1);
    // The agent's look (every 0.5 s) attaches the adoption probe; the next call records the connection.
    let i = 0;
    const linked = await waitFor(
      'a call on the adopted connection linked to its SERVER span (a call written before its caller parked has none: tried again)',
      async () => {
        const path = `/items/old-${++i}`;
        expect(await call(path)).toBe(200);
        const p = await waitFor(`spans of ${path}`, () => pairOf(path) ?? (clientOf(path) && { server: undefined, client: clientOf(path) }), 10_000);
        return p.server && p.client && p;
      },
      30_000,
      500,
    );
    expect(linked.client!.traceId).toBe(linked.server!.traceId);
    expect(linked.client!.parentSpanId).toBe(linked.server!.spanId);
    const counters = await agent!.kernelCounters();
    expect(counters.sys_http_link_go_client ?? 0).toBeGreaterThanOrEqual(1);
    expect(counters.sys_http_skip_go_client_stale ?? 0).toBe(0);
  }, 60_000);

  it('1.5 s after the last write on an unknown connection the adoption probe is gone: no uprobe per request, calls still linked', async () => {
    await new Promise((r) => setTimeout(r, 5000)); // 1.5 s still + a 0.5 s look + margin
    const N = 20;
    const before0 = await agent!.kernelCounters();
    const runs = await withBpfStats(async () => {
      const before = agentProgStats(agent!.pid);
      for (let k = 0; k < N; k++) expect(await call(`/items/after-${k}`)).toBe(200);
      return progDelta(before, agentProgStats(agent!.pid));
    });
    expect(runs.filter(isUprobeProg).map((p) => [p.name, p.runs])).toEqual([]);
    const clients = await waitFor(`${N} client spans`, () => {
      const c = [...Array(N).keys()].map((k) => clientOf(`/items/after-${k}`));
      return c.every((x) => x) && c;
    });
    // Linked to their own request's SERVER span, except calls written before their caller parked
    // (counted: the race bpf/common/go_client_ctx.h describes), which have no parent.
    let linked = 0;
    for (const [k, c] of clients.entries()) {
      const server = agent!.spans().find((s) => s.kind === 'SERVER' && s.spanId === c!.parentSpanId);
      if (!server) {
        expect(c!.parentSpanId || '').toBe('');
        continue;
      }
      linked++;
      expect(decodeURIComponent(String(server.attributes['url.query']))).toMatch(new RegExp(`/items/after-${k}$`));
    }
    const after = await agent!.kernelCounters();
    const delta = (key: string) => (after[key] ?? 0) - (before0[key] ?? 0);
    expect(linked + delta('sys_http_skip_go_client_unparked')).toBe(N);
    expect(linked).toBeGreaterThanOrEqual(N / 2);
    expect(delta('sys_http_skip_go_client_no_conn')).toBe(0);
  }, 120_000);
});
