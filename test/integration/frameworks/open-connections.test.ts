/**
 * Connections open before the agent attached (issue 13, item 6): a Flask worker (gunicorn, a
 * requests.Session pool) holds a warm keep-alive connection to Express, and Express (axios
 * keep-alive agent) one to Fastify, when the agent starts (gunicorn's sync workers close every
 * connection, so nothing keeps one open towards Flask). The next request on each such connection
 * must get its CLIENT span, the inserted traceparent carrying that span's id, and the downstream
 * SERVER span as its child (the accepted end is taken over too), over the same connection.
 */
import { readFileSync } from 'node:fs';
import { checkChain, echoed, hex, send } from '../helpers/chains';
import { callUrl, startFramework, type FrameworkService } from '../helpers/frameworks';
import { startAgent, waitFor, type AgentProcess } from '../helpers/processes';
import { requireRootAndBpf } from '../helpers/privileges';
import { openConnections } from '../../../src/discovery/process-sockets';

/** Inodes of `pid`'s outgoing connections (to anywhere). */
const clientInodes = (pid: number): bigint[] =>
  openConnections(pid)
    .filter((c) => c.role === 'client')
    .map((c) => c.inode)
    .sort();

describe('connections open before the agent attached are taken over', () => {
  let flask: FrameworkService;
  let express: FrameworkService;
  let fastify: FrameworkService;
  let agent: AgentProcess | undefined;
  let worker: number;

  beforeAll(async () => {
    requireRootAndBpf();
    [flask, express, fastify] = await Promise.all([
      startFramework('flask-gunicorn', 'flask-warm', { workers: 1 }),
      startFramework('express', 'express-warm'),
      startFramework('fastify', 'fastify-warm'),
    ]);
    worker = Number(readFileSync(`/proc/${flask.proc.pid}/task/${flask.proc.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await flask?.proc.stop();
    await express?.proc.stop();
    await fastify?.proc.stop();
  });

  it('warm pools exist before the agent', async () => {
    expect((await send(callUrl(flask, `${express.url}/hello`))).status).toBe(200);
    expect((await send(callUrl(express, `${fastify.url}/hello`))).status).toBe(200);
    expect(clientInodes(worker)).toHaveLength(1);
    expect(clientInodes(express.proc.pid)).toHaveLength(1);
  });

  it('Python (requests pool): the request on the pre-existing connection has its client span, header and downstream link', async () => {
    const before = clientInodes(worker);
    agent = await startAgent(['--pid', String(flask.proc.pid), '--pid', String(express.proc.pid), '--pid', String(fastify.proc.pid), '--export', 'none']);
    const traceId = hex(16);
    const spanId = hex(8);
    const target = `${express.url}/headers`;
    const answer = await send(callUrl(flask, target), { headers: { traceparent: `00-${traceId}-${spanId}-01`, tracestate: 'warm=1' } });
    const hops = [
      { service: 'flask-warm', path: '/call', calls: target },
      { service: 'express-warm', path: '/headers' },
    ];
    await waitFor('3 spans', () => agent!.spans().filter((s) => s.traceId === traceId).length >= 3, 20_000).catch(() => undefined);
    expect(checkChain(agent.spans(), { traceId, spanId, tracestate: 'warm=1' }, hops, 'GET', answer)).toEqual([]);
    expect(clientInodes(worker)).toEqual(before); // it went over the connection opened before the agent
  });

  it('Node (axios keep-alive agent): the pre-existing connection carries the client span\'s header', async () => {
    const before = clientInodes(express.proc.pid);
    const answer = await send(callUrl(express, `${fastify.url}/headers`));
    expect(answer.status).toBe(200);
    const tp = echoed(answer.body)?.traceparent ?? '';
    expect(tp).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const [, traceId, clientId] = tp.split('-');
    // Express's SERVER (the /call request: node's async ids link the call made in its callback),
    // its CLIENT, and Fastify's SERVER.
    const spans = await waitFor('express SERVER + CLIENT + fastify SERVER', () => {
      const s = agent!.spans().filter((x) => x.traceId === traceId);
      return s.length >= 3 && s;
    }, 20_000);
    const client = spans.find((s) => s.kind === 'CLIENT');
    const front = spans.find((s) => s.kind === 'SERVER' && s.resource['service.name'] === 'express-warm');
    const server = spans.find((s) => s.kind === 'SERVER' && s.resource['service.name'] === 'fastify-warm');
    expect([client?.resource['service.name'], client?.spanId, client?.attributes['url.full']]).toEqual(['express-warm', clientId, `${fastify.url}/headers`]);
    expect([client?.parentSpanId, client?.attributes['spanbridge.parent.source']]).toEqual([front?.spanId, 'node_async']);
    expect(server?.parentSpanId).toBe(clientId);
    expect(spans).toHaveLength(3);
    expect(clientInodes(express.proc.pid)).toEqual(before);
  });
});
