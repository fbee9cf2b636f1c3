/**
 * Socket-level injection into connections that existed before the agent attached: a Go frontend
 * already holds a keep-alive connection to its backend when the agent starts. sock_ops never saw
 * that connect(); the agent takes the connection over (pidfd_getfd + SOCKHASH update) and the
 * next request on it carries exactly the reported client span's traceparent.
 */
import http from 'node:http';
import { buildGoApp } from '../helpers/go-build';
import { freePort } from './helpers/collector';
import { echoedTraceparents, frontendPair } from './helpers/go-chain';
import { startAgent, startProcess, waitFor, waitForPort, waitForTraced, type AgentProcess, type Running } from './helpers/processes';
import { lockedDown, requireRootAndBpf } from './helpers/privileges';
import { outgoingConnections } from '../../src/tracers/sk-inject-tracer';

const maybe = lockedDown() ? describe : describe.skip;

maybe('sk_msg injection into keep-alive connections opened before the agent', () => {
  let backend: Running;
  let frontend: Running;
  let agent: AgentProcess | undefined;
  let frontendPort: number;
  let backendPort: number;

  const get = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const q = new URLSearchParams({ target: `http://127.0.0.1:${backendPort}/headers` });
      http
        .get({ host: '127.0.0.1', port: frontendPort, path: `/sync?${q}`, agent: false }, (res) => {
          let b = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => (b += d));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });

  /** One request through the frontend: its backend call carries exactly the reported client span's
   * traceparent, on the same (taken-over) connection. */
  const expectNextRequestCarriesClientSpan = async (): Promise<void> => {
    const tps = echoedTraceparents(await get());
    expect(tps).toHaveLength(1);
    const pair = await waitFor('pair', () => {
      const p = frontendPair(agent!.spans(), frontend.pid, '/sync');
      return p.length === 1 && p[0].client && p[0];
    });
    expect(tps[0]).toBe(`00-${pair.server.traceId}-${pair.client!.spanId}-01`);
    expect(outgoingConnections(frontend.pid)).toHaveLength(1); // the same connection was reused
  };

  beforeAll(async () => {
    requireRootAndBpf();
    [frontendPort, backendPort] = [await freePort(), await freePort()];
    backend = startProcess(buildGoApp('goserver'), ['-addr', `127.0.0.1:${backendPort}`]);
    frontend = startProcess(buildGoApp('gochain'), ['-addr', `127.0.0.1:${frontendPort}`]);
    await waitForPort(backendPort, 60_000);
    await waitForPort(frontendPort, 60_000);
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    await frontend?.stop();
    await backend?.stop();
  });

  it('the pre-existing connection is found in /proc (outgoing, established) and the listener is not', async () => {
    expect(echoedTraceparents(await get())).toEqual([]); // no agent yet: opens the keep-alive connection
    expect(outgoingConnections(frontend.pid)).toHaveLength(1);
    expect(outgoingConnections(backend.pid)).toEqual([]); // only an accepted connection
  });

  it('after the agent attaches, the next request on that connection carries the client span', async () => {
    agent = await startAgent(['--pid', String(frontend.pid), '--pid', String(backend.pid), '--export', 'none'], {}, 120_000);
    expect(await waitForTraced(agent, frontend.pid)).toMatchObject({ injection: 'sk_msg', connectionsTakenOver: 1 });
    await expectNextRequestCarriesClientSpan();
  });

  it('an agent pinned to one CPU (sk_msg loads after the span tracers, which attach first) takes the connection over when sk_msg joins, before its ready file', async () => {
    await agent?.stop();
    agent = await startAgent(['--pid', String(frontend.pid), '--pid', String(backend.pid), '--export', 'none'], {}, 120_000, { cpus: '0' });
    // Said right after the ready file: sk_msg runs and selected both processes attached before it.
    expect(await waitForTraced(agent, frontend.pid)).toMatchObject({ injection: 'sk_msg', connectionsTakenOver: 1 });
    expect(await waitForTraced(agent, backend.pid)).toMatchObject({ injection: 'sk_msg' });
    await expectNextRequestCarriesClientSpan();
  });
});
