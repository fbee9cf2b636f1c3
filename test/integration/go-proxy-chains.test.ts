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
import { callUrl, startFramework, type FrameworkService } from './helpers/frameworks';
import { baselineOf, checkChainRequest, clientHop, serverHop, type Answer, type ChainCase, type Hop } from './helpers/chain-check';
import { freePort } from './helpers/collector';
import { lockedDown, requireRootAndBpf } from './helpers/privileges';
import { startAgent, type AgentProcess } from './helpers/processes';

const maybe = lockedDown() ? describe : describe.skip;

maybe('Go reverse proxy and Go client bodies in chains with Python services (locked-down host: sk_msg)', () => {
  let flask: FrameworkService;
  let django: FrameworkService;
  let proxy: FrameworkService;
  let agent: AgentProcess;
  let metricsPort: number;
  const baseline = new Map<string, Answer>();

  const body = 'x'.repeat(3000) + '\nGET /not-a-request HTTP/1.1\r\nhost: x\r\n\r\n';
  const server = serverHop;
  const client = clientHop;
  const incoming = true;
  const proxyToFlask = (): Hop[] => [server(() => proxy), client(() => proxy), server(() => flask)];
  const cases: ChainCase[] = [
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
    for (const c of cases) baseline.set(c.name, await baselineOf(c));
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

  const ROUNDS = 3;

  it('uses socket-level injection', async () => {
    expect(await agent.metric('spanbridge_header_injection', { runtime: 'go', method: 'sk_msg' })).toBe(1);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s: one trace, the expected spans and parents, one header = the CLIENT span', async (_name, c) => {
    for (let round = 0; round < ROUNDS; round++) await checkChainRequest(agent, c, baseline.get(c.name)!);
  });

  it('no span id appears twice, and every Go client request with a body was handed to sk_msg', async () => {
    const ids = agent.spans().map((s) => s.spanId);
    expect(new Set(ids).size).toBe(ids.length);
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const lost = /^spanbridge_kernel_drops\{reason="inject_skip_socket_lost"\} (\d+)$/m.exec(text);
    expect(Number(lost?.[1] ?? 0)).toBe(0);
  });

  it('kernel counters at stop: nothing refused', async () => {
    const counters = await agent.kernelCounters();
    const goSyscallClients = (await agent.processes()).some((p) => p.clientSpans === 'syscall');
    await agent.stop();
    expect(counters.sk_inject_done).toBeGreaterThanOrEqual(1);
    // every forwarded traceparent (3 reverse-proxy cases x 3 rounds) replaced in place; the
    // forward is seen by the header writer's uprobe, or by the syscall path's write (default)
    if (goSyscallClients) expect(counters.sys_http_link_forwarded).toBeGreaterThanOrEqual(3 * ROUNDS);
    else expect(counters.inject_forwarded).toBe(3 * ROUNDS);
    expect(counters.sk_inject_replaced).toBe(3 * ROUNDS);
    expect(counters.sk_inject_skip_replace ?? 0).toBe(0);
    expect(counters.inject_skip_socket_lost ?? 0).toBe(0);
    expect(counters.sk_inject_skip_push_failed ?? 0).toBe(0);
  });
});
