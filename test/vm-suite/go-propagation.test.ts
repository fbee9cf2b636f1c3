/**
 * Go trace propagation with bpf_probe_write_user, run INSIDE a lockdown-free guest kernel by
 * `make test-vm` (test/vm/run boots Debian's 6.1 and 6.12 kernels). A Go frontend calls a Go
 * backend; neither has tracing code. The agent writes `traceparent` into the frontend's outgoing
 * requests, so frontend SERVER -> frontend CLIENT -> backend SERVER form one trace, and the
 * backend receives exactly the ids the agent reports.
 */
import http from 'node:http';
import { echoedTraceparents, frontendPair, startGoChain, type GoChain } from '../integration/helpers/go-chain';
import { waitFor, type PrintedSpanLine } from '../integration/helpers/processes';
import type { GoToolchain } from '../helpers/go-build';
import { requireGuest } from './guest';

const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

describe.each(['local', 'go1.22.12'] as GoToolchain[])('Go propagation with memory injection (Go %s)', (toolchain) => {
  let chain: GoChain;

  beforeAll(async () => {
    requireGuest();
    chain = await startGoChain(toolchain);
    expect(chain.agent.stderr()).toMatch(/header injection: Go memory writes/);
  }, 600_000);

  afterAll(async () => {
    await chain?.stop();
  }, 120_000);

  async function checkChain(route: string, n: number, agentOpt?: http.Agent): Promise<void> {
    const before = new Set(chain.agent.spans().map((s) => s.spanId));
    const fresh = (spans: PrintedSpanLine[]): PrintedSpanLine[] => spans.filter((s) => !before.has(s.spanId));
    const echoed: string[][] = [];
    for (let i = 0; i < n; i++) {
      const r = await chain.get(route, '/headers', {}, agentOpt);
      expect(r.status).toBe(200);
      echoed.push(echoedTraceparents(r.body));
    }
    const spans: PrintedSpanLine[] = await waitFor(
      `${n} ${route} chains`,
      () => {
        const s = fresh(chain.agent.spans());
        const pairs = frontendPair(s, chain.frontend.pid, route);
        return pairs.length >= n && pairs.every((p) => p.client) && s;
      },
      120_000,
      250,
    );
    const pairs = frontendPair(spans, chain.frontend.pid, route);
    expect(pairs).toHaveLength(n);
    const seen = new Set<string>();
    for (const { server, client } of pairs) {
      expect(client).toBeDefined();
      const c = client!;
      expect(c.traceId).toBe(server.traceId);
      expect(c.attributes['url.full']).toBe(`http://127.0.0.1:${chain.backendPort}/headers`);
      // Exactly one header on the wire, carrying the client span's ids.
      const header = echoed.find((h) => h.length === 1 && h[0] === `00-${c.traceId}-${c.spanId}-01`);
      expect(header).toBeDefined();
      const backendSpan = spans.find((s) => s.kind === 'SERVER' && s.resource['process.pid'] === chain.backend.pid && s.parentSpanId === c.spanId);
      expect(backendSpan).toBeDefined();
      expect(backendSpan!.traceId).toBe(server.traceId);
      seen.add(c.spanId);
    }
    expect(seen.size).toBe(n); // every request got its own header, even on a reused connection
    for (const h of echoed) {
      expect(h).toHaveLength(1);
      expect(h[0]).toMatch(TP);
    }
  }

  it('synchronous calls: one trace frontend SERVER -> CLIENT -> backend SERVER', () => checkChain('/sync', 5));

  it('calls from a spawned goroutine and a grandchild goroutine link the same way', async () => {
    await checkChain('/async', 3);
    await checkChain('/nested', 3);
  });

  it('keep-alive: every request on a reused connection carries its own header', async () => {
    const ka = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await checkChain('/sync', 20, ka);
    ka.destroy();
  });

  it('an application traceparent is respected (used, never doubled); a malformed one is left untouched', async () => {
    const appTp = '00-11111111111111111111111111111111-2222222222222222-01';
    const good = await chain.get('/app-tp', '/headers', { tp: appTp });
    expect(echoedTraceparents(good.body)).toEqual([appTp]);
    const bad = await chain.get('/app-tp', '/headers', { tp: 'not-a-traceparent' });
    expect(echoedTraceparents(bad.body)).toEqual(['not-a-traceparent']);
    const spans = await waitFor('app client span', () => {
      const s = chain.agent.spans().find((x) => x.kind === 'CLIENT' && x.traceId === '11111111111111111111111111111111');
      return s;
    }, 60_000);
    expect(spans.spanId).toBe('2222222222222222');
  });

  it('no room in the buffer, or a flush mid-headers: skipped, request intact', async () => {
    // 3950: the headers fit but leave < 70 bytes; 4100 and 6000: the writer flushes mid-headers.
    for (const size of [3950, 4100, 6000]) {
      const r = await chain.get('/big', '/headers', { size: String(size) });
      expect(r.status).toBe(200);
      expect(echoedTraceparents(r.body)).toEqual([]);
      expect(r.body).toContain(`x-big: ${'b'.repeat(size)}\n`);
    }
  });

  // 10,000 on the machine's Go, 1,000 on Go 1.22 (the guest runs under TCG, ~15x slower).
  const volume = toolchain === 'local' ? 10_000 : 1_000;

  it(`${volume} requests with injection on: targets stay up, bodies byte-identical to the uninstrumented answer`, async () => {
    const ka = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const jobs: Promise<void>[] = [];
    for (let w = 0; w < 4; w++) {
      jobs.push(
        (async () => {
          for (let i = w; i < volume; i += 4) {
            const r = await chain.get('/sync', `/items/${i}`, {}, ka).catch((err: Error) => {
              // Say who closed the connection: the frontend's log shows a handler panic or exit.
              const tail = (s: string) => s.split('\n').slice(-15).join('\n');
              throw new Error(
                `request ${i}: ${err.message}; frontend exit=${chain.frontend.proc.exitCode} backend exit=${chain.backend.proc.exitCode}\n` +
                  `frontend stderr:\n${tail(chain.frontend.stderr())}\nbackend stderr:\n${tail(chain.backend.stderr())}\nagent stderr:\n${tail(chain.agent.stderr())}`,
              );
            });
            expect(r.status).toBe(200);
            expect(r.body).toBe(`{"id":"${i}"}`);
          }
        })(),
      );
    }
    await Promise.all(jobs);
    ka.destroy();
    expect(chain.frontend.proc.exitCode).toBeNull();
    expect(chain.backend.proc.exitCode).toBeNull();
  }, 900_000);

  it('reports injections and skips in its kernel counters', async () => {
    const counters = await chain.agent.kernelCounters();
    await chain.agent.stop();
    expect(counters.inject_done).toBeGreaterThanOrEqual(5 + 6 + 20 + volume);
    expect(counters.inject_skip_no_room).toBeGreaterThanOrEqual(1);
    expect(counters.inject_skip_flushed).toBeGreaterThanOrEqual(2);
    expect(counters.inject_skip_app_header).toBeGreaterThanOrEqual(2);
  }, 60_000);
});

describe('a traced Go client killed while injections are in flight (Go local)', () => {
  it('no crash of anyone: the agent detaches and runs on, the backend stays up', async () => {
    requireGuest();
    const chain = await startGoChain('local');
    try {
      const inflight: Promise<unknown>[] = [];
      for (let i = 0; i < 50; i++) inflight.push(chain.get('/sync', `/items/${i}?sleep=50`).catch(() => 'aborted'));
      await new Promise((r) => setTimeout(r, 150));
      await chain.frontend.stop('SIGKILL');
      await Promise.all(inflight);
      await waitFor('detach', () => chain.agent.stderr().includes(`detached pid ${chain.frontend.pid} (exited)`), 60_000);
      expect(chain.agent.proc.exitCode).toBeNull();
      expect(chain.backend.proc.exitCode).toBeNull();
      const r = await new Promise<number>((resolve, reject) =>
        http.get({ host: '127.0.0.1', port: chain.backendPort, path: '/items/1', agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject),
      );
      expect(r).toBe(200);
    } finally {
      await chain.stop();
    }
    expect(await chain.agent.exited).toBe(0);
  }, 600_000);
});
