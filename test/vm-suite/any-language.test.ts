/**
 * Any-language tracing on Debian's own kernels (6.1 is Debian 12's): the syscall tracer must load
 * there, not only on the host's 6.18. An uninstrumented Python server calls a Go echo server
 * (/headers returns the request headers it received): the Python SERVER and CLIENT spans come from
 * syscall tracepoints, the CLIENT's header is inserted by sk_msg, and the Go backend's SERVER span
 * (uprobes) continues it: one trace, and the header on the wire is the reported client span.
 */
import { freePort } from '../integration/helpers/collector';
import { buildGoApp } from '../helpers/go-build';
import { echoedTraceparents } from '../integration/helpers/go-chain';
import { httpRequest, startServer } from '../integration/helpers/any-language';
import { startAgent, startProcess, waitFor, waitForPort, type AgentProcess, type PrintedSpanLine, type Running } from '../integration/helpers/processes';
import { guestKernel, requireGuest } from './guest';

const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

describe(`any-language tracing on the guest kernel (${guestKernel})`, () => {
  let python: Running;
  let backend: Running;
  let agent: AgentProcess;
  let pyPort: number;
  let goPort: number;

  beforeAll(async () => {
    requireGuest();
    [pyPort, goPort] = [await freePort(), await freePort()];
    python = await startServer('python', pyPort, 'py-front');
    backend = startProcess(buildGoApp('goserver'), ['-addr', `127.0.0.1:${goPort}`]);
    await waitForPort(goPort, 60_000);
    const t0 = Date.now();
    // Verifying the syscall tracer under emulation takes tens of seconds on 6.1.
    agent = await startAgent(['--pid', String(python.pid), '--pid', String(backend.pid), '--export', 'none'], {}, 400_000);
    process.stderr.write(`any-language (${guestKernel}): agent ready in ${Date.now() - t0} ms\n`);
  }, 600_000);

  afterAll(async () => {
    await agent?.stop();
    await python?.stop();
    await backend?.stop();
  }, 120_000);

  it('the syscall tracer loads and attaches (no verifier refusal)', () => {
    expect(agent.stderr()).toMatch(/strategy: HTTP\/1\.x for non-Go processes: syscall tracepoints \(\d+ attached\)/);
    // Go memory writes are allowed here (lockdown none): Go gets them, every other process sk_msg.
    expect(agent.stderr()).toMatch(/header injection: Go memory writes .* for Go processes; socket-level sk_msg for other languages/);
    expect(agent.stderr()).not.toMatch(/sk_msg injection unavailable/);
    expect(agent.stderr()).not.toMatch(/non-Go processes: unavailable/);
  });

  async function callChain(n: number, keepalive: boolean): Promise<void> {
    const before = new Set(agent.spans().map((s) => s.spanId));
    const echoed: string[] = [];
    for (let i = 0; i < n; i++) {
      const target = `http://127.0.0.1:${goPort}/headers`;
      const q = new URLSearchParams({ url: target, ...(keepalive ? { keepalive: '1' } : {}) });
      const r = await httpRequest(pyPort, `/call?${q}`);
      expect(r.status).toBe(200);
      expect(r.body.startsWith('200 ')).toBe(true);
      const tps = echoedTraceparents(r.body.slice(4));
      expect(tps).toHaveLength(1); // exactly one header, never two
      expect(tps[0]).toMatch(TP);
      echoed.push(tps[0]);
    }
    const fresh = (): PrintedSpanLine[] => agent.spans().filter((s) => !before.has(s.spanId));
    // Every chain complete: the client span a header names, its Python SERVER parent, the Go SERVER under it.
    const complete = (s: PrintedSpanLine[]): boolean =>
      echoed.every((h) => {
        const parentId = TP.exec(h)![2];
        const client = s.find((x) => x.kind === 'CLIENT' && x.spanId === parentId);
        return (
          client !== undefined &&
          s.some((x) => x.kind === 'SERVER' && x.spanId === client.parentSpanId) &&
          s.some((x) => x.kind === 'SERVER' && x.parentSpanId === parentId)
        );
      });
    const spans = await waitFor(`${n} Python -> Go chains`, () => {
      const s = fresh();
      return complete(s) && s;
    }, 120_000, 250).catch(() => fresh()); // the assertions below say what is missing
    for (const header of echoed) {
      const [, traceId, parentId] = TP.exec(header)!;
      const client = spans.find((s) => s.kind === 'CLIENT' && s.spanId === parentId);
      expect(client).toBeDefined(); // the header's parent-id is the reported client span
      expect(client!.resource['process.pid']).toBe(python.pid);
      expect(client!.traceId).toBe(traceId);
      const server = spans.find((s) => s.kind === 'SERVER' && s.spanId === client!.parentSpanId);
      expect(server).toBeDefined(); // thread-linked to the Python request that made the call
      expect(server!.resource['process.pid']).toBe(python.pid);
      expect(server!.attributes['url.path']).toBe('/call');
      const back = spans.find((s) => s.kind === 'SERVER' && s.resource['process.pid'] === backend.pid && s.parentSpanId === parentId);
      expect(back).toBeDefined();
      expect(back!.traceId).toBe(traceId);
    }
    expect(new Set(echoed).size).toBe(n);
  }

  it('Python SERVER -> Python CLIENT (header by sk_msg) -> Go SERVER: one trace, a connection per call', () => callChain(10, false), 300_000);

  it('the same on one reused keep-alive connection: every request its own header', () => callChain(10, true), 300_000);

  it('reports what the kernel side did at stop', async () => {
    const counters = await agent.kernelCounters();
    await agent.stop();
    process.stderr.write(`any-language (${guestKernel}): ${agent.stderr().split('\n').find((l) => l.includes('kernel counters:'))}\n`);
    expect(counters.sys_http_link_thread).toBeGreaterThanOrEqual(20);
    expect(counters.sk_inject_done).toBeGreaterThanOrEqual(20);
    expect(counters.sys_http_tail_call ?? 0).toBe(0);
  }, 60_000);
});
