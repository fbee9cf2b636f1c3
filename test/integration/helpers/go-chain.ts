/**
 * A two-service Go chain with no tracing code: test/apps/gochain (frontend: calls a target
 * synchronously, from goroutines, with its own traceparent, with huge headers) in front of
 * test/apps/goserver (backend: /headers echoes the headers it received), plus the agent tracing
 * both. Used on the host (lockdown: no injection) and in the VM suite (injection on).
 */
import http from 'node:http';
import { buildGoApp, type GoLink, type GoToolchain } from '../../helpers/go-build';
import { freePort } from './collector';
import { requireRootAndBpf } from './privileges';
import { startAgent, startProcess, waitForPort, type AgentProcess, type PrintedSpanLine, type Running } from './processes';

export interface GoChain {
  readonly frontend: Running;
  readonly backend: Running;
  readonly agent: AgentProcess;
  readonly frontendPort: number;
  readonly backendPort: number;
  /** The agent's Prometheus endpoint (self-metrics, kernel drop counters). */
  readonly metricsPort: number;
  /** GET on the frontend; `route` e.g. '/sync', with target = backend path. */
  get(route: string, backendPath: string, extra?: Record<string, string>, agentOpt?: http.Agent): Promise<{ status: number; body: string }>;
  stop(): Promise<void>;
}

export interface GoChainOptions {
  /** How the frontend is linked (default static). */
  readonly frontendLink?: GoLink;
  /** The agent's environment on top of the test's. */
  readonly agentEnv?: NodeJS.ProcessEnv;
}

export async function startGoChain(toolchain: GoToolchain, agentArgs: string[] = [], opts: GoChainOptions = {}): Promise<GoChain> {
  const frontendBin = buildGoApp('gochain', toolchain, '', opts.frontendLink ?? 'static');
  const backendBin = buildGoApp('goserver', toolchain);
  const [frontendPort, backendPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const backend = startProcess(backendBin, ['-addr', `127.0.0.1:${backendPort}`]);
  const frontend = startProcess(frontendBin, ['-addr', `127.0.0.1:${frontendPort}`]);
  let agent: AgentProcess;
  try {
    await waitForPort(backendPort, 60_000);
    await waitForPort(frontendPort, 60_000);
    agent = await startAgent(
      ['--pid', String(frontend.pid), '--pid', String(backend.pid), '--export', 'none', '--prometheus-port', String(metricsPort), ...agentArgs],
      opts.agentEnv ?? {},
      120_000,
    );
  } catch (err) {
    // Never leave the services running: jest would wait for them after the suite failed.
    await Promise.all([frontend.stop(), backend.stop()]);
    throw err;
  }
  const get = (route: string, backendPath: string, extra: Record<string, string> = {}, agentOpt?: http.Agent) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const q = new URLSearchParams({ target: `http://127.0.0.1:${backendPort}${backendPath}`, ...extra });
      http
        .get({ host: '127.0.0.1', port: frontendPort, path: `${route}?${q}`, agent: agentOpt ?? false }, (res) => {
          let body = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
  return {
    frontend,
    backend,
    agent,
    frontendPort,
    backendPort,
    metricsPort,
    get,
    async stop() {
      await agent.stop();
      await frontend.stop();
      await backend.stop();
    },
  };
}

/**
 * The chain on the host for the enclosing describe block: started before its tests (root and BPF
 * required), stopped after them. The returned function gives the running chain.
 */
export function goChainForSuite(toolchain: GoToolchain, opts: GoChainOptions = {}): () => GoChain {
  let chain: GoChain | undefined;
  beforeAll(async () => {
    requireRootAndBpf();
    chain = await startGoChain(toolchain, [], opts);
  }, 180_000);
  afterAll(async () => {
    await chain?.stop();
  });
  return () => {
    if (!chain) throw new Error('the Go chain did not start (see beforeAll)');
    return chain;
  };
}

/** The traceparent values a /headers echo body contains. */
export function echoedTraceparents(body: string): string[] {
  return body
    .split('\n')
    .filter((l) => l.toLowerCase().startsWith('traceparent:'))
    .map((l) => l.slice('traceparent:'.length).trim());
}

/** Spans of one trace, indexed for assertions. */
export function spansOfTrace(spans: PrintedSpanLine[], traceId: string): PrintedSpanLine[] {
  return spans.filter((s) => s.traceId === traceId);
}

/** The SERVER span of the frontend for a given route path, and the CLIENT span under it. */
export function frontendPair(spans: PrintedSpanLine[], frontendPid: number, path: string): { server: PrintedSpanLine; client: PrintedSpanLine | undefined }[] {
  const servers = spans.filter((s) => s.kind === 'SERVER' && s.resource['process.pid'] === frontendPid && s.attributes['url.path'] === path);
  return servers.map((server) => ({
    server,
    client: spans.find((s) => s.kind === 'CLIENT' && s.parentSpanId === server.spanId),
  }));
}

/**
 * GET /sync on the gochain frontend at `frontPort` (it calls `http://127.0.0.1:${targetPort}${path}`
 * on the handler's goroutine) through `agent`; resolves with the status.
 */
export function syncCall(frontPort: number, targetPort: number, path: string, agent: http.Agent): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const q = new URLSearchParams({ target: `http://127.0.0.1:${targetPort}${path}` });
    http
      .get({ host: '127.0.0.1', port: frontPort, path: `/sync?${q}`, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}
