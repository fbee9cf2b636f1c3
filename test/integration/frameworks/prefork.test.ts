/**
 * Pre-fork servers (issue 13, item 5): gunicorn's workers are forked by the master and never
 * exec'd, and `--max-requests` re-forks them. Selecting the master by pid, or the service by port,
 * traces every worker from its fork (the kernel marks the child at sched_process_fork), so the
 * very first request of a re-forked worker has its span; a forked child that execs another
 * program (a shell running curl) is decided on its own and is not the server.
 * nginx (Debian's, from `make setup`) re-forks its workers on a reload (SIGHUP) the same way.
 * Third-party software only: Flask and Django on gunicorn, nginx.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hex, send } from '../helpers/chains';
import { PYTHON, startFramework, startNginx, type FrameworkService } from '../helpers/frameworks';
import { startAgent, startProcess, waitFor, type AgentProcess, type PrintedSpanLine, type Running } from '../helpers/processes';
import { requireRootAndBpf } from '../helpers/privileges';

const REQUESTS = 15;
const MAX_REQUESTS = 3;

describe('pre-fork servers: every worker traced from its fork (gunicorn)', () => {
  let flask: FrameworkService;
  let django: FrameworkService;
  let forker: Running | undefined;
  let nginx: Running | undefined;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    requireRootAndBpf();
    [flask, django] = await Promise.all([
      startFramework('flask-gunicorn', 'flask-prefork', { workers: 2, maxRequests: MAX_REQUESTS }),
      startFramework('django-gunicorn', 'django-prefork', { workers: 2, maxRequests: MAX_REQUESTS }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await forker?.stop();
    await nginx?.stop();
    await flask?.proc.stop();
    await django?.proc.stop();
  });

  /** REQUESTS requests, each on a new connection with its own incoming context; checks each span. */
  async function everyRequestTraced(svc: FrameworkService, master: number): Promise<void> {
    const sent: { traceId: string; spanId: string; path: string }[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const traceId = hex(16);
      const spanId = hex(8);
      const p = `/items/${i}`;
      const a = await send(`${svc.url}${p}`, { headers: { traceparent: `00-${traceId}-${spanId}-01`, tracestate: 'vendor=prefork' } });
      expect(a.status).toBe(200);
      sent.push({ traceId, spanId, path: p });
    }
    const ids = new Set(sent.map((s) => s.traceId));
    const mine = (): PrintedSpanLine[] => agent!.spans().filter((s) => ids.has(s.traceId));
    await waitFor(`${svc.framework}: a span for each of ${REQUESTS} requests`, () => new Set(mine().map((s) => s.traceId)).size === REQUESTS, 30_000).catch(() => undefined);
    const spans = mine();
    const problems: string[] = [];
    for (const s of sent) {
      const got = spans.filter((x) => x.traceId === s.traceId);
      if (got.length !== 1) {
        problems.push(`${s.path}: ${got.length} spans`);
        continue;
      }
      const [span] = got;
      if (span.kind !== 'SERVER' || span.parentSpanId !== s.spanId) problems.push(`${s.path}: ${span.kind} parent ${span.parentSpanId}, want SERVER child of ${s.spanId}`);
      if (span.attributes['url.path'] !== s.path || span.attributes['http.response.status_code'] !== 200) problems.push(`${s.path}: ${span.attributes['url.path']} ${span.attributes['http.response.status_code']}`);
      if (span.resource['service.name'] !== svc.service) problems.push(`${s.path}: service ${span.resource['service.name']}`);
      if (span.resource['process.pid'] === master) problems.push(`${s.path}: reported by the master`);
      if (span.traceState !== 'vendor=prefork') problems.push(`${s.path}: tracestate ${span.traceState}`);
    }
    expect(problems).toEqual([]);
    // Workers were recycled during the run: the spans come from more workers than ever ran at once.
    const workers = new Set(spans.map((s) => s.resource['process.pid']));
    expect(workers.size).toBeGreaterThanOrEqual(Math.ceil(REQUESTS / MAX_REQUESTS));
  }

  it('selected by the master pid (Flask) and by port (Django): each request of each worker, re-forked ones from their first', async () => {
    agent = await startAgent(['--pid', String(flask.proc.pid), '--open-port', String(django.port), '--export', 'none', '--inject-headers', 'off']);
    await everyRequestTraced(flask, flask.proc.pid);
    await everyRequestTraced(django, django.proc.pid);
  });

  it('forked children are traced from their fork; children that exec another program (curl) are not', async () => {
    // A selected process that forks a child doing a request itself (no exec), and runs curl.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spanbridge-fork-'));
    const go = path.join(dir, 'go');
    const script = [
      'import os, subprocess, sys, time, urllib.request',
      'print("ready", flush=True)',
      `while not os.path.exists(${JSON.stringify(go)}): time.sleep(0.05)`,
      'children, curls = [], []',
      'for i in range(3):',
      '    pid = os.fork()',
      '    if pid == 0:',
      `        urllib.request.urlopen(${JSON.stringify(`${django.url}/items/901`)}).read()`,
      '        os._exit(0)',
      '    os.waitpid(pid, 0)',
      '    children.append(pid)',
      'for i in range(5):',
      `    p = subprocess.Popen(["curl", "-s", "-o", "/dev/null", ${JSON.stringify(`${django.url}/items/902`)}])`,
      '    p.wait()',
      '    curls.append(p.pid)',
      'print("children", *children, "curls", *curls, "done", flush=True)',
      'time.sleep(60)',
    ].join('\n');
    forker = startProcess(PYTHON, ['-c', script], { OTEL_SERVICE_NAME: 'forker' });
    await waitFor('forker ready', () => forker!.stdout().includes('ready'), 20_000);
    await agent?.stop();
    agent = await startAgent(['--pid', String(forker.pid), '--export', 'none', '--inject-headers', 'off']);
    writeFileSync(go, '');
    const m = await waitFor('forker done', () => /children ([\d ]+) curls ([\d ]+) done/.exec(forker!.stdout()), 30_000);
    const children = m![1].trim().split(' ').map(Number);
    const curls = m![2].trim().split(' ').map(Number);
    const clients = await waitFor('the forked children\'s client spans', () => {
      const c = agent!.spans().filter((s) => s.kind === 'CLIENT');
      return c.length >= children.length && c;
    }, 20_000);
    // Only the forked children (no exec) call out traced; curl (forked, then exec'd) never.
    expect(clients.map((s) => [s.resource['process.pid'], s.resource['service.name'], s.attributes['url.full']]).sort()).toEqual(
      children.map((c) => [c, 'forker', `${django.url}/items/901`]).sort(),
    );
    expect(agent.spans().filter((s) => curls.includes(Number(s.resource['process.pid'])))).toEqual([]);
  });

  it('nginx selected by its master pid: workers, and the workers a reload re-forks, serve traced from their first request', async () => {
    const started = await startNginx('default_type text/plain; return 200 "nginx $uri\\n";', 2);
    nginx = started.proc;
    const { port, dir } = started;
    await agent?.stop();
    // nginx rewrites its environment (process titles): the service is named by the selection.
    const cfg = path.join(dir, 'spanbridge.yaml');
    writeFileSync(cfg, `selections:\n  - pid: ${nginx.pid}\n    service_name: nginx-prefork\n`);
    agent = await startAgent(['--config', cfg, '--export', 'none', '--inject-headers', 'off']);
    const workers = (): number[] => readFileSync(`/proc/${nginx!.pid}/task/${nginx!.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number).sort();
    const round = async (tag: string): Promise<string[]> => {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const traceId = hex(16);
        const a = await send(`http://127.0.0.1:${port}/${tag}/${i}`, { headers: { traceparent: `00-${traceId}-${hex(8)}-01` } });
        expect([a.status, a.body]).toEqual([200, `nginx /${tag}/${i}\n`]);
        ids.push(traceId);
      }
      return ids;
    };
    const before = workers();
    const first = await round('first');
    // A reload starts new workers (forked by the master, never exec'd) and retires the old ones.
    process.kill(nginx.pid, 'SIGHUP');
    const after = await waitFor('new nginx workers', () => {
      const w = workers();
      return w.length === 2 && w.every((p) => !before.includes(p)) && w;
    }, 30_000);
    const second = await round('second');
    const ids = new Set([...first, ...second]);
    await waitFor('a span per nginx request', () => new Set(agent!.spans().filter((s) => ids.has(s.traceId)).map((s) => s.traceId)).size === ids.size, 20_000).catch(() => undefined);
    const spans = agent.spans().filter((s) => ids.has(s.traceId));
    expect(spans.map((s) => s.traceId).sort()).toEqual([...ids].sort());
    expect(new Set(spans.map((s) => s.resource['service.name']))).toEqual(new Set(['nginx-prefork']));
    const bySecond = spans.filter((s) => second.includes(s.traceId)).map((s) => Number(s.resource['process.pid']));
    expect(bySecond.every((p) => after.includes(p))).toBe(true);
  });
});
