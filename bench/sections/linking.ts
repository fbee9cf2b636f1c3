/**
 * The cost of linking a service's client calls to its server requests (issue 14), measured the same
 * way for every runtime: a stock test service answering /call by calling a leaf service, traced
 * alone by the agent. Per request: uprobe and tracepoint hits and the agent's BPF time (BPF
 * statistics), the linking cost (uprobe hits x the measured cost of one uprobe hit), what the kernel
 * linked and what the agent left unlinked over the counted agent's run, and the whole agent's added
 * p50 at a fixed rate (alternating rounds without / with the agent).
 */
import { startAgent } from '../lib/agent';
import { countHits, hitFigures, programsNote, type Hits } from '../lib/hits';
import { loadgen } from '../lib/load';
import type { Child } from '../lib/procs';
import { fig, type SectionResult } from '../lib/report';
import { pairedDifference, round } from '../lib/stats';
import { alternate, type BenchContext } from './context';

export interface LinkedService {
  /** Figure id prefix, e.g. `asyncio.fastapi`. */
  readonly id: string;
  /** e.g. `fastapi /call`. */
  readonly label: string;
  readonly child: Child;
  readonly addr: string;
  readonly callPath: string;
  /** Fixed rate of the latency rounds and of the count. */
  readonly rate: number;
  readonly countRate: number;
  readonly countRequests: number;
  /** Words that pick this runtime's part of the agent's in-process-linking report line. */
  readonly reportMatch: RegExp;
}

interface Counted {
  hits: Hits;
  /** Requests the counted agent saw over its whole run. */
  requests: number;
  /** `sys_http_link_*` kernel counters at the agent's stop. */
  links: Record<string, number>;
  /** spanbridge_client_spans_unlinked_total over the agent's run, by series. */
  unlinked: Record<string, number>;
  /** The part of the agent's start-up report about this runtime's linking. */
  reported: string;
}

/** The agent's `client span as the child of the server request ...` report line, cut to the runtime's part. */
export function reportedLinking(stderr: string, match: RegExp): string {
  const line = stderr.split('\n').find((l) => l.includes('client span as the child of the server request'));
  if (!line) return 'no in-process-linking line in the start-up report';
  const body = line.replace(/^.*?: (\S+) — /, '$1: ');
  // Split at "; " outside parentheses.
  const parts = body.split(/; (?![^(]*\))/).filter((p) => match.test(p));
  return (parts.length ? parts.join('; ') : body).trim().slice(0, 300);
}

export async function measureLinkedService(ctx: BenchContext, s: SectionResult, svc: LinkedService): Promise<void> {
  const { config } = ctx;
  const floor = ctx.uprobeFloorUs ?? { value: 9.8, rounds: 0, source: 'docs (bare tracefs uprobe on this VM: 9.8 us)' };
  // Latency windows of at most 3 s: a p50 at 50-100 req/s settles by then, and the section stays short.
  const latSeconds = Math.min(config.seconds, 3);
  const run = (o: { rate?: number; seconds?: number; requests?: number; conns?: number } = {}) =>
    loadgen(config, { addr: svc.addr, path: svc.callPath, rate: o.rate ?? svc.rate, seconds: o.requests ? undefined : (o.seconds ?? latSeconds), requests: o.requests, conns: o.conns });
  await run({ seconds: 1 }); // warm
  let counted: Counted | undefined;
  const rounds = await alternate(
    ctx,
    svc.id,
    async () => (await run()).serviceUs.p50,
    async (i) => {
      const agent = await startAgent(config, { pids: [svc.child.pid], otlpEndpoint: ctx.sink.endpoint });
      try {
        let requests = (await run({ seconds: 1 })).requests; // warm the agent's path
        let hits: Hits | undefined;
        if (i === 0) {
          hits = await countHits(agent.pid, () => run({ rate: svc.countRate, requests: svc.countRequests, conns: 4 }), `${svc.countRate} req/s, 4 keep-alive connections`);
          requests += hits.requests;
        }
        const lat = await run();
        requests += lat.requests;
        const metrics = await agent.metrics();
        const stderr = agent.stderr();
        const { kernelLine } = await agent.shutdown();
        if (hits) {
          const unlinked: Record<string, number> = {};
          for (const [k, v] of metrics.values) if (k.startsWith('spanbridge_client_spans_unlinked_total')) unlinked[k.replace('spanbridge_client_spans_unlinked_total', '') || 'total'] = v;
          const links = Object.fromEntries([...kernelLine.matchAll(/(sys_http_link_\w+)=(\d+)/g)].map((m) => [m[1], Number(m[2])]));
          counted = { hits, requests, links, unlinked, reported: reportedLinking(stderr, svc.reportMatch) };
        }
        return lat.serviceUs.p50;
      } finally {
        await agent.stop('SIGKILL');
      }
    },
  );
  (s.raw as Record<string, unknown>)[svc.id] = { rounds, counted };
  if (counted) {
    const h = counted.hits;
    const per = (n: number) => `${n} (${round(n / Math.max(1, counted!.requests), 3)}/request)`;
    const links = Object.entries(counted.links).map(([k, v]) => `${k}=${per(v)}`).join(', ') || 'no sys_http_link_* counter';
    const unlinked = Object.entries(counted.unlinked).map(([k, v]) => `${k} ${per(v)}`).join(', ') || 'none counted';
    s.figures.push(
      ...hitFigures(svc.id, '', `, ${svc.label}`, h),
      fig({ id: `${svc.id}.link_us`, label: `Linking cost per request, ${svc.label} (uprobe hits x uprobe floor)`, value: h.hitsPerRequest * floor.value, unit: 'us', rounds: floor.rounds, detail: `${round(h.hitsPerRequest, 3)} hits/request x ${round(floor.value)} us/hit (${floor.source}); the agent's BPF time per request is the row above` }),
    );
    s.notes.push(
      `${svc.label}: linking as the agent's start-up report states it: "${counted.reported}". Over the counted agent's run (${counted.requests} requests): kernel links ${links}; client spans left unlinked (spanbridge_client_spans_unlinked_total) ${unlinked}.`,
      `${svc.label}: ${programsNote(h)}`,
    );
  }
  const p50 = pairedDifference(rounds.without, rounds.with);
  s.figures.push(
    fig({
      id: `${svc.id}.p50_added_us`, label: `Added p50 latency, ${svc.label} at ${svc.rate} req/s for ${latSeconds} s (whole agent)`, value: p50.perRound.median, unit: 'us', rounds: p50.perRound.n, spread: p50.perRound,
      detail: `service p50 ${round(p50.without.median)} us without, ${round(p50.with.median)} us with; syscall tracing of the server and client connections, header insertion and the linking probes`,
    }),
  );
}
