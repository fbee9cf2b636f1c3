/**
 * Node.js in-process linking from node's own async ids (bpf/sys_http/sys_http_node_link.h, no uprobe), on
 * stock frameworks with no tracing code: Express calling out with axios (keep-alive agent),
 * Fastify with node:http (keep-alive agent), Express with fetch (undici); the leaf (Fastify)
 * echoes the traceparent it received. Each request to a front carries a traceparent of its own,
 * so the echoed header tells, per request: linked to its own server request (the front's CLIENT
 * span is the child of the front's SERVER span of that trace), unlinked (a new trace), or wrong (a
 * trace of another request): a wrong link cannot pass as a right one.
 */
import { echoed, hex, send } from './helpers/chains';
import { freePort } from './helpers/collector';
import { callUrl, startFramework, type FrameworkService } from './helpers/frameworks';
import { requireRootAndBpf } from './helpers/privileges';
import { startAgent, waitFor, type AgentProcess } from './helpers/processes';

interface Call {
  readonly traceId: string;
  readonly echoed: string;
  /** The tracestate the leaf received. */
  readonly tracestate: string;
}

/** Sent with every request to a front: a linked call sends it on (W3C), with the traceparent. */
const TRACESTATE = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';

type Verdict = 'linked' | 'unlinked' | 'wrong';

describe('Node.js client calls linked to the server request whose callback made them', () => {
  let express: FrameworkService;
  let fastify: FrameworkService;
  let fetcher: FrameworkService;
  let leaf: FrameworkService;
  let agent: AgentProcess | undefined;
  const sent = new Set<string>();

  beforeAll(async () => {
    requireRootAndBpf();
    [express, fastify, fetcher, leaf] = await Promise.all([
      startFramework('express', 'node-express'),
      startFramework('fastify', 'node-fastify'),
      startFramework('express-fetch', 'node-fetch'),
      startFramework('fastify', 'node-leaf'),
    ]);
    const pids = [express, fastify, fetcher, leaf].flatMap((s) => ['--pid', String(s.proc.pid)]);
    agent = await startAgent([...pids, '--export', 'none', '--prometheus-port', String(await freePort())], {}, 120_000);
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([express, fastify, fetcher, leaf].map((s) => s?.proc.stop()));
  });

  async function call(front: FrameworkService, extra = ''): Promise<Call> {
    const traceId = hex(16);
    sent.add(traceId);
    const r = await send(callUrl(front, `${leaf.url}/headers`, extra), { headers: { traceparent: `00-${traceId}-${hex(8)}-01`, tracestate: TRACESTATE } });
    expect(r.status).toBe(200);
    const e = echoed(r.body);
    expect(e?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    return { traceId, echoed: e!.traceparent, tracestate: e!.tracestate };
  }

  /** Waits for the front's client spans of these calls, then judges each. */
  async function judge(front: FrameworkService, calls: readonly Call[]): Promise<Record<Verdict, number>> {
    const ids = new Set(calls.map((c) => c.echoed.split('-')[2]));
    const traces = new Set(calls.map((c) => c.traceId));
    const clients = () => agent!.spans().filter((s) => s.kind === 'CLIENT' && s.resource['service.name'] === front.service && ids.has(s.spanId));
    const servers = () => agent!.spans().filter((s) => s.kind === 'SERVER' && s.resource['service.name'] === front.service && traces.has(s.traceId));
    await waitFor(`client and server spans of ${front.service}`, () => clients().length >= ids.size && servers().length >= traces.size, 30_000);
    const spans = agent!.spans();
    const out: Record<Verdict, number> = { linked: 0, unlinked: 0, wrong: 0 };
    for (const c of calls) {
      const [, traceId, spanId] = c.echoed.split('-');
      const client = spans.find((s) => s.spanId === spanId && s.kind === 'CLIENT');
      const server = spans.find((s) => s.kind === 'SERVER' && s.resource['service.name'] === front.service && s.traceId === c.traceId);
      if (traceId === c.traceId && client && server && client.parentSpanId === server.spanId && client.attributes['spanbridge.parent.source'] === 'node_async' && c.tracestate === TRACESTATE) out.linked++;
      else if (!sent.has(traceId) && client?.parentSpanId === '' && c.tracestate === '') out.unlinked++;
      else {
        out.wrong++;
        process.stdout.write(`wrong: ${JSON.stringify({ call: c, client, server })}\n`);
      }
    }
    return out;
  }

  it('Express + axios, sequential: every call is the child of its server request', async () => {
    const calls: Call[] = [];
    for (let i = 0; i < 10; i++) calls.push(await call(express));
    expect(await judge(express, calls)).toEqual({ linked: 10, unlinked: 0, wrong: 0 });
  }, 120_000);

  it('Fastify + node:http, sequential: every call is the child of its server request', async () => {
    const calls: Call[] = [];
    for (let i = 0; i < 10; i++) calls.push(await call(fastify));
    expect(await judge(fastify, calls)).toEqual({ linked: 10, unlinked: 0, wrong: 0 });
  }, 120_000);

  it.each([
    ['Express + axios', () => express],
    ['Fastify + node:http', () => fastify],
  ])('%s, 32 concurrent requests: no wrong parent', async (what, front) => {
    const calls = await Promise.all(Array.from({ length: 32 }, () => call(front())));
    const v = await judge(front(), calls);
    process.stdout.write(`${what}, 32 concurrent: ${JSON.stringify(v)}\n`);
    expect(v.wrong).toBe(0);
    expect(v.linked + v.unlinked).toBe(32);
    // made in the handler's callback (axios: on a new socket, written in its connect callback)
    expect(v.linked).toBe(32);
  }, 120_000);

  it('calls after an await resumed by a timer, and fetch (undici, microtasks): unlinked and counted, never wrong', async () => {
    const before = await agent!.metric('spanbridge_client_spans_unlinked_total', { runtime: 'node' });
    const delayed = await Promise.all(Array.from({ length: 16 }, () => call(express, '&delay_ms=20')));
    const fetched = await Promise.all(Array.from({ length: 16 }, () => call(fetcher)));
    const d = await judge(express, delayed);
    const f = await judge(fetcher, fetched);
    process.stdout.write(`after await: ${JSON.stringify(d)}; fetch: ${JSON.stringify(f)}\n`);
    expect(d.wrong).toBe(0);
    expect(f.wrong).toBe(0);
    const unlinked = d.unlinked + f.unlinked;
    expect(unlinked).toBeGreaterThan(0);
    await waitFor('unlinked node calls counted', async () => (await agent!.metric('spanbridge_client_spans_unlinked_total', { runtime: 'node' })) - before >= unlinked, 30_000);
    const k = await agent!.kernelCounters();
    expect(k.sys_http_skip_node_unlinked ?? 0).toBeGreaterThanOrEqual(unlinked);
    expect(k.sys_http_link_node ?? 0).toBeGreaterThan(0);
  }, 120_000);

  it('a call made after the response was sent (Express /call-after) keeps its parent', async () => {
    const traceId = hex(16);
    sent.add(traceId);
    const r = await send(`${express.url}/call-after?url=${encodeURIComponent(`${leaf.url}/headers`)}`, { headers: { traceparent: `00-${traceId}-${hex(8)}-01` } });
    expect(r.status).toBe(200);
    const find = () => {
      const spans = agent!.spans();
      const server = spans.find((s) => s.kind === 'SERVER' && s.resource['service.name'] === express.service && s.traceId === traceId);
      const client = spans.find((s) => s.kind === 'CLIENT' && s.resource['service.name'] === express.service && s.traceId === traceId);
      const leafServer = client && spans.find((s) => s.kind === 'SERVER' && s.resource['service.name'] === leaf.service && s.parentSpanId === client.spanId);
      return { server, client, leafServer };
    };
    await waitFor('the call made after the response, and its downstream', () => find().leafServer !== undefined, 30_000);
    const { server, client, leafServer } = find();
    expect(client!.parentSpanId).toBe(server!.spanId);
    expect(client!.attributes['spanbridge.parent.source']).toBe('node_async');
    // the leaf got the header naming that client span (sk_msg): same trace
    expect(leafServer!.traceId).toBe(traceId);
  }, 120_000);

  it('/api/processes says how each Node process is linked', async () => {
    const procs = await agent!.processes();
    const front = procs.find((p) => p.pid === express.proc.pid);
    expect(front?.notes.join(' ')).toMatch(/node async linking linked \(node \d+\.\d+\.\d+/);
  });
});
