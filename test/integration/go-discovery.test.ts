/**
 * Discovery and bad input on the real kernel: processes started after the agent are attached
 * (exec events), exits detach and free every link, restarts re-attach, non-Go executables are
 * skipped with a clear message, an unreachable Collector is counted while the agent runs on, and
 * missing privileges give one clear error.
 */
import { readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { buildGoApp, copyBinary } from '../helpers/go-build';
import { freePort } from './helpers/collector';
import { getStatus } from './helpers/http';
import { AGENT_CLI, metricSum, startAgent, startProcess, waitFor, waitForPort, waitForReleased, waitForTraced, type AgentProcess, type Running } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

const unique = (): string => randomBytes(4).toString('hex');

describe('process discovery and bad input (real kernel)', () => {
  beforeAll(() => requireRootAndBpf());

  describe('a service started after the agent', () => {
    const name = `late-goserver-${unique()}`;
    let agent: AgentProcess;
    let app: Running | undefined;

    afterAll(async () => {
      await app?.stop('SIGKILL');
      await agent?.stop();
    });

    it('is attached on exec, detached on exit with every link freed, and re-attached on restart', async () => {
      const bin = copyBinary(buildGoApp('goserver'), name);
      const closedPort = await freePort();
      // Give up on each batch soon: the drops are then counted while the agent runs.
      agent = await startAgent(['--exe', name, '--otlp-endpoint', `http://127.0.0.1:${closedPort}`], { SPANBRIDGE_RETRY_MAX_ELAPSED_MS: '2000' });
      // The log line is the feature: a user-facing warning that the agent waits for its selection.
      expect(agent.stderr()).toMatch(/no running process matches the selection yet; waiting/);
      const baselineFds = fdCount(agent.pid);

      for (const round of [1, 2]) {
        const port = await freePort();
        app = startProcess(bin, ['-addr', `127.0.0.1:${port}`]);
        const appPid = app.pid;
        await waitForTraced(agent, appPid, 15_000);
        await waitForPort(port);
        expect(await getStatus(port, `/items/round${round}`)).toBe(200);
        await waitFor('span of this round', () =>
          agent.spans().some((s) => s.attributes['url.path'] === `/items/round${round}` && s.resource['process.pid'] === appPid),
        );
        expect(fdCount(agent.pid)).toBeGreaterThan(baselineFds);

        // Killed in the middle of a request: no crash, links cleaned.
        const pending = getStatus(port, '/slow?sleep=5000').catch(() => 'aborted');
        await new Promise((r) => setTimeout(r, 300));
        await app.stop('SIGKILL');
        await pending;
        await waitForReleased(agent, appPid, 15_000);
        await waitFor('fds back to baseline', () => fdCount(agent.pid) === baselineFds, 5_000);
        expect(agent.proc.exitCode).toBeNull();
      }
      // The Collector was never reachable: spans were counted as dropped, the agent ran on.
      await waitFor('spans counted as dropped', async () => metricSum(await agent.metrics(), 'spanbridge_spans_dropped_total') >= 1, 30_000, 500);
      expect(await agent.metric('spanbridge_spans_exported_total')).toBe(0);
      expect(await agent.stop()).toBe(0);
    });
  });

  it('hands a non-Go executable to the syscall HTTP tracer with a clear message and keeps running', async () => {
    const name = `not-go-${unique()}`;
    const sleepBin = copyBinary('/bin/sleep', name);
    const victim = startProcess(sleepBin, ['60']);
    const agent = await startAgent(['--exe', name, '--export', 'none']);
    try {
      const traced = await waitForTraced(agent, victim.pid, 10_000);
      expect(traced.tracer).toBe('syscall tracepoints (HTTP/1.x)');
      expect(traced.exe).toContain(name);
      expect(agent.proc.exitCode).toBeNull();
    } finally {
      await victim.stop('SIGKILL');
      expect(await agent.stop()).toBe(0);
    }
  });

  it('without privileges, fails with one clear error naming what is missing', () => {
    let status = 0;
    let stderr = '';
    try {
      execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, AGENT_CLI, 'run', '--pid', '1', '--export', 'none'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 20_000,
      });
    } catch (err) {
      const e = err as { status: number; stderr: Buffer };
      status = e.status;
      stderr = e.stderr.toString();
    }
    expect(status).toBe(1);
    expect(stderr).toMatch(/spanbridge: cannot start: missing privileges: CAP_BPF and CAP_PERFMON .* \[ERR_PRIVILEGE\]/);
    expect(stderr.trim().split('\n').filter((l) => l.startsWith('spanbridge:'))).toHaveLength(1);
  });
});
