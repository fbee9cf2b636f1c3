/**
 * Python asyncio linking (issue 14 item 2, bpf/sys_http_asyncio.h): the stock FastAPI (uvicorn +
 * httpx) and aiohttp (server + client) test services on the pinned CPython 3.11 venv, pinned to
 * the server CPU, each answering /call by calling the Python test server (keep-alive pools in
 * both clients). What linking their client calls to their requests costs: uprobe hits per request
 * at Context.run, Task.__init__ and Future.set_result (BPF statistics) x the measured cost of one
 * uprobe hit (floor section), and the whole agent's added p50 at a fixed rate (alternating rounds
 * without / with the agent; syscall tracing of both connections and sk_msg insertion included).
 */
import path from 'node:path';
import { startAgent } from '../lib/agent';
import { agentProgStats, isUprobeProg, progDelta, withBpfStats } from '../lib/bpf-stats';
import { REPO_ROOT } from '../lib/config';
import { loadgen } from '../lib/load';
import { freePort, spawnPinned, waitForPort, type Child } from '../lib/procs';
import { fig, section, type SectionResult } from '../lib/report';
import { pairedDifference, round } from '../lib/stats';
import { alternate, startServer, type BenchContext } from './context';

const VENV_BIN = path.join(REPO_ROOT, 'build', 'frameworks', 'py', 'bin');
const APPS = path.join(REPO_ROOT, 'test', 'frameworks', 'python');
const COUNT_REQUESTS = 1000;
const COUNT_RATE = 100;
const RATE = 50;

type App = 'fastapi' | 'aiohttp';

async function startApp(ctx: BenchContext, app: App): Promise<{ child: Child; addr: string }> {
  const port = await freePort();
  const env = { OTEL_SERVICE_NAME: `bench-${app}` };
  const child =
    app === 'fastapi'
      ? spawnPinned(ctx.config.serverCpu, path.join(VENV_BIN, 'uvicorn'), ['--app-dir', APPS, '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warning', 'fastapi_app:app'], env)
      : spawnPinned(ctx.config.serverCpu, path.join(VENV_BIN, 'python'), [path.join(APPS, 'aiohttp_app.py'), String(port)], env);
  await waitForPort(port, 30_000, 50);
  return { child, addr: `127.0.0.1:${port}` };
}

export async function asyncioSection(ctx: BenchContext): Promise<SectionResult> {
  const s = section('asyncio', 'Python asyncio linking (uprobes at Context.run, Task.__init__, Future.set_result; CPython 3.11)');
  const { config } = ctx;
  const leaf = await startServer(ctx, 'python');
  const floor = ctx.uprobeFloorUs ?? { value: 9.8, rounds: 0, source: 'docs (bare tracefs uprobe on this VM: 9.8 us)' };
  try {
    for (const app of ['fastapi', 'aiohttp'] as const) {
      const svc = await startApp(ctx, app);
      const callPath = `/call?url=${encodeURIComponent(leaf.url)}`;
      try {
        await loadgen(config, { addr: svc.addr, path: callPath, rate: RATE, seconds: 1 }); // warm
        let hits: { perRequest: number; nsPerHit: number; requests: number; linked: number; byProg: string } | undefined;
        const rounds = await alternate(
          ctx,
          `${s.id}.${app}`,
          async () => (await loadgen(config, { addr: svc.addr, path: callPath, rate: RATE })).serviceUs.p50,
          async (i) => {
            const agent = await startAgent(config, { pids: [svc.child.pid], otlpEndpoint: ctx.sink.endpoint });
            try {
              await loadgen(config, { addr: svc.addr, path: callPath, rate: RATE, seconds: 1 }); // warm the agent's path
              if (i === 0) {
                hits = await withBpfStats(async () => {
                  const before = agentProgStats(agent.pid);
                  const r = await loadgen(config, { addr: svc.addr, path: callPath, rate: COUNT_RATE, requests: COUNT_REQUESTS, conns: 4 });
                  const d = progDelta(before, agentProgStats(agent.pid)).filter(isUprobeProg);
                  const runs = d.reduce((a, x) => a + x.runs, 0);
                  const byProg = d.map((x) => `${x.name} ${round(x.runs / r.requests, 3)}`).join(', ');
                  return { perRequest: runs / r.requests, nsPerHit: runs ? d.reduce((a, x) => a + x.ns, 0) / runs : 0, requests: r.requests, linked: 0, byProg };
                });
              }
              const p50 = (await loadgen(config, { addr: svc.addr, path: callPath, rate: RATE })).serviceUs.p50;
              const { kernelLine } = await agent.shutdown();
              if (i === 0 && hits) hits.linked = Number(/sys_http_link_asyncio=(\d+)/.exec(kernelLine)?.[1] ?? 0);
              return p50;
            } finally {
              await agent.stop('SIGKILL');
            }
          },
        );
        (s.raw as Record<string, unknown>)[app] = { rounds, hits };
        if (hits) {
          s.figures.push(
            fig({ id: `asyncio.${app}.uprobe_hits`, label: `Uprobe hits per request, ${app} /call`, value: hits.perRequest, unit: 'hits', rounds: 1, detail: `BPF run-time statistics over ${hits.requests} requests at ${COUNT_RATE} req/s (4 keep-alive connections): ${hits.byProg}; agent BPF time ${round(hits.nsPerHit)} ns/hit; ${hits.linked} client requests linked in the kernel over the agent's run` }),
            fig({ id: `asyncio.${app}.link_us`, label: `Linking cost per request, ${app} (hits x uprobe floor)`, value: hits.perRequest * floor.value, unit: 'us', rounds: floor.rounds, detail: `${round(hits.perRequest, 3)} hits/request x ${round(floor.value)} us/hit (${floor.source})` }),
          );
        }
        const p50 = pairedDifference(rounds.without, rounds.with);
        s.figures.push(
          fig({
            id: `asyncio.${app}.p50_added_us`, label: `Added p50 latency, ${app} /call at ${RATE} req/s (whole agent)`, value: p50.perRound.median, unit: 'us', rounds: p50.perRound.n, spread: p50.perRound,
            detail: `service p50 ${round(p50.without.median)} us without, ${round(p50.with.median)} us with; syscall tracing of the server and client connections, sk_msg insertion and the asyncio uprobes`,
          }),
        );
      } finally {
        await svc.child.stop();
      }
    }
  } finally {
    await leaf.child.stop();
  }
  return s;
}
