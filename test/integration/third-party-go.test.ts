/**
 * "A Go service nobody here wrote": the stock OpenTelemetry Collector (built from upstream
 * modules, stripped, ~100 MB) is itself a Go net/http server. The agent traces its OTLP/HTTP
 * receiver like any other service, and delivers those spans to a second Collector.
 */
import http from 'node:http';
import { startCollector, type RunningCollector } from './helpers/collector';
import { startAgent, waitFor, waitForTraced, type AgentProcess } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';

function post(url: string, body: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('tracing a third-party Go service: the stock Collector itself', () => {
  let target: RunningCollector;
  let sink: RunningCollector;
  let agent: AgentProcess;

  beforeAll(async () => {
    requireRootAndBpf();
    target = await startCollector();
    sink = await startCollector();
    agent = await startAgent(['--pid', String(target.pid), '--otlp-endpoint', sink.endpoint]);
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await target?.stop();
    await sink?.stop();
  });

  it('its OTLP/HTTP receiver requests become SERVER spans that continue the caller trace', async () => {
    const traced = await waitForTraced(agent, target.pid);
    expect(traced.exe).toMatch(/otelcol/);
    expect(traced.tracer).toMatch(/^Go uprobes \(go1\.\d+/);
    const tp = '00-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174-01';
    expect(await post(target.tracesEndpoint, '{"resourceSpans":[]}', { traceparent: tp })).toBe(200);
    expect(await post(`${target.endpoint}/v1/nothing-here`, '{}', {})).toBe(404);
    const spans = await sink.waitForSpans((s) => s.length >= 2, 30_000);
    const ok = spans.find((s) => s.attributes['url.path'] === '/v1/traces');
    expect(ok).toBeDefined();
    expect(ok!.kind).toBe('SERVER');
    expect(ok!.traceId).toBe('5b8efff798038103d269b633813fc60c');
    expect(ok!.parentSpanId).toBe('eee19b7ec3c1b174');
    expect(ok!.attributes['http.request.method']).toBe('POST');
    expect(ok!.attributes['http.response.status_code']).toBe(200);
    expect(ok!.resource['process.pid']).toBe(target.pid);
    const missing = spans.find((s) => s.attributes['url.path'] === '/v1/nothing-here');
    expect(missing!.attributes['http.response.status_code']).toBe(404);
    expect(missing!.status.code).toBe('UNSET'); // 4xx is not a server error
    await waitFor('printed spans', () => agent.spans().length >= 2);
  });
});
