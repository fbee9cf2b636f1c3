/**
 * The real-framework matrix (issue 13): chains of 3 services across languages, all third-party
 * frameworks from `make setup` with no tracing code, traced by one agent selecting them as users
 * would (gunicorn masters by pid or by port, the JVM and Node by pid, the Go binary by pid):
 *
 *   Python -> Java -> Node:  Flask on gunicorn (requests) -> Spring Boot on Tomcat (RestTemplate,
 *                            blocking HttpURLConnection) -> Express (leaf)
 *   Python -> Go proxy -> Node: Django on gunicorn -> Go httputil.ReverseProxy (forwards the
 *                            incoming traceparent) -> Express
 *   Go client -> Java -> Node: Go net/http client (GET, POST, PUT, streamed body) -> Spring -> Express
 *
 * Every request: exactly the expected spans in one trace, correct parents (checked against the
 * traceparent the leaf echoes at /headers), method/path/status/service, the caller's context
 * continued and its tracestate carried to the leaf; and the application's answer (status, body,
 * headers) the same with and without the agent. The answers without the agent are taken first,
 * so the agent also meets warm keep-alive pools (connections open before it attached).
 */
import { checkChain, comparable, hex, send, type Answer, type Hop } from '../helpers/chains';
import { callUrl, startFramework, type FrameworkService } from '../helpers/frameworks';
import { startAgent, waitFor, type AgentProcess } from '../helpers/processes';
import { requireRootAndBpf } from '../helpers/privileges';

interface Chain {
  readonly name: string;
  /** The URL the test calls and the hops the request takes, for a leaf path. */
  readonly build: (leafPath: string, query?: string) => { url: string; hops: Hop[] };
}

const TRACESTATE = 'matrix=t61rcWkgMzE,other=x';

describe('real-framework matrix: chains across languages (one connected trace per request)', () => {
  let flask: FrameworkService;
  let django: FrameworkService;
  let spring: FrameworkService;
  let express: FrameworkService;
  let proxy: FrameworkService;
  let agent: AgentProcess | undefined;
  let chains: Chain[];
  const baseline = new Map<string, Answer>();
  const counts: Record<string, [number, number]> = {};

  beforeAll(async () => {
    requireRootAndBpf();
    express = await startFramework('express', 'express-leaf');
    [flask, django, spring, proxy] = await Promise.all([
      startFramework('flask-gunicorn', 'flask-front', { workers: 2, maxRequests: 7 }),
      startFramework('django-gunicorn', 'django-front', { workers: 2 }),
      startFramework('spring', 'spring-mid'),
      startFramework('go-proxy', 'go-mid', { upstream: express.url }),
    ]);
    const springCall = (leaf: string): string => callUrl(spring, `${express.url}${leaf}`);
    chains = [
      {
        name: 'flask -> spring -> express',
        build: (leaf) => ({
          url: callUrl(flask, springCall(leaf)),
          hops: [
            { service: 'flask-front', path: '/call', calls: springCall(leaf) },
            { service: 'spring-mid', path: '/call', calls: `${express.url}${leaf}` },
            { service: 'express-leaf', path: leaf },
          ],
        }),
      },
      {
        // The proxy's own /headers is not the leaf's: "/headers/" goes through to Express.
        name: 'django -> go reverse proxy -> express',
        build: (leaf) => {
          const p = leaf === '/headers' ? '/headers/' : leaf;
          return {
            url: callUrl(django, `${proxy.url}${p}`),
            hops: [
              { service: 'django-front', path: '/call', calls: `${proxy.url}${p}` },
              { service: 'go-mid', path: p, calls: `${express.url}${p}` },
              { service: 'express-leaf', path: p },
            ],
          };
        },
      },
      {
        name: 'go client -> spring -> express',
        build: (leaf, query = '') => ({
          url: callUrl(proxy, springCall(leaf), query),
          hops: [
            { service: 'go-mid', path: '/call', calls: springCall(leaf) },
            { service: 'spring-mid', path: '/call', calls: `${express.url}${leaf}` },
            { service: 'express-leaf', path: leaf },
          ],
        }),
      },
    ];
    // The answers without the agent (this also leaves warm keep-alive pools behind).
    for (const c of chains) {
      for (const i of [0, 1]) baseline.set(`${c.name} ${i}`, comparable(await send(c.build('/hello').url)));
    }
  }, 240_000);

  afterAll(async () => {
    await agent?.stop();
    for (const s of [flask, django, spring, proxy, express]) await s?.proc.stop();
    // eslint-disable-next-line no-console
    console.log(`connected traces: ${Object.entries(counts).map(([k, [ok, n]]) => `${k}: ${ok}/${n}`).join('; ')}`);
  });

  /** Sends one request with a fresh incoming context; returns its problems (empty: connected). */
  async function traced(name: string, url: string, hops: Hop[], method = 'GET', body?: string): Promise<string[]> {
    const traceId = hex(16);
    const spanId = hex(8);
    const answer = await send(url, { method, body, headers: { traceparent: `00-${traceId}-${spanId}-01`, tracestate: TRACESTATE } });
    const want = hops.length * 2 - 1;
    await waitFor(`${want} spans of ${name}`, () => agent!.spans().filter((s) => s.traceId === traceId).length >= want, 15_000).catch(() => undefined);
    const problems = checkChain(agent!.spans(), { traceId, spanId, tracestate: TRACESTATE }, hops, method, answer);
    const c = (counts[name] ??= [0, 0]);
    c[1]++;
    if (problems.length === 0) c[0]++;
    return problems.map((p) => `${name} ${method} ${url}: ${p}`);
  }

  it('starts the agent on the running services (pre-fork masters by pid and by port)', async () => {
    agent = await startAgent(
      ['--pid', String(django.proc.pid), '--open-port', String(flask.port), '--pid', String(spring.proc.pid), '--pid', String(express.proc.pid), '--pid', String(proxy.proc.pid), '--export', 'none'],
      {},
      120_000,
    );
  });

  it.each([0, 1, 2])('%s: the answers are the same as without the agent, and each request one trace', async (idx) => {
    const c = chains[idx];
    const problems: string[] = [];
    for (const i of [0, 1]) {
      const { url, hops } = c.build('/hello');
      const traceId = hex(16);
      const answer = comparable(await send(url, { headers: { traceparent: `00-${traceId}-${hex(8)}-01` } }));
      expect(answer).toEqual(baseline.get(`${c.name} ${i}`));
      await waitFor('spans', () => agent!.spans().filter((s) => s.traceId === traceId).length >= hops.length * 2 - 1, 15_000).catch(() => undefined);
      problems.push(...(await traced(c.name, url, hops)));
    }
    expect(problems).toEqual([]);
  });

  it.each([0, 1, 2])('%s: GET /headers: parents and tracestate as the leaf received them', async (idx) => {
    const c = chains[idx];
    const problems: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { url, hops } = c.build('/headers');
      problems.push(...(await traced(c.name, url, hops)));
    }
    expect(problems).toEqual([]);
  });

  it.each(['POST', 'PUT', 'POST streamed'])('go client -> spring -> express, %s with a body', async (what) => {
    const [method, streamed] = what.split(' ');
    const c = chains[2];
    const problems: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { url, hops } = c.build('/headers', streamed ? '&stream=1' : '');
      problems.push(...(await traced(`go client ${what}`, url, hops, method, `body ${i} ${'x'.repeat(200 * i)}`)));
    }
    expect(problems).toEqual([]);
  });
});
