/**
 * Smoke test of the main job (`make run-local` runs scripts/run-local.sh after `make setup`):
 * it starts the stock Collector, the polyglot demo (Go frontend -> Go backend + Python reviews),
 * traffic and the agent; the agent prints connected multi-service traces as trees; everything
 * reaches the Collector; and on Ctrl-C (SIGINT to the script's process group, as a terminal sends
 * it) nothing it started is left running and none of the agent's BPF links or programs remain.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { freePort, flattenTraceRequest, type JsonValue } from './helpers/collector';
import { REPO_ROOT, waitFor } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';

const RUN_DIR = path.join(REPO_ROOT, 'build/run-local');

/** BPF link and program ids the process holds, from its fdinfo. */
function bpfIdsOf(pid: number): { links: number[]; progs: number[] } {
  const links: number[] = [];
  const progs: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let info: string;
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const link = /^link_id:\s*(\d+)/m.exec(info);
    const prog = /^prog_id:\s*(\d+)/m.exec(info);
    if (link) links.push(Number(link[1]));
    else if (prog) progs.push(Number(prog[1]));
  }
  return { links, progs };
}

function bpftoolIds(kind: 'link' | 'prog'): Set<number> {
  const out = execFileSync('bpftool', [kind, 'show', '-j'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return new Set((JSON.parse(out || '[]') as { id: number }[]).map((x) => x.id));
}

describe('make run-local (scripts/run-local.sh)', () => {
  it('shows connected traces of the Go and Python demo services, and Ctrl-C leaves no process or probe behind', async () => {
    requireRootAndBpf();
    const [otlp, grpc, prom, fe, be, rv] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    const child = spawn('bash', [path.join(REPO_ROOT, 'scripts/run-local.sh')], {
      env: {
        ...process.env,
        SPANBRIDGE_OTLP_HTTP_PORT: String(otlp),
        SPANBRIDGE_OTLP_GRPC_PORT: String(grpc),
        SPANBRIDGE_PROMETHEUS_PORT: String(prom),
        SPANBRIDGE_SCRAPE_INTERVAL: '2s',
        SPANBRIDGE_DEMO_FRONTEND_PORT: String(fe),
        SPANBRIDGE_DEMO_BACKEND_PORT: String(be),
        SPANBRIDGE_DEMO_REVIEWS_PORT: String(rv),
      },
      // Its own process group, so SIGINT to the group is what a terminal's Ctrl-C does.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let ids: { links: number[]; progs: number[] } = { links: [], progs: [] };
    try {
      // A trace with all three services, printed by the agent as a tree.
      await waitFor(
        'a connected 3-service trace tree',
        () => /^trace [0-9a-f]{32} {2}\d+ spans, 3 services/m.test(stdout),
        180_000,
        250,
      );
      // The Collector scrapes the agent every 2 s: wait until a scrape after the first requests
      // reached its file exporter (the agent now starts fast enough to print a trace before that).
      const telemetry = path.join(RUN_DIR, 'telemetry.jsonl');
      await waitFor(
        'a scrape of the agent\'s RED metrics at the Collector',
        () => existsSync(telemetry) && readFileSync(telemetry, 'utf8').split('\n').some((l) => l.includes('"resourceMetrics"') && l.includes('http_server_request_duration')),
        60_000,
        250,
      );
      const agentPid = Number(readFileSync(path.join(RUN_DIR, 'ready'), 'utf8').trim());
      ids = bpfIdsOf(agentPid);
      expect(ids.links.length).toBeGreaterThan(0);
    } finally {
      process.kill(-child.pid!, 'SIGINT');
      const t = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 60_000);
      await exited.then(() => clearTimeout(t));
    }
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/attached pid \d+ \(.*demo-frontend/);
    expect(stderr).toMatch(/attached pid \d+ \(.*demo-backend/);
    expect(stderr).toMatch(/attached pid \d+ \(.*python3.*matched by port \d+\): HTTP\/1\.x via syscall tracepoints.*service\.name=demo-reviews/);
    expect(stderr).toMatch(/SIGTERM: detaching and flushing/);
    expect(stderr).toMatch(/stopped: [1-9]\d* spans exported, 0 dropped/);
    // The tree: frontend SERVER with the backend and reviews calls under it.
    const block = stdout.split('\n\n').find((b) => /3 services/.test(b))!;
    expect(block).toMatch(/^ {2}demo-frontend {2}SERVER GET \/shop\/\{item\}/m);
    expect(block).toMatch(/^ {2}demo-backend +SERVER GET \/price\/\{item\}/m);
    expect(block).toMatch(/^ {2}demo-reviews +SERVER GET/m);

    const lines = readFileSync(path.join(RUN_DIR, 'telemetry.jsonl'), 'utf8').split('\n').filter(Boolean);
    // RED metrics reached the Collector (pushed over OTLP and scraped from the agent's endpoint).
    expect(lines.some((l) => l.includes('"resourceMetrics"') && l.includes('http.server.request.duration'))).toBe(true);
    expect(lines.some((l) => l.includes('"resourceMetrics"') && l.includes('http_server_request_duration'))).toBe(true);
    const spans = lines.flatMap((l) => flattenTraceRequest(JSON.parse(l) as JsonValue));
    const services = new Set(spans.map((s) => s.resource['service.name']));
    expect(services).toEqual(new Set(['demo-frontend', 'demo-backend', 'demo-reviews']));
    expect(spans.some((s) => s.name === 'GET /price/{item}' && s.status.code === 'ERROR')).toBe(true);
    // The Collector received connected traces too: one trace id across all three services.
    const byTrace = new Map<string, Set<unknown>>();
    for (const s of spans) byTrace.set(s.traceId, (byTrace.get(s.traceId) ?? new Set()).add(s.resource['service.name']));
    expect([...byTrace.values()].some((v) => v.size === 3)).toBe(true);

    // Nothing left running...
    const left = execFileSync('sh', ['-c', `pgrep -f 'build/run-local/bin/dem[o]-|collector-config/run-local.yam[l]|demo/reviews/review[s].py|build/run-local/spanbridge.yam[l]' || true`], {
      encoding: 'utf8',
    });
    expect(left.trim()).toBe('');
    // ...and none of the agent's BPF links or programs (non-pinned objects die with their holders).
    if (existsSync('/usr/sbin/bpftool') || existsSync('/usr/bin/bpftool')) {
      const links = bpftoolIds('link');
      const progs = bpftoolIds('prog');
      expect(ids.links.filter((id) => links.has(id))).toEqual([]);
      expect(ids.progs.filter((id) => progs.has(id))).toEqual([]);
    }
  });
});
