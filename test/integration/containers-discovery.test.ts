/**
 * Discovery that follows real workloads, on the real kernel (host processes; the container side
 * is in containers.test.ts):
 *   - one binary run by many processes is inspected once;
 *   - processes that exit while the agent attaches: no crash, and every file descriptor and link
 *     is given back (counted from the agent's /proc/<pid>/fd);
 *   - the agent never traces the Collector it exports to (started before it, or after it: the
 *     exec-time match is let go once the Collector opens its port), nor another agent;
 *   - a --container selector that matches nothing: a clear warning, and the agent waits.
 */
import { copyFileSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { COLLECTOR_BINARY, freePort, startCollector } from './helpers/collector';
import { buildGoApp, copyBinary } from '../helpers/go-build';
import { getStatus } from './helpers/http';
import { startAgent, startProcess, waitFor, waitForPort, waitForReleased, type AgentProcess, type Running } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';

const unique = (): string => randomBytes(4).toString('hex');

/** The agent's open fds, and how many of them are probe links (perf events / bpf links). */
function fdsOf(pid: number): { fds: number; links: number } {
  let fds = 0;
  let links = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    fds++;
    try {
      if (/perf_event|bpf_link/.test(readlinkSync(`/proc/${pid}/fd/${fd}`))) links++;
    } catch {
      // closed meanwhile
    }
  }
  return { fds, links };
}

/** True once the agent's /api/processes lists every one of `procs`. */
async function tracesAll(agent: AgentProcess, procs: readonly Running[]): Promise<boolean> {
  const pids = new Set((await agent.processes()).map((p) => p.pid));
  return procs.every((p) => pids.has(p.pid));
}

describe('discovery following real workloads (real kernel)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  beforeAll(() => requireRootAndBpf());
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
  });

  it('inspects one binary once however many processes run it', async () => {
    const name = `many-goserver-${unique()}`;
    const bin = copyBinary(buildGoApp('goserver'), name);
    const apps: Running[] = [];
    for (let i = 0; i < 3; i++) {
      const app = startProcess(bin, ['-addr', `127.0.0.1:${await freePort()}`]);
      apps.push(app);
      cleanup.push(() => app.stop('SIGKILL'));
    }
    const agent = await startAgent(['--exe', name, '--export', 'none']);
    cleanup.push(() => agent.stop());
    await waitFor('three attaches', () => tracesAll(agent, apps), 30_000);
    // A fourth process, started later (exec event), reuses the same inspection too.
    const late = startProcess(bin, ['-addr', `127.0.0.1:${await freePort()}`]);
    cleanup.push(() => late.stop('SIGKILL'));
    await waitFor('late attach', () => tracesAll(agent, [late]), 30_000);
    expect(await agent.metric('spanbridge_binaries_inspected_total')).toBe(1);
    expect(await agent.metric('spanbridge_attaches_total', { tracer: 'go_http' })).toBe(4);
  });

  it('survives processes that exit while it attaches, and gives back every fd and link', async () => {
    const name = `churn-goserver-${unique()}`;
    const bin = copyBinary(buildGoApp('goserver'), name);
    const agent = await startAgent(['--exe', name, '--export', 'none']);
    cleanup.push(() => agent.stop());
    const baseline = fdsOf(agent.pid);

    // Start and kill quickly, at various points of the agent's attach (0..90 ms after spawn).
    for (let i = 0; i < 30; i++) {
      const p = startProcess(bin, ['-addr', `127.0.0.1:${await freePort()}`]);
      await new Promise((r) => setTimeout(r, (i % 10) * 10));
      await p.stop('SIGKILL');
    }
    await waitFor('fds and links back to baseline', () => {
      const now = fdsOf(agent.pid);
      return now.fds === baseline.fds && now.links === baseline.links;
    }, 30_000, 250);
    expect(agent.proc.exitCode).toBeNull();
    // An exception the agent caught and logged shows nowhere but its log: the log is the evidence here.
    expect(agent.stderr()).not.toMatch(/Unhandled|TypeError|RangeError|uncaught/i);
    // A process gone mid-inspection must not mark its binary as "not Go" for the ones after it.
    expect(await agent.metric('spanbridge_attaches_total', { tracer: 'sys_http' })).toBe(0);
    // Diagnostics only: how the churn went this time.
    const log = agent.stderr();
    const count = (re: RegExp): number => (log.match(re) ?? []).length;
    process.stderr.write(`churn: ${count(/attached pid/g)} attached, ${count(/detached pid/g)} detached, ${count(/exited before it could be attached/g)} gone before attach\n`);

    // Still working: a process that stays is traced, and its links are freed when it goes.
    const port = await freePort();
    const app = startProcess(bin, ['-addr', `127.0.0.1:${port}`]);
    cleanup.push(() => app.stop('SIGKILL'));
    await waitFor(`attach of pid ${app.pid}`, () => tracesAll(agent, [app]), 30_000);
    await waitForPort(port);
    expect(await getStatus(port, '/items/after-churn')).toBe(200);
    await waitFor('span after churn', () => agent.spans().some((s) => s.attributes['url.path'] === '/items/after-churn'), 15_000);
    // The attach took probes (uprobe links); how many fds that is depends on the attach method.
    const traced = (await agent.processes()).find((p) => p.pid === app.pid);
    expect(traced?.probes).toBeGreaterThan(0);
    process.stderr.write(`churn: baseline ${JSON.stringify(baseline)}, attached ${JSON.stringify(fdsOf(agent.pid))}\n`);
    await app.stop('SIGKILL');
    await waitFor('fds and links back to baseline after the last exit', () => {
      const now = fdsOf(agent.pid);
      return now.fds === baseline.fds && now.links === baseline.links;
    }, 30_000, 250);
  });

  it('never traces the Collector it exports to, started before the agent or after it', async () => {
    // Before: the Collector already listens on the export port.
    const collector = await startCollector();
    cleanup.push(() => collector.stop());
    const agent = await startAgent(['--exe', path.basename(COLLECTOR_BINARY), '--otlp-endpoint', collector.endpoint]);
    cleanup.push(() => agent.stop());
    expect(await agent.metric('spanbridge_processes_excluded_total', { reason: 'collector' })).toBe(1);
    // Other Collectors on this machine (not exported to) match the selection too, and are traced.
    expect((await agent.processes()).map((p) => p.pid)).not.toContain(collector.pid);
    await agent.stop();

    // After: a Collector exec'd after the agent matches at exec time, and is let go once it listens.
    const name = `otelcol-late-${unique()}`;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spanbridge-late-collector-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const bin = path.join(dir, name);
    copyFileSync(COLLECTOR_BINARY, bin);
    const port = await freePort();
    const config = path.join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({
      receivers: { otlp: { protocols: { http: { endpoint: `127.0.0.1:${port}` } } } },
      exporters: { debug: {} },
      service: { telemetry: { metrics: { level: 'none' } }, pipelines: { traces: { receivers: ['otlp'], exporters: ['debug'] } } },
    }));
    const late = await startAgent(['--exe', name, '--otlp-endpoint', `http://127.0.0.1:${port}`]);
    cleanup.push(() => late.stop());
    const col = startProcess(bin, ['--config', config]);
    cleanup.push(() => col.stop('SIGKILL'));
    await waitFor('the late Collector let go', async () => (await late.metric('spanbridge_processes_excluded_total', { reason: 'collector' })) === 1, 30_000);
    await waitForReleased(late, col.pid, 10_000);
    expect(late.proc.exitCode).toBeNull();
  });

  it('never traces another spanbridge agent, even when selected by pid', async () => {
    const first = await startAgent(['--exe', `nothing-${unique()}`, '--export', 'none']);
    cleanup.push(() => first.stop());
    const second = await startAgent(['--pid', String(first.pid), '--export', 'none']);
    cleanup.push(() => second.stop());
    expect(await second.metric('spanbridge_processes_excluded_total', { reason: 'agent' })).toBe(1);
    expect(await second.processes()).toEqual([]);
    // The log line is the feature: a user-facing warning that the agent waits for its selection.
    expect(second.stderr()).toMatch(/no running process matches the selection yet; waiting/);
  });

  it('warns clearly for a --container that matches nothing, and waits', async () => {
    let agent: AgentProcess | undefined;
    try {
      agent = await startAgent(['--container', '0123456789ab', '--export', 'none']);
      // The log line is the feature: a user-facing warning that the agent waits for its selection.
      expect(agent.stderr()).toMatch(/no running process matches the selection yet; waiting for matching processes to start/);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(agent.proc.exitCode).toBeNull();
      expect(await agent.stop()).toBe(0);
    } finally {
      await agent?.stop('SIGKILL');
    }
  });
});
