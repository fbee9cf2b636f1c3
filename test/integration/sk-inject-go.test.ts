/**
 * Socket-level traceparent injection (sock_ops + sk_msg, bpf/sk_inject/sk_inject.bpf.c) on the locked-down
 * host kernel, where bpf_probe_write_user is forbidden: an unmodified Go frontend calls an
 * unmodified Go backend whose /headers echoes the request headers it received.
 *
 * - exactly one valid traceparent per request, whose parent-id is the reported CLIENT span id and
 *   whose trace id is the frontend SERVER span's (one source of truth: the kernel);
 * - 1,000 keep-alive requests each get their own header;
 * - an application's own traceparent is never doubled;
 * - other headers are byte-identical to a run with --inject-headers off, which changes nothing.
 */
import http from 'node:http';
import { echoedTraceparents, frontendPair, goChainForSuite, startGoChain } from './helpers/go-chain';
import { waitFor } from './helpers/processes';
import { lockedDown } from './helpers/privileges';
import type { GoToolchain } from '../helpers/go-build';

const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The echoed header lines other than traceparent, sorted (the echo walks a Go map). */
function otherHeaders(body: string): string[] {
  return body
    .split('\n')
    .filter((l) => l !== '' && !l.toLowerCase().startsWith('traceparent:'))
    .sort();
}

const maybe = lockedDown() ? describe : describe.skip;

maybe.each(['local', 'go1.22.12'] as GoToolchain[])('sk_msg traceparent injection into Go requests (locked-down host, Go %s)', (toolchain) => {
  const chain = goChainForSuite(toolchain);

  it('reports socket-level injection as the strategy in effect', async () => {
    expect(await chain().agent.metric('spanbridge_header_injection', { runtime: 'go', method: 'sk_msg' })).toBe(1);
    const procs = await chain().agent.processes();
    expect(procs.map((p) => p.pid).sort()).toEqual([chain().frontend.pid, chain().backend.pid].sort());
    for (const p of procs) expect(p.injection).toBe('sk_msg');
  });

  it('/nested (two goroutines below the handler; go.client_path syscall, the default here, links depth 1): one traceparent = the reported CLIENT span, which the backend continues', async () => {
    const r = await chain().get('/nested', '/headers');
    const tps = echoedTraceparents(r.body);
    expect(tps).toHaveLength(1);
    const [, traceId, parentId] = TP.exec(tps[0])!;
    const c = await waitFor('nested client span', () => chain().agent.spans().find((s) => s.kind === 'CLIENT' && s.spanId === parentId));
    expect(c.traceId).toBe(traceId);
    const b = await waitFor('backend span', () =>
      chain().agent.spans().find((s) => s.kind === 'SERVER' && s.resource['process.pid'] === chain().backend.pid && s.parentSpanId === c.spanId),
    );
    expect(b.traceId).toBe(traceId);
  });

  it.each(['/sync', '/async'])('%s: one traceparent = the reported CLIENT span, in the frontend SERVER trace', async (route) => {
    const r = await chain().get(route, '/headers');
    const tps = echoedTraceparents(r.body);
    expect(tps).toHaveLength(1);
    const m = TP.exec(tps[0]);
    expect(m).not.toBeNull();
    const [, traceId, parentId, flags] = m!;
    const pair = await waitFor(`${route} pair`, () => {
      const p = frontendPair(chain().agent.spans(), chain().frontend.pid, route);
      return p.length === 1 && p[0].client && p[0];
    });
    const c = pair.client!;
    expect(c.spanId).toBe(parentId);
    expect(c.traceId).toBe(traceId);
    expect(pair.server.traceId).toBe(traceId);
    expect(flags).toBe('01');
    // The backend continues the trace: its SERVER span is a child of the CLIENT span.
    const b = await waitFor('backend span', () =>
      chain().agent.spans().find((s) => s.kind === 'SERVER' && s.resource['process.pid'] === chain().backend.pid && s.parentSpanId === c.spanId),
    );
    expect(b.traceId).toBe(traceId);
  });

  it('an incoming trace is continued: trace id, and the incoming tracestate sent on unchanged', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const tracestate = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';
    const q = new URLSearchParams({ target: `http://127.0.0.1:${chain().backendPort}/headers` });
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get(
          {
            host: '127.0.0.1',
            port: chain().frontendPort,
            path: `/sync?${q}`,
            agent: false,
            headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, tracestate },
          },
          (res) => {
            let b = '';
            res.setEncoding('latin1');
            res.on('data', (d: string) => (b += d));
            res.on('end', () => resolve(b));
          },
        )
        .on('error', reject);
    });
    const tps = echoedTraceparents(body);
    expect(tps).toHaveLength(1);
    expect(TP.exec(tps[0])![1]).toBe(traceId);
    const states = body.split('\n').filter((l) => l.startsWith('tracestate:'));
    expect(states).toEqual([`tracestate: ${tracestate}`]);
  });

  it('without an incoming tracestate none is sent', async () => {
    const r = await chain().get('/sync', '/headers');
    expect(r.body).not.toMatch(/^tracestate:/m);
  });

  it('an application-set traceparent is never doubled', async () => {
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const r = await chain().get('/app-tp', '/headers', { tp });
    expect(echoedTraceparents(r.body)).toEqual([tp]);
  });

  it('headers flushed while being written (bigger than the buffer): sent untouched, and the CLIENT span says propagation was skipped', async () => {
    for (const size of ['4100', '6000']) {
      const r = await chain().get('/big', '/headers', { size });
      expect(r.status).toBe(200);
      expect(echoedTraceparents(r.body)).toEqual([]);
      expect(r.body).toContain(`x-big: ${'b'.repeat(Number(size))}\n`);
    }
    const pairs = await waitFor('/big pairs', () => {
      const p = frontendPair(chain().agent.spans(), chain().frontend.pid, '/big');
      return p.length === 2 && p.every((x) => x.client) && p;
    });
    for (const p of pairs) expect(p.client!.attributes['spanbridge.propagation']).toBe('skipped');
  });

  it('1,000 requests over keep-alive connections: each gets its own header (a rare lost hand-over is counted, never silent)', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const seen = new Set<string>();
    const before = chain().agent.spans().length;
    try {
      const N = 1000;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < N) {
          next++;
          const r = await chain().get('/sync', '/headers', {}, agent);
          expect(r.status).toBe(200);
          const tps = echoedTraceparents(r.body);
          const m = tps.length === 1 ? TP.exec(tps[0]) : null;
          if (m) seen.add(m[2]);
          else missing.push(tps.join(' | ') || '(none)');
        }
      };
      const missing: string[] = [];
      await Promise.all([worker(), worker(), worker(), worker()]);
      // A request whose goroutine moved to another OS thread between the hand-over (bufio flush)
      // and its write(2) gets no header (docs/limits.md): rare, and never silent. Allow a few
      // such misses only when the kernel counted each one as a lost hand-over.
      if (missing.length > 0) {
        const lost = await waitFor(
          'lost hand-overs counted',
          async () => {
            const text = await (await fetch(`http://127.0.0.1:${chain().metricsPort}/metrics`)).text();
            const m = /^spanbridge_kernel_drops\{reason="inject_skip_socket_lost"\} (\d+)$/m.exec(text);
            return m && Number(m[1]) >= missing.length ? Number(m[1]) : undefined;
          },
          15_000,
        ).catch(async () => (await (await fetch(`http://127.0.0.1:${chain().metricsPort}/metrics`)).text()).split('\n').filter((l) => l.includes('kernel_drops')));
        expect({ missing, lost }).toEqual({ missing: expect.any(Array), lost: expect.any(Number) });
        expect(missing.length).toBeLessThanOrEqual(5);
      }
      expect(seen.size).toBe(N - missing.length);
      // Every header's parent-id is a reported CLIENT span.
      const clientIds = await waitFor(
        'client spans',
        () => {
          const ids = new Set(chain().agent.spans().slice(before).filter((s) => s.kind === 'CLIENT').map((s) => s.spanId));
          return [...seen].every((id) => ids.has(id)) && ids;
        },
        30_000,
      );
      expect(clientIds.size).toBeGreaterThanOrEqual(N);
    } finally {
      agent.destroy();
    }
  }, 120_000);

  it('other headers are byte-identical to a run with --inject-headers off, which changes nothing', async () => {
    const injected = await chain().get('/sync', '/headers');
    const off = await startGoChain(toolchain, ['--inject-headers', 'off']);
    try {
      expect(await off.agent.metric('spanbridge_header_injection', { runtime: 'go', method: 'none' })).toBe(1);
      expect(await off.agent.metric('spanbridge_header_injection', { runtime: 'go', method: 'sk_msg' })).toBe(0);
      const plain = await off.get('/sync', '/headers');
      expect(echoedTraceparents(plain.body)).toEqual([]);
      expect(otherHeaders(plain.body)).toEqual(otherHeaders(injected.body));
      expect(otherHeaders(plain.body).length).toBeGreaterThan(0);
    } finally {
      await off.stop();
    }
  }, 180_000);

  it('counts injections in the kernel and nothing was refused', async () => {
    const counters = await chain().agent.kernelCounters();
    await chain().agent.stop();
    // every one of the 1,000 keep-alive requests: injected, or its lost hand-over counted
    expect(counters.sk_inject_done + (counters.inject_skip_socket_lost ?? 0)).toBeGreaterThanOrEqual(1000);
    expect(counters.sk_inject_sock_added).toBeGreaterThanOrEqual(1);
    expect(counters.sk_inject_skip_push_failed ?? 0).toBe(0);
    expect(counters.sk_inject_skip_stale ?? 0).toBe(0);
    expect(counters.sk_inject_tracestate_done).toBeGreaterThanOrEqual(1);
  });
});
