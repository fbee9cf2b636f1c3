/**
 * Node.js client calls that node's async ids cannot tie to a request are not guessed into a parent
 * (docs/node-async-linking.md): an Express service (axios, keep-alive agent) calling a Fastify
 * service after an `await` of a timer (`delay_ms`), both stock and traced by one agent. Each such
 * call is its own trace root (Node keeps no async context across `await` that a read-only observer
 * could follow; calls made in the handler's callback are linked: node-linking.test.ts), counted on /metrics as
 * `spanbridge_client_spans_unlinked_total{runtime="node"}`; the downstream server span is still
 * the child of that client span, and the header Fastify received names exactly that span.
 */
import * as http from 'node:http';
import { send } from './helpers/chains';
import { freePort } from './helpers/collector';
import { callUrl, startFramework, type FrameworkService } from './helpers/frameworks';
import { requireRootAndBpf } from './helpers/privileges';
import { startAgent, waitFor, type AgentProcess } from './helpers/processes';

function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

function counterValue(text: string, line: string): number {
  const l = text.split('\n').find((x) => x.startsWith(line + ' '));
  return l ? Number(l.slice(line.length + 1)) : 0;
}

const CALLS = 6;

describe('Node.js client calls: unlinked and counted, never guessed', () => {
  let front: FrameworkService;
  let leaf: FrameworkService;
  let agent: AgentProcess | undefined;
  let promPort: number;

  beforeAll(async () => {
    requireRootAndBpf();
    [front, leaf] = await Promise.all([startFramework('express', 'node-front'), startFramework('fastify', 'node-leaf')]);
    promPort = await freePort();
    agent = await startAgent(['--pid', String(front.proc.pid), '--pid', String(leaf.proc.pid), '--export', 'none', '--prometheus-port', String(promPort)], {}, 120_000);
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([front?.proc.stop(), leaf?.proc.stop()]);
  });

  it('each call: a root client span, its downstream child, the echoed header naming it; counted on /metrics', async () => {
    const echoed: string[] = [];
    for (let i = 0; i < CALLS; i++) {
      const r = await send(callUrl(front, `${leaf.url}/headers`, '&delay_ms=20'));
      expect(r.status).toBe(200);
      echoed.push((JSON.parse(r.body.replace(/^node-front -> /, '')) as { traceparent: string }).traceparent);
    }
    const clientsOfFront = (): ReturnType<AgentProcess['spans']> =>
      agent!.spans().filter((s) => s.kind === 'CLIENT' && s.resource['service.name'] === 'node-front' && String(s.attributes['url.full']).endsWith('/headers'));
    await waitFor('client spans of node-front', () => clientsOfFront().length >= CALLS, 30_000);
    const clients = clientsOfFront();
    const leafServers = agent!.spans().filter((s) => s.kind === 'SERVER' && s.resource['service.name'] === 'node-leaf');
    for (const c of clients) {
      // no in-process parent: never a guess among the server requests in flight
      expect(c.parentSpanId).toBe('');
      expect(c.attributes['spanbridge.parent.source']).toBeUndefined();
    }
    for (const tp of echoed) {
      // the agent inserted one (sk_msg): Express sends none of its own
      expect(tp).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
      const [, traceId, spanId] = tp.split('-');
      // the header the leaf received is the client span the agent reported
      const c = clients.find((x) => x.spanId === spanId);
      expect(c).toBeDefined();
      expect(c!.traceId).toBe(traceId);
      // and the leaf's server span is its child
      expect(leafServers.find((s) => s.traceId === traceId)?.parentSpanId).toBe(spanId);
    }
    let unlinked = 0;
    await waitFor('unlinked counter', async () => {
      unlinked = counterValue(await scrape(promPort), 'spanbridge_client_spans_unlinked_total{runtime="node"}');
      return unlinked >= CALLS;
    }, 30_000).catch(() => undefined);
    expect(unlinked).toBeGreaterThanOrEqual(CALLS);
  }, 120_000);
});
