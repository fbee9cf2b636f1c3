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
  /** Processes the server depends on (gochain's downstream), stopped with it. */
  readonly others?: readonly Child[];
}

export type ServerKind = 'go' | 'gochain' | 'node' | 'python';

/**
 * The test services, pinned to the server CPU: Go net/http, Node's http or Python's
 * ThreadingHTTPServer (syscall path); 'gochain' is the Go frontend test/apps/gochain calling one
 * downstream per request (its /sync handler: an http.Client GET, body read to the end and closed),
 * the downstream an untraced test/apps/goserver pinned to the server CPU too: the load CPU already
 * runs the load generator and the agent's user space, and a downstream there would make the
 * agent's span processing, not the traced process, the limit of the throughput with the agent.
 */
export async function startServer(ctx: BenchContext, kind: ServerKind): Promise<Server> {
  const port = await freePort();
  if (kind === 'gochain') {
    const downPort = await freePort();
    const down = spawnPinned(ctx.config.serverCpu, path.join(ctx.config.binDir, 'goserver'), [], { PORT: String(downPort) });
    await waitForPort(downPort, 20_000, 50);
    const child = spawnPinned(ctx.config.serverCpu, path.join(ctx.config.binDir, 'gochain'), ['-addr', `127.0.0.1:${port}`]);
    await waitForPort(port, 20_000, 50);
    const addr = `127.0.0.1:${port}`;
    const p = `/sync?target=${encodeURIComponent(`http://127.0.0.1:${downPort}/items/1`)}`;
    return { child, addr, path: p, url: `http://${addr}${p}`, others: [down] };
  }
  const child =
    kind === 'go'
      ? spawnPinned(ctx.config.serverCpu, path.join(ctx.config.binDir, 'goserver'), [], { PORT: String(port) })
      : kind === 'node'
        ? spawnPinned(ctx.config.serverCpu, process.execPath, [path.join(REPO_ROOT, 'test/apps/node-http/server.js'), String(port)])
        : spawnPinned(ctx.config.serverCpu, 'python3', [path.join(REPO_ROOT, 'test/apps/python-http/server.py'), String(port)]);
  await waitForPort(port, 20_000, 50);
  const addr = `127.0.0.1:${port}`;
  return { child, addr, path: '/items/1', url: `http://${addr}/items/1` };
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
