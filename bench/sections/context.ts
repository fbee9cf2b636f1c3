/** What every section gets from the harness, and the shared "rounds" and server helpers. */
import path from 'node:path';
import type { BenchConfig } from '../lib/config';
import { REPO_ROOT } from '../lib/config';
import { freePort, spawnPinned, waitForPort, type Child } from '../lib/procs';
import type { Sink } from '../lib/sink';

export interface BenchContext {
  readonly config: BenchConfig;
  readonly sink: Sink;
  log(msg: string): void;
  /** Measured cost of one uprobe hit (floor section), microseconds. */
  uprobeFloorUs?: { value: number; rounds: number; source: string };
  /** Saturated throughput of each server without the agent (go / sys sections), req/s. */
  saturatedRps?: Partial<Record<ServerKind, number>>;
}

export interface Server {
  readonly child: Child;
  readonly addr: string;
  readonly url: string;
  readonly path: string;
  /** The untraced service it calls (gochain only), on the same CPU. */
  readonly downstream?: Child;
}

export type ServerKind = 'go' | 'gochain' | 'node' | 'python';

/**
 * The test services, pinned to the server CPU: Go net/http, a Go net/http server calling the Go
 * test server once per request (bench/go/chain; only the front is traced), Node's http or Python's
 * ThreadingHTTPServer (syscall path; bench/python/threaded_server.py: the Python test service's
 * handler with TCP_NODELAY, the standard library's disable_nagle_algorithm, so its two sends per
 * response are not paced by the client's delayed ACK).
 */
export async function startServer(ctx: BenchContext, kind: ServerKind): Promise<Server> {
  const downstream = kind === 'gochain' ? await startServer(ctx, 'go') : undefined;
  const port = await freePort();
  const child =
    kind === 'go'
      ? spawnPinned(ctx.config.serverCpu, path.join(ctx.config.binDir, 'goserver'), [], { PORT: String(port) })
      : kind === 'gochain'
        ? spawnPinned(ctx.config.serverCpu, path.join(ctx.config.binDir, 'chain'), [], { PORT: String(port), DOWNSTREAM: `http://${downstream!.addr}` })
        : kind === 'node'
          ? spawnPinned(ctx.config.serverCpu, process.execPath, [path.join(REPO_ROOT, 'test/apps/node-http/server.js'), String(port)])
          : spawnPinned(ctx.config.serverCpu, 'python3', [path.join(REPO_ROOT, 'bench/python/threaded_server.py'), String(port)]);
  try {
    await waitForPort(port, 20_000, 50);
  } catch (err) {
    await child.stop();
    await downstream?.child.stop();
    throw err;
  }
  const addr = `127.0.0.1:${port}`;
  return { child, addr, path: '/items/1', url: `http://${addr}/items/1`, downstream: downstream?.child };
}

/** Stops a server and the service it calls. */
export async function stopServer(server: Server): Promise<void> {
  await server.child.stop();
  await server.downstream?.stop();
}

/**
 * Alternating rounds: without(0), with(0), without(1), with(1), ... Each arm returns a record of
 * numbers; the result holds one array per arm.
 */
export async function alternate<A, B>(ctx: BenchContext, label: string, without: (i: number) => Promise<A>, withAgent: (i: number) => Promise<B>): Promise<{ without: A[]; with: B[] }> {
  const out = { without: [] as A[], with: [] as B[] };
  for (let i = 0; i < ctx.config.rounds; i++) {
    ctx.log(`${label}: round ${i + 1}/${ctx.config.rounds} without agent`);
    out.without.push(await without(i));
    ctx.log(`${label}: round ${i + 1}/${ctx.config.rounds} with agent`);
    out.with.push(await withAgent(i));
  }
  return out;
}
