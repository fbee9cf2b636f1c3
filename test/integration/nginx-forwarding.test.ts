/**
 * A non-Go proxy that forwards the incoming `traceparent`: Debian's nginx (`proxy_pass`, which
 * passes every request header on) in front of Flask on gunicorn, both traced from syscall
 * tracepoints, headers written by sk_msg (this host's lockdown). The forwarded value is not the
 * application's own span: nginx's CLIENT span is the child of its SERVER span, and Flask receives
 * the CLIENT span's id in place of the forwarded one (one header, never two). A request without a
 * traceparent gets one inserted. Answers equal the untraced ones but for the echoed value.
 */
import { baselineOf, checkChainRequest, clientHop, serverHop, type Answer, type ChainCase, type ChainService } from './helpers/chain-check';
import { startFramework, startNginx, type FrameworkService } from './helpers/frameworks';
import { requireRootAndBpf } from './helpers/privileges';
import { startAgent, type AgentProcess, type Running } from './helpers/processes';

/** nginx (one worker) sending every path to `upstream`. */
async function startNginxProxy(upstream: string): Promise<ChainService & { proc: Running; url: string }> {
  const n = await startNginx(`proxy_pass ${upstream};`);
  return { service: 'nginx', proc: n.proc, url: n.url };
}


describe('nginx forwarding traceparent to Flask (syscall path, sk_msg replaces the forwarded value)', () => {
  let flask: FrameworkService;
  let nginx: ChainService & { proc: Running; url: string };
  let agent: AgentProcess;
  const baseline = new Map<string, Answer>();
  const chain = () => [serverHop(() => nginx), clientHop(() => nginx), serverHop(() => flask)];
  const body = 'y'.repeat(2000);
  const cases: ChainCase[] = [
    { name: 'GET, forwarded traceparent', method: 'GET', url: () => `${nginx.url}/headers`, incoming: true, chain },
    { name: 'POST, forwarded traceparent', method: 'POST', url: () => `${nginx.url}/headers`, body, incoming: true, chain },
    { name: 'GET without traceparent', method: 'GET', url: () => `${nginx.url}/headers`, chain },
  ];

  beforeAll(async () => {
    requireRootAndBpf();
    flask = await startFramework('flask-gunicorn', 'flask', { workers: 2 });
    nginx = await startNginxProxy(flask.url);
    for (const c of cases) baseline.set(c.name, await baselineOf(c));
    agent = await startAgent(['--open-port', String(new URL(nginx.url).port), '--open-port', String(flask.port), '--export', 'none'], {}, 120_000);
  }, 300_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([nginx?.proc.stop(), flask?.proc.stop()]);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s: one trace nginx SERVER -> nginx CLIENT -> Flask SERVER, one header = the CLIENT span', async (_name, c) => {
    for (let round = 0; round < 3; round++) await checkChainRequest(agent, c, baseline.get(c.name)!);
  });

  it('counts the forwarded values replaced in place, and no span id twice', async () => {
    const ids = agent.spans().map((s) => s.spanId);
    expect(new Set(ids).size).toBe(ids.length);
    const counters = await agent.kernelCounters();
    await agent.stop();
    expect(counters.sys_http_link_forwarded).toBe(6);
    expect(counters.sk_inject_replaced).toBe(6);
    expect(counters.sk_inject_skip_replace ?? 0).toBe(0);
  });
});
