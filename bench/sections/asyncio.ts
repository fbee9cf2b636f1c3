/**
 * Python asyncio linking (issue 14 item 2, bpf/sys_http/sys_http_asyncio.h): the stock FastAPI (uvicorn +
 * httpx) and aiohttp (server + client) test services on the pinned CPython 3.11 venv, on asyncio's
 * loop and on uvloop's (PyContext_Exit, task_wakeup, TaskStepMethWrapper_call, uv_read_start), pinned to
 * the server CPU, each answering /call by calling the Python test server (keep-alive pools in
 * both clients). What linking their client calls to their requests costs (./linking.ts): uprobe
 * hits per request at Context.run, Task.__init__ and Future.set_result, tracepoint hits and the
 * agent's BPF time per request (BPF statistics), hits x the measured cost of one uprobe hit (floor
 * section), and the whole agent's added p50 at a fixed rate (alternating rounds without / with the
 * agent; syscall tracing of both connections and sk_msg insertion included).
 */
import path from 'node:path';
import { REPO_ROOT } from '../lib/config';
import { freePort, spawnPinned, waitForPort, type Child } from '../lib/procs';
import { section, type SectionResult } from '../lib/report';
import { startServer, type BenchContext } from './context';
import { measureLinkedService } from './linking';

const VENV_BIN = path.join(REPO_ROOT, 'build', 'frameworks', 'py', 'bin');
const APPS = path.join(REPO_ROOT, 'test', 'frameworks', 'python');
const COUNT_REQUESTS = 1000;
const COUNT_RATE = 100;
const RATE = 50;

type App = 'fastapi' | 'aiohttp';
type Loop = 'asyncio' | 'uvloop';

async function startApp(ctx: BenchContext, app: App, loop: Loop): Promise<{ child: Child; addr: string }> {
  const port = await freePort();
  const env = { OTEL_SERVICE_NAME: `bench-${app}`, EVENT_LOOP: loop };
  // uvicorn's default loop (`auto`) takes uvloop where it is installed, as in the venv: said outright
  const child =
    app === 'fastapi'
      ? spawnPinned(ctx.config.serverCpu, path.join(VENV_BIN, 'uvicorn'), ['--app-dir', APPS, '--host', '127.0.0.1', '--port', String(port), '--loop', loop, '--log-level', 'warning', 'fastapi_app:app'], env)
      : spawnPinned(ctx.config.serverCpu, path.join(VENV_BIN, 'python'), [path.join(APPS, 'aiohttp_app.py'), String(port)], env);
  await waitForPort(port, 30_000, 50);
  return { child, addr: `127.0.0.1:${port}` };
}

export async function asyncioSection(ctx: BenchContext): Promise<SectionResult> {
  const s = section('asyncio', 'Python asyncio linking (uprobes at Context.run, Task.__init__, Future.set_result; on uvloop also PyContext_Exit, task_wakeup, TaskStepMethWrapper_call, uv_read_start; CPython 3.11)');
  const leaf = await startServer(ctx, 'python');
  try {
    const runs: [App, Loop][] = [['fastapi', 'asyncio'], ['aiohttp', 'asyncio'], ['fastapi', 'uvloop'], ['aiohttp', 'uvloop']];
    for (const [app, loop] of runs) {
      const svc = await startApp(ctx, app, loop);
      const id = loop === 'asyncio' ? app : `${app}_uvloop`;
      try {
        await measureLinkedService(ctx, s, {
          id: `asyncio.${id}`, label: `${app}${loop === 'uvloop' ? ' on uvloop' : ''} /call`, child: svc.child, addr: svc.addr, callPath: `/call?url=${encodeURIComponent(leaf.url)}`,
          rate: RATE, countRate: COUNT_RATE, countRequests: COUNT_REQUESTS, reportMatch: /asyncio/i,
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
