/**
 * nginx as a reverse proxy (issue 14 item 3): Debian's nginx, one worker, upstream keep-alive, in
 * front of the Go test server (untraced), pinned to the server CPU. The agent traces nginx (selected by
 * its master pid; the worker is traced from its fork). What linking upstream requests to their
 * downstream requests costs: uprobe hits per proxied request at ngx_chain_writer (BPF statistics)
 * x the measured cost of one uprobe hit (floor section), and the agent's whole added latency at a
 * fixed rate (alternating rounds without / with the agent; syscall tracing of both connections
 * included).
 */
import { rmSync } from 'node:fs';
import { NGINX, writeNginxConfig } from '../../test/frameworks/nginx/config';
import { startAgent } from '../lib/agent';
import { agentProgStats, isUprobeProg, progDelta, withBpfStats } from '../lib/bpf-stats';
import { loadgen } from '../lib/load';
import { freePort, spawnPinned, waitForPort, type Child } from '../lib/procs';
import { fig, section, type SectionResult } from '../lib/report';
import { pairedDifference, round } from '../lib/stats';
import { alternate, startServer, type BenchContext } from './context';

const COUNT_REQUESTS = 2000;

async function startNginxProxy(ctx: BenchContext, upstreamAddr: string): Promise<{ child: Child; addr: string; dir: string }> {
  const port = await freePort();
  const { dir, args } = writeNginxConfig('spanbridge-bench-nginx-', {
    port,
    location: 'proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";',
    workerConnections: 512,
    http: `upstream backend { server ${upstreamAddr}; keepalive 16; }`,
  });
  const child = spawnPinned(ctx.config.serverCpu, NGINX, args);
  await waitForPort(port, 20_000, 50);
  return { child, addr: `127.0.0.1:${port}`, dir };
}

export async function nginxSection(ctx: BenchContext): Promise<SectionResult> {
  const s = section('nginx', 'nginx reverse proxy (upstream linking: uprobe at ngx_chain_writer)');
  const { config } = ctx;
  // The Go test server as the upstream (TCP_NODELAY: no delayed-ACK stalls between nginx and it).
  const backend = await startServer(ctx, 'go');
  const proxy = await startNginxProxy(ctx, backend.addr);
  const rate = 100;
  const itemPath = backend.path;
  try {
    await loadgen(config, { addr: proxy.addr, path: itemPath, rate, seconds: 1 }); // warm
    let hits: { perRequest: number; nsPerHit: number; requests: number; linked: number } | undefined;
    const rounds = await alternate(
      ctx,
      s.id,
      async () => (await loadgen(config, { addr: proxy.addr, path: itemPath, rate })).serviceUs.p50,
      async (i) => {
        const agent = await startAgent(config, { pids: [proxy.child.pid], otlpEndpoint: ctx.sink.endpoint });
        try {
          await loadgen(config, { addr: proxy.addr, path: itemPath, rate, seconds: 1 }); // warm the agent's path
          if (i === 0) {
            hits = await withBpfStats(async () => {
              const before = agentProgStats(agent.pid);
              const r = await loadgen(config, { addr: proxy.addr, path: itemPath, rate: 500, requests: COUNT_REQUESTS, conns: 4 });
              const d = progDelta(before, agentProgStats(agent.pid)).filter(isUprobeProg);
              const runs = d.reduce((a, x) => a + x.runs, 0);
              return { perRequest: runs / r.requests, nsPerHit: runs ? d.reduce((a, x) => a + x.ns, 0) / runs : 0, requests: r.requests, linked: 0 };
            });
          }
          const p50 = (await loadgen(config, { addr: proxy.addr, path: itemPath, rate })).serviceUs.p50;
          const { kernelLine } = await agent.shutdown();
          if (i === 0 && hits) hits.linked = Number(/sys_http_link_nginx=(\d+)/.exec(kernelLine)?.[1] ?? 0);
          return p50;
        } finally {
          await agent.stop('SIGKILL');
        }
      },
    );
    s.raw.rounds = rounds;
    s.raw.hits = hits;
    const floor = ctx.uprobeFloorUs ?? { value: 9.8, rounds: 0, source: 'docs (bare tracefs uprobe on this VM: 9.8 us)' };
    if (hits) {
      s.figures.push(
        fig({ id: 'nginx.uprobe_hits', label: 'Uprobe hits per proxied request (ngx_chain_writer)', value: hits.perRequest, unit: 'hits', rounds: 1, detail: `BPF run-time statistics over ${hits.requests} requests at 500 req/s (4 keep-alive connections, upstream keep-alive); agent BPF time ${round(hits.nsPerHit)} ns/hit; ${hits.linked} upstream requests linked in the kernel over the agent's run` }),
        fig({ id: 'nginx.link_us', label: 'Linking cost per proxied request (hits x uprobe floor)', value: hits.perRequest * floor.value, unit: 'us', rounds: floor.rounds, detail: `${round(hits.perRequest, 4)} hits/request x ${round(floor.value)} us/hit (${floor.source})` }),
      );
    }
    const p50 = pairedDifference(rounds.without, rounds.with);
    s.figures.push(
      fig({
        id: 'nginx.p50_added_us', label: `Added p50 latency through nginx at ${rate} req/s (whole agent)`, value: p50.perRound.median, unit: 'us', rounds: p50.perRound.n, spread: p50.perRound,
        detail: `service p50 ${round(p50.without.median)} us without, ${round(p50.with.median)} us with; syscall tracing of both nginx connections, sk_msg insertion and the link`,
      }),
    );
  } finally {
    await proxy.child.stop();
    await backend.child.stop();
    rmSync(proxy.dir, { recursive: true, force: true });
  }
  return s;
}
