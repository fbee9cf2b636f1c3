/**
 * Node.js linking (issue 14 item 1): the stock Express test service (test/frameworks/node), pinned
 * to the server CPU, answering /call by calling the Go test server (untraced) with axios over a
 * keep-alive agent and, in a second run, with `fetch` (undici's pool). The agent traces the Express
 * process alone. Whatever linking the agent has for Node is measured as it runs (./linking.ts):
 * the start-up report's words for Node, kernel link counters and unlinked client spans over the
 * counted run, uprobe and tracepoint hits and BPF time per request, and the added p50. Until Node
 * is linked, the figures are the cost of its syscall tracing alone, and the note says "not linked".
 */
import path from 'node:path';
import { REPO_ROOT } from '../lib/config';
import { freePort, spawnPinned, waitForPort, type Child } from '../lib/procs';
import { section, type SectionResult } from '../lib/report';
import { startServer, type BenchContext } from './context';
import { measureLinkedService } from './linking';

const APP = path.join(REPO_ROOT, 'test', 'frameworks', 'node', 'express_app.js');
const COUNT_REQUESTS = 2000;
const COUNT_RATE = 500;
const RATE = 100;

type Client = 'axios' | 'fetch';

/** The Node.js to run the service with: SPANBRIDGE_BENCH_NODE (e.g. another release line), else the harness's own. */
const NODE = process.env.SPANBRIDGE_BENCH_NODE || process.execPath;

async function startExpress(ctx: BenchContext, client: Client): Promise<{ child: Child; addr: string }> {
  const port = await freePort();
  const env = { OTEL_SERVICE_NAME: `bench-express-${client}`, ...(client === 'fetch' ? { CLIENT: 'fetch' } : {}) };
  const child = spawnPinned(ctx.config.serverCpu, NODE, [APP, String(port)], env);
  try {
    await waitForPort(port, 30_000, 50);
  } catch (err) {
    await child.stop();
    throw new Error(`express (${client}) did not start: ${(err as Error).message}\n${child.stderr().slice(-1000)}`);
  }
  return { child, addr: `127.0.0.1:${port}` };
}

export async function nodeLinkingSection(ctx: BenchContext): Promise<SectionResult> {
  const s = section('nodelink', `Node.js linking (Express /call with axios and fetch; ${path.basename(NODE)} ${NODE === process.execPath ? process.version : ''})`.replace(' )', ')'));
  const leaf = await startServer(ctx, 'go');
  try {
    for (const client of ['axios', 'fetch'] as const) {
      const svc = await startExpress(ctx, client);
      try {
        await measureLinkedService(ctx, s, {
          id: `nodelink.express_${client}`, label: `Express + ${client} /call`, child: svc.child, addr: svc.addr, callPath: `/call?url=${encodeURIComponent(leaf.url)}`,
          rate: RATE, countRate: COUNT_RATE, countRequests: COUNT_REQUESTS, reportMatch: /node/i,
        });
      } finally {
        await svc.child.stop();
      }
    }
  } finally {
    await leaf.child.stop();
  }
  return s;
}
