/**
 * nginx as a reverse proxy (issue 14 item 3): Debian's nginx, one worker, upstream keep-alive, in
 * front of the Go test server (untraced), pinned to the server CPU. The agent traces nginx (selected by
 * its master pid; the worker is traced from its fork). What linking upstream requests to their
 * downstream requests costs: uprobe hits per proxied request at ngx_chain_writer, tracepoint hits
 * and the agent's BPF time per request (BPF statistics), hits x the measured cost of one uprobe
 * hit (floor section), and the agent's whole added latency at a fixed rate (alternating rounds
 * without / with the agent; syscall tracing of both connections included).
 */
import { rmSync } from 'node:fs';
import { NGINX, writeNginxConfig } from '../../test/frameworks/nginx/config';
import { startAgent } from '../lib/agent';
import { countHits, hitFigures, programsNote, type Hits } from '../lib/hits';
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
    let hits: Hits | undefined;
    let linked = 0;
    const rounds = await alternate(
      ctx,
      s.id,
      async () => (await loadgen(config, { addr: proxy.addr, path: itemPath, rate })).serviceUs.p50,
      async (i) => {
        const agent = await startAgent(config, { pids: [proxy.child.pid], otlpEndpoint: ctx.sink.endpoint });
        try {
          await loadgen(config, { addr: proxy.addr, path: itemPath, rate, seconds: 1 }); // warm the agent's path
          if (i === 0) {
            hits = await countHits(agent.pid, () => loadgen(config, { addr: proxy.addr, path: itemPath, rate: 500, requests: COUNT_REQUESTS, conns: 4 }), '500 req/s, 4 keep-alive connections, upstream keep-alive');
          }
          const p50 = (await loadgen(config, { addr: proxy.addr, path: itemPath, rate })).serviceUs.p50;
          const { kernelLine } = await agent.shutdown();
          if (i === 0) linked = Number(/sys_http_link_nginx=(\d+)/.exec(kernelLine)?.[1] ?? 0);
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
        ...hitFigures('nginx', '', ' (proxied)', hits),
        fig({ id: 'nginx.link_us', label: 'Linking cost per proxied request (hits x uprobe floor)', value: hits.hitsPerRequest * floor.value, unit: 'us', rounds: floor.rounds, detail: `${round(hits.hitsPerRequest, 4)} hits/request at ngx_chain_writer x ${round(floor.value)} us/hit (${floor.source}); ${linked} upstream requests linked in the kernel over the counted agent's run` }),
      );
      s.notes.push(programsNote(hits));
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
