/**
 * Go's standard-library reverse proxy and net/http client, unmodified (build/frameworks/go-proxy),
 * in chains with third-party Python services (Flask and Django on gunicorn), traced under this
 * host's lockdown (headers inserted by sk_msg):
 *
 * - the proxy forwards the incoming `traceparent` (httputil.ReverseProxy copies every header): its
 *   CLIENT span is the child of its SERVER span and the downstream receives the CLIENT span's id
 *   in place of the forwarded value (one header, never two);
 * - the Go client sends bodies (POST, PUT, streamed/chunked): every request carries the header;
 * - each request forms exactly the expected spans in one trace, parents checked against the
 *   traceparent the last service echoes, no span id twice, every CLIENT span ends no earlier than
 *   the downstream SERVER span it caused;
 * - the answers are the same with and without the agent, except the inserted header's value.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { callUrl, startFramework, type FrameworkService } from './helpers/frameworks';
import { freePort } from './helpers/collector';
import { lockedDown, requireRootAndBpf } from './helpers/privileges';
import { kernelCounters, startAgent, waitFor, type AgentProcess, type PrintedSpanLine } from './helpers/processes';

const TP = /00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})/;
const TP_G = /00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}/g;

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function send(url: string, method: string, body: string | undefined, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'text/plain' } : {}) } }, (res) => {
      let b = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (b += d));
      res.on('end', () => {
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (k !== 'date') h[k] = String(v);
        resolve({ status: res.statusCode ?? 0, headers: h, body: b });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The answer with the echoed traceparent values (and so the length) left out: what must not differ
 * with the agent. The services echo the header the agent inserted or replaced.
 */
function normalized(a: Answer): Answer {
  const headers = { ...a.headers };
  expect(Number(headers['content-length'] ?? a.body.length)).toBe(Buffer.byteLength(a.body, 'latin1'));
  delete headers['content-length'];
  return { status: a.status, headers, body: a.body.replace(/"traceparent":\s*"[^"]*"/g, '"traceparent": ?').replace(TP_G, 'TRACEPARENT') };
}

/** A hop of the expected trace: which service's span, of which kind, on which path. */
interface Hop {
  svc: () => FrameworkService;
  kind: 'SERVER' | 'CLIENT';
}

interface Case {
  name: string;
  method: 'GET' | 'POST' | 'PUT';
  url: () => string;
  body?: string;
  /** The request arrives with a traceparent (fresh ids for each request). */
  incoming?: boolean;
  /** The spans of the trace from the entry SERVER span down, each the child of the one before. */
  chain: () => Hop[];
}

const maybe = lockedDown() ? describe : describe.skip;

maybe('Go reverse proxy and Go client bodies in chains with Python services (locked-down host: sk_msg)', () => {
  let flask: FrameworkService;
  let django: FrameworkService;
  let proxy: FrameworkService;
  let agent: AgentProcess;
  let metricsPort: number;
  const baseline = new Map<string, Answer>();

  const body = 'x'.repeat(3000) + '\nGET /not-a-request HTTP/1.1\r\nhost: x\r\n\r\n';
  const server = (svc: () => FrameworkService): Hop => ({ svc, kind: 'SERVER' });
  const client = (svc: () => FrameworkService): Hop => ({ svc, kind: 'CLIENT' });
  const incoming = true;
  const proxyToFlask = (): Hop[] => [server(() => proxy), client(() => proxy), server(() => flask)];
  const cases: Case[] = [
    { name: 'reverse proxy GET', method: 'GET', url: () => `${proxy.url}/up/headers`, chain: proxyToFlask },
    { name: 'reverse proxy GET, forwarded traceparent', method: 'GET', url: () => `${proxy.url}/up/headers`, incoming, chain: proxyToFlask },
    { name: 'reverse proxy POST, forwarded traceparent', method: 'POST', url: () => `${proxy.url}/up/headers`, body, incoming, chain: proxyToFlask },
    { name: 'client GET', method: 'GET', url: () => callUrl(proxy, `${flask.url}/headers`), chain: proxyToFlask },
    { name: 'client POST', method: 'POST', url: () => callUrl(proxy, `${flask.url}/headers`), body, chain: proxyToFlask },
    { name: 'client PUT', method: 'PUT', url: () => callUrl(proxy, `${flask.url}/headers`), body, chain: proxyToFlask },
    { name: 'client POST streamed', method: 'POST', url: () => callUrl(proxy, `${flask.url}/headers`, '&stream=1'), body, chain: proxyToFlask },
    { name: 'client PUT streamed', method: 'PUT', url: () => callUrl(proxy, `${flask.url}/headers`, '&stream=1'), body, chain: proxyToFlask },
    { name: 'client POST, incoming context', method: 'POST', url: () => callUrl(proxy, `${flask.url}/headers`), body, incoming, chain: proxyToFlask },
    {
      name: 'reverse proxy -> Flask /call POST -> Django, forwarded traceparent',
      method: 'POST',
      url: () => `${proxy.url}/up/call?url=${encodeURIComponent(`${django.url}/headers`)}`,
      body,
      incoming,
      chain: () => [server(() => proxy), client(() => proxy), server(() => flask), client(() => flask), server(() => django)],
    },
  ];

  beforeAll(async () => {
    requireRootAndBpf();
    flask = await startFramework('flask-gunicorn', 'flask', { workers: 2 });
    django = await startFramework('django-gunicorn', 'django', { workers: 2 });
    proxy = await startFramework('go-proxy', 'go-proxy', { upstream: flask.url });
    // Untraced answers first: the same services, no agent.
    for (const c of cases) baseline.set(c.name, await send(c.url(), c.method, c.body, headersOf(c, fresh())));
    metricsPort = await freePort();
    agent = await startAgent(
      ['--pid', String(proxy.proc.pid), '--open-port', String(flask.port), '--open-port', String(django.port), '--export', 'none', '--prometheus-port', String(metricsPort)],
      {},
      120_000,
    );
  }, 300_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([proxy?.proc.stop(), flask?.proc.stop(), django?.proc.stop()]);
  });

  function fresh(): { traceId: string; spanId: string } {
    return { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex') };
  }

  function headersOf(c: Case, ids: { traceId: string; spanId: string }): Record<string, string> {
    return c.incoming ? { traceparent: `00-${ids.traceId}-${ids.spanId}-01` } : {};
  }

  function pidOf(s: PrintedSpanLine): number {
    return Number(s.resource['process.pid']);
  }

  function belongsTo(s: PrintedSpanLine, svc: FrameworkService): boolean {
    return s.resource['service.name'] === svc.service || pidOf(s) === svc.proc.pid;
  }

  const ROUNDS = 3;

  it('uses socket-level injection', () => {
    expect(agent.stderr()).toMatch(/header injection: socket-level sk_msg/);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s: one trace, the expected spans and parents, one header = the CLIENT span', async (_name, c) => {
    for (let round = 0; round < ROUNDS; round++) {
      const ids = fresh();
      const a = await send(c.url(), c.method, c.body, headersOf(c, ids));
      expect(a.status).toBe(200);
      expect(normalized(a)).toEqual(normalized(baseline.get(c.name)!));
      // The last service echoes what it received: exactly one traceparent.
      const echoed = /"traceparent":\s*"([^"]*)"/.exec(a.body)?.[1] ?? '';
      expect(echoed).toMatch(new RegExp(`^${TP.source}$`));
      const [, traceId, parentId] = TP.exec(echoed)!;
      if (c.incoming) expect(traceId).toBe(ids.traceId);
      const hops = c.chain();
      const spans = await waitFor(
        `${c.name}: ${hops.length} spans of trace ${traceId}`,
        () => {
          const t = agent.spans().filter((s) => s.traceId === traceId);
          return t.length >= hops.length && t;
        },
        30_000,
      ).catch((err: Error) => {
        const last = hops[hops.length - 1].svc();
        const recent = agent.spans().filter((s) => belongsTo(s, last)).slice(-3);
        throw new Error(`${err.message}\nspans of the trace: ${JSON.stringify(agent.spans().filter((s) => s.traceId === traceId), null, 1)}\nlast spans of ${last.service}: ${JSON.stringify(recent, null, 1)}`);
      });
      // Walk the chain from its entry SERVER span.
      const entry = spans.filter((s) => s.kind === 'SERVER' && belongsTo(s, hops[0].svc()));
      expect(entry).toHaveLength(1);
      expect(entry[0].parentSpanId).toBe(c.incoming ? ids.spanId : '');
      const walked = [entry[0]];
      for (let i = 1; i < hops.length; i++) {
        const prev = walked[i - 1];
        const kids = spans.filter((s) => s.parentSpanId === prev.spanId);
        expect({ hop: i, kids: kids.map((k) => `${k.kind} ${k.resource['service.name']}`) }).toEqual({ hop: i, kids: [`${hops[i].kind} ${hops[i].svc().service}`] });
        expect(belongsTo(kids[0], hops[i].svc())).toBe(true);
        walked.push(kids[0]);
      }
      // The echoed parent is the last CLIENT span; nothing else in the trace.
      expect(walked[walked.length - 2].spanId).toBe(parentId);
      expect(spans.map((s) => s.spanId).sort()).toEqual(walked.map((s) => s.spanId).sort());
      // A CLIENT span covers the exchange: it ends no earlier than the SERVER span it caused.
      for (let i = 1; i + 1 < walked.length; i++) {
        if (walked[i].kind !== 'CLIENT') continue;
        const cl = walked[i];
        const down = walked[i + 1];
        expect({ name: c.name, clientEnd: BigInt(cl.endTimeUnixNano) >= BigInt(down.endTimeUnixNano) }).toEqual({ name: c.name, clientEnd: true });
        expect(cl.attributes['spanbridge.propagation'] ?? 'unset').not.toBe('skipped');
      }
    }
  });

  it('no span id appears twice, and every Go client request with a body was handed to sk_msg', async () => {
    const ids = agent.spans().map((s) => s.spanId);
    expect(new Set(ids).size).toBe(ids.length);
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const lost = /^spanbridge_kernel_drops\{reason="inject_skip_socket_lost"\} (\d+)$/m.exec(text);
    expect(Number(lost?.[1] ?? 0)).toBe(0);
  });

  it('kernel counters at stop: nothing refused', async () => {
    await agent.stop();
    const counters = kernelCounters(agent.stderr());
    expect(counters.sk_inject_done).toBeGreaterThanOrEqual(1);
    expect(counters.sk_inject_skip_push_failed ?? 0).toBe(0);
  });
});
