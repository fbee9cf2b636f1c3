/**
 * go.client_path syscall, the roundTrip probe at its default limit (go.client_caller_probe_max_rate
 * 200; src/tracers/go-client-adoption.ts). The Transport's writer goroutine sometimes writes a
 * request before its caller has handed it over (another CPU ran the writer first: up to ~1% of
 * calls at low rates, on idle CPUs): nothing in the connection leads to the caller then, and only
 * the probe's record of the call names it. What must hold: the probe is on from the attach (so the
 * first such write of a process is linked too, which the earlier "attach once such writes show up"
 * missed: the W3C suite through Go failed on it), one hit per call; every call of a process
 * calling 50 times a second is its own SERVER span's child (none left unparented); a process
 * calling faster than the limit loses the probe (no uprobe per call afterwards) and its calls are
 * still linked from the write.
 */
import http from 'node:http';
import { freePort } from './helpers/collector';
import { frontendPair, syncCall } from './helpers/go-chain';
import { buildGoApp } from '../helpers/go-build';
import { lockedDown, requireRootAndBpf } from './helpers/privileges';
import { startAgent, startProcess, waitFor, waitForPort, type AgentProcess, type Running } from './helpers/processes';
import { agentProgStats, isUprobeProg, progDelta, withBpfStats } from '../../bench/lib/bpf-stats';

const maybe = lockedDown() ? describe : describe.skip; // memory injection keeps the uprobe client path
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

maybe('Go client roundTrip probe for requests written ahead of their caller (go.client_path syscall)', () => {
  let backend: Running | undefined;
  let front: Running | undefined;
  let agent: AgentProcess | undefined;
  let [port, frontPort] = [0, 0];
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });

  const call = (path: string) => syncCall(frontPort, port, path, keepAlive);
  const clientOf = (path: string) => agent!.spans().find((s) => s.kind === 'CLIENT' && s.attributes['url.full'] === `http://127.0.0.1:${port}${path}`);

  /** `n` calls to `${prefix}-k`, counted with the kernel's BPF statistics; every one's client span and how it is linked. */
  const counted = async (prefix: string, n: number, gapMs: number) => {
    const before0 = await agent!.kernelCounters();
    const runs = await withBpfStats(async () => {
      const before = agentProgStats(agent!.pid);
      for (let k = 0; k < n; k++) {
        expect(await call(`${prefix}-${k}`)).toBe(200);
        if (gapMs) await sleep(gapMs);
      }
      return progDelta(before, agentProgStats(agent!.pid));
    });
    const clients = await waitFor(`${n} client spans of ${prefix}`, () => {
      const c = [...Array(n).keys()].map((k) => clientOf(`${prefix}-${k}`));
      return c.every((x) => x) && c;
    });
    const servers = frontendPair(agent!.spans(), front!.pid, '/sync').map((p) => p.server);
    let linked = 0;
    for (const [k, c] of clients.entries()) {
      const server = servers.find((s) => s.spanId === c!.parentSpanId);
      if (!server) {
        expect(c!.parentSpanId || '').toBe(''); // never another call's parent
        continue;
      }
      linked++;
      expect(decodeURIComponent(String(server.attributes['url.query']))).toMatch(new RegExp(`${prefix}-${k}$`));
      expect(c!.traceId).toBe(server.traceId);
    }
    const after = await agent!.kernelCounters();
    const delta = (key: string) => (after[key] ?? 0) - (before0[key] ?? 0);
    return { uprobeRuns: runs.filter(isUprobeProg).reduce((s, p) => s + p.runs, 0), linked, delta };
  };

  beforeAll(async () => {
    requireRootAndBpf();
    [port, frontPort] = [await freePort(), await freePort()];
    backend = startProcess(buildGoApp('goserver'), ['-addr', `127.0.0.1:${port}`]);
    front = startProcess(buildGoApp('gochain'), ['-addr', `127.0.0.1:${frontPort}`]);
    await waitForPort(port, 60_000);
    await waitForPort(frontPort, 60_000);
    // No call before the agent: the frontend holds no client connection at the attach.
    agent = await startAgent(['--pid', String(front.pid), '--export', 'none'], { SPANBRIDGE_GO_SERVER_PATH: 'syscall', SPANBRIDGE_GO_CLIENT_PATH: 'syscall' }, 120_000);
  }, 180_000);
  afterAll(async () => {
    keepAlive.destroy();
    await agent?.stop();
    await front?.stop();
    await backend?.stop();
  });

  it('is on from the attach: at ~50 calls a second every call is its own SERVER span\'s child, one roundTrip hit each', async () => {
    expect((await agent!.processes()).find((p) => p.pid === front!.pid)?.clientSpans).toBe('syscall');
    expect(await call('/items/warm')).toBe(200); // the client connection (writeLoop, dialConn: once)
    await sleep(600);
    const N = 300;
    const r = await counted('/items/slow', N, 20);
    process.stderr.write(`caller probe at ~50/s: ${r.linked}/${N} linked, ${r.delta('sys_http_link_go_client_ahead')} named through the probe, ${r.delta('sys_http_skip_go_client_unparked')} unparented; uprobe hits ${r.uprobeRuns}\n`);
    expect(r.uprobeRuns).toBe(N);
    expect(r.delta('sys_http_skip_go_client_unparked')).toBe(0);
    expect(r.linked).toBe(N);
    expect(r.delta('sys_http_link_go_client')).toBe(N);
  }, 120_000);

  it('a process calling faster than 200 a second loses it: no uprobe per call afterwards, calls still linked from the write', async () => {
    // ~8 calls at a time for a few agent looks (every 0.5 s)
    let k = 0;
    const until = Date.now() + 2500;
    await Promise.all(
      [...Array(8).keys()].map(async () => {
        while (Date.now() < until) expect(await call(`/items/fast-${k++}`)).toBe(200);
      }),
    );
    expect(k).toBeGreaterThan(1000); // > 400 a second
    await sleep(1500); // the agent's next look + margin
    const N = 40;
    const r = await counted('/items/after', N, 20);
    expect(r.uprobeRuns).toBe(0);
    expect(r.linked + r.delta('sys_http_skip_go_client_unparked')).toBe(N);
    expect(r.linked).toBeGreaterThanOrEqual(N / 2);
    expect(r.delta('sys_http_skip_go_client_no_conn')).toBe(0);
  }, 120_000);
});
