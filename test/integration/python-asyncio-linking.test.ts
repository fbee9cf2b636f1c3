/**
 * Python asyncio in-process linking (bpf/sys_http/sys_http_asyncio.h) on stock frameworks: FastAPI on
 * uvicorn calling out with httpx, and an aiohttp server calling out with aiohttp's client, both on
 * CPython 3.10, 3.11, 3.12 and 3.13, on asyncio's event loop and on uvloop's, traced by one agent with a
 * FastAPI leaf that echoes the traceparent it got.
 * Every request comes in with a traceparent of its own trace id, so the trace id the leaf echoes
 * says which request the agent took as the parent: the same one (connected), another one in
 * flight (a wrong parent: never allowed), or a new trace (unlinked). Sequential requests, 32 at
 * once with random handler delays (one event-loop thread serves them all), and a call the handler
 * makes after its response was sent.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { echoed, send } from './helpers/chains';
import { freePort } from './helpers/collector';
import { callUrl, startFramework, type Framework, type FrameworkService, type StartOptions } from './helpers/frameworks';
import { requireRootAndBpf } from './helpers/privileges';
import { startAgent, startProcess, waitFor, waitForPort, type AgentProcess, type PrintedSpanLine, type Running } from './helpers/processes';

/** Debian's interpreter: its _asyncio module is stripped (no .symtab), so nothing can be linked. */
const STRIPPED_PYTHON = '/usr/bin/python3';
/** A stdlib asyncio HTTP responder (Debian's python3 has no frameworks): only what the probe reports is checked. */
const STRIPPED_SERVER = `
import asyncio, sys
async def handle(r, w):
    await r.readuntil(b"\\r\\n\\r\\n")
    w.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nok\\n")
    await w.drain()
    w.close()
async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with s:
        await s.serve_forever()
asyncio.run(main())
`;
const hex = (n: number): string => randomBytes(n).toString('hex');

/**
 * The fronts: each framework on each CPython here (scripts/setup-frameworks.sh: 3.11 is `py`;
 * 3.12+ start aiohttp's tasks eagerly), on asyncio's loop and on uvloop's (its callbacks bypass
 * Context.run; aiohttp's connection task may find a request already read, before it ever waited).
 */
const FRONTS: [Framework, string, StartOptions][] = [
  ['fastapi-uvicorn', 'fastapi-front', {}],
  ['aiohttp', 'aiohttp-front', {}],
  ['fastapi-uvicorn', 'fastapi-front-313', { venv: 'py313' }],
  ['aiohttp', 'aiohttp-front-313', { venv: 'py313' }],
  ['fastapi-uvicorn', 'fastapi-front-312', { venv: 'py312' }],
  ['aiohttp', 'aiohttp-front-312', { venv: 'py312' }],
  ['fastapi-uvicorn', 'fastapi-front-310', { venv: 'py310' }],
  ['aiohttp', 'aiohttp-front-310', { venv: 'py310' }],
  ['fastapi-uvicorn', 'fastapi-front-uvloop', { loop: 'uvloop' }],
  ['fastapi-uvicorn', 'fastapi-front-uvloop-313', { venv: 'py313', loop: 'uvloop' }],
  ['aiohttp', 'aiohttp-front-uvloop', { loop: 'uvloop' }],
  ['aiohttp', 'aiohttp-front-uvloop-313', { venv: 'py313', loop: 'uvloop' }],
  ['fastapi-uvicorn', 'fastapi-front-uvloop-312', { venv: 'py312', loop: 'uvloop' }],
  ['aiohttp', 'aiohttp-front-uvloop-312', { venv: 'py312', loop: 'uvloop' }],
  ['fastapi-uvicorn', 'fastapi-front-uvloop-310', { venv: 'py310', loop: 'uvloop' }],
  ['aiohttp', 'aiohttp-front-uvloop-310', { venv: 'py310', loop: 'uvloop' }],
];
/** A tracestate naming the trace, so a request's state cannot pass for another's. */
const stateOf = (traceId: string): string => `sb=${traceId.slice(0, 16)},other=x`;

interface Outcome {
  connected: number;
  wrong: number;
  unlinked: number;
  problems: string[];
}

describe('Python asyncio: client calls are children of the request their task serves', () => {
  let leaf: FrameworkService;
  const fronts: FrameworkService[] = [];
  let agent: AgentProcess | undefined;
  let stripped: Running | undefined;
  let webPort: number;

  beforeAll(async () => {
    requireRootAndBpf();
    if (!existsSync(STRIPPED_PYTHON)) throw new Error(`${STRIPPED_PYTHON} is missing (Debian's python3 package)`);
    const strippedPort = await freePort();
    stripped = startProcess(STRIPPED_PYTHON, ['-c', STRIPPED_SERVER, String(strippedPort)], {});
    await waitForPort(strippedPort, 30_000);
    leaf = await startFramework('fastapi-uvicorn', 'py-leaf');
    // One at a time: a front that fails to start must not leave the ones before it unstopped
    // (afterAll stops what is in `fronts`).
    for (const [framework, service, opts] of FRONTS) fronts.push(await startFramework(framework, service, opts));
    const pids = [leaf, ...fronts].flatMap((s) => ['--pid', String(s.proc.pid)]);
    webPort = await freePort();
    agent = await startAgent([...pids, '--pid', String(stripped.pid), '--export', 'none', '--web-port', String(webPort)], {}, 120_000);
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([leaf?.proc.stop(), ...fronts.map((f) => f.proc.stop()), stripped?.stop()]);
  });

  it('says per process how asyncio is linked, or why not (/api/processes, as the start-up log)', async () => {
    const { processes } = (await (await fetch(`http://127.0.0.1:${webPort}/api/processes`)).json()) as { processes: { pid: number; notes: string[] }[] };
    const notes = (pid: number): string => processes.find((p) => p.pid === pid)?.notes.join('; ') ?? '(not traced)';
    expect(notes(fronts[0].proc.pid)).toMatch(/asyncio tasks linked \(CPython 3\.11: uprobes on Context\.run, Task\.__init__, Future\.set_result\)/);
    expect(notes(fronts[2].proc.pid)).toMatch(/asyncio tasks linked \(CPython 3\.13: uprobes on Context\.run, Task\.__init__ \(entry and return: eager tasks\)/);
    expect(notes(fronts[4].proc.pid)).toMatch(/asyncio tasks linked \(CPython 3\.12: uprobes on Context\.run, Task\.__init__ \(entry and return: eager tasks\)/);
    expect(notes(fronts[6].proc.pid)).toMatch(/asyncio tasks linked \(CPython 3\.10: uprobes on Context\.run, Task\.__init__, Future\.set_result\)/);
    expect(notes(fronts[8].proc.pid)).toMatch(/asyncio tasks linked \(CPython 3\.11: uprobes on Context\.run, Task\.__init__, Future\.set_result; uvloop: PyContext_Exit, task_wakeup, TaskStepMethWrapper_call, uv_read_start\)/);
    expect(notes(fronts[9].proc.pid)).toMatch(/asyncio tasks linked \(CPython 3\.13: .*; uvloop: PyContext_Exit, .*uv_read_start\)/);
    expect(notes(fronts[10].proc.pid)).toMatch(/asyncio tasks linked \(CPython 3\.11: .*; uvloop: PyContext_Exit, .*uv_read_start\)/);
    expect(notes(fronts[13].proc.pid)).toMatch(/asyncio tasks linked \(CPython 3\.12: .*; uvloop: .*uv_read_start\)/);
    expect(notes(fronts[15].proc.pid)).toMatch(/asyncio tasks linked \(CPython 3\.10: .*; uvloop: .*uv_read_start\)/);
    // asyncio's own loop: no uvloop probes, even where the venv has uvloop installed
    expect(notes(fronts[0].proc.pid)).not.toMatch(/uvloop/);
    expect(notes(stripped!.pid)).toMatch(/asyncio not linked: no symbols: .*_asyncio\.cpython-3\d+-x86_64-linux-gnu\.so is stripped/);
  });

  /** GET over a keep-alive pool: the front serves several requests per connection. */
  function getKeepAlive(url: string, headers: Record<string, string>, pool: http.Agent): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      http
        .get(url, { headers, agent: pool }, (res) => {
          let body = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
  }

  /** What the leaf received for one request. */
  interface Echo {
    readonly traceparent: string;
    readonly tracestate: string;
  }

  /**
   * Sends /call to the leaf's /headers with a traceparent of a fresh trace each and a tracestate
   * naming that trace (a new connection each, or over `pool`); returns trace id -> what the leaf got.
   */
  async function calls(front: FrameworkService, n: number, concurrent: boolean, delayMs: number, pool?: http.Agent): Promise<Map<string, Echo>> {
    const one = async (): Promise<[string, Echo]> => {
      const traceId = hex(16);
      const url = callUrl(front, `${leaf.url}/headers`, delayMs ? `&delay_ms=${delayMs}` : '');
      const headers = { traceparent: `00-${traceId}-${hex(8)}-01`, tracestate: stateOf(traceId) };
      const r = pool ? await getKeepAlive(url, headers, pool) : await send(url, { headers });
      expect(r.status).toBe(200);
      const e = echoed(r.body);
      return [traceId, { traceparent: e?.traceparent ?? '', tracestate: e?.tracestate ?? '' }];
    };
    const out = new Map<string, Echo>();
    if (concurrent) for (const [t, e] of await Promise.all(Array.from({ length: n }, one))) out.set(t, e);
    else for (let i = 0; i < n; i++) out.set(...(await one()));
    return out;
  }

  /** Checks each request's echoed header against the spans the agent reported for `front`. */
  async function judge(front: FrameworkService, sent: Map<string, Echo>): Promise<Outcome> {
    const spansOf = (kind: string): PrintedSpanLine[] => agent!.spans().filter((s) => s.kind === kind && s.resource['service.name'] === front.service);
    await waitFor(`${front.service} spans`, () => {
      const ids = new Set(spansOf('SERVER').map((s) => s.traceId));
      return [...sent.keys()].every((t) => ids.has(t)) && spansOf('CLIENT').length >= sent.size;
    }, 30_000);
    const servers = spansOf('SERVER');
    const clients = spansOf('CLIENT');
    const o: Outcome = { connected: 0, wrong: 0, unlinked: 0, problems: [] };
    for (const [traceId, { traceparent: tp, tracestate }] of sent) {
      const [, gotTrace, gotSpan] = tp.split('-');
      const client = clients.find((c) => c.spanId === gotSpan);
      const server = servers.find((s) => s.traceId === traceId && s.attributes['url.path'] === '/call');
      if (!client || !server) {
        o.problems.push(`${traceId}: echoed ${tp}, client span ${client ? 'found' : 'missing'}, server span ${server ? 'found' : 'missing'}`);
        continue;
      }
      if (gotTrace === traceId && client.parentSpanId === server.spanId && client.attributes['spanbridge.parent.source'] === 'asyncio_task') {
        o.connected++;
        // The request's tracestate goes on with the call linked to it, and the client span says so.
        if (tracestate !== stateOf(traceId) || client.traceState !== stateOf(traceId)) o.problems.push(`${traceId}: tracestate sent on as '${tracestate}', client span '${client.traceState}'`);
      }
      else if (sent.has(gotTrace) || client.parentSpanId !== '') {
        o.wrong++;
        o.problems.push(`${traceId}: wrong parent (leaf got ${tp}, client parent ${client.parentSpanId}, server ${server.spanId})`);
      } else o.unlinked++;
    }
    return o;
  }

  /** At least `minConnected` of the `n` requests connected, none to a wrong parent. */
  function expectOutcome(o: Outcome, n: number, minConnected: number): void {
    expect(o.wrong).toBe(0);
    expect(o.problems).toEqual([]);
    expect(o.connected / n).toBeGreaterThanOrEqual(minConnected);
  }

  for (const [, which] of FRONTS) {
    describe(which, () => {
      const front = (): FrameworkService => fronts.find((f) => f.service === which)!;

      it('sequential requests: every call is the child of its request', async () => {
        const o = await judge(front(), await calls(front(), 10, false, 0));
        expectOutcome(o, 10, 1);
      }, 120_000);

      it('32 concurrent requests with random handler delays: >= 99% connected, no wrong parent', async () => {
        const sent = new Map<string, Echo>();
        for (let round = 0; round < 2; round++) for (const [t, e] of await calls(front(), 32, true, 100)) sent.set(t, e);
        const o = await judge(front(), sent);
        expectOutcome(o, sent.size, 0.99);
      }, 180_000);

      it('keep-alive: sequential on one connection, then 32 concurrent over 8 connections (several requests per connection)', async () => {
        const one = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const eight = new http.Agent({ keepAlive: true, maxSockets: 8 });
        try {
          const sent = await calls(front(), 10, false, 0, one);
          for (const [t, e] of await calls(front(), 32, true, 50, eight)) sent.set(t, e);
          const o = await judge(front(), sent);
          expectOutcome(o, sent.size, 0.99);
        } finally {
          one.destroy();
          eight.destroy();
        }
      }, 180_000);

      it('a call made after the response keeps its request as parent', async () => {
        const traceIds: string[] = [];
        for (let i = 0; i < 3; i++) {
          const traceId = hex(16);
          traceIds.push(traceId);
          const url = `${front().url}/call-after?url=${encodeURIComponent(`${leaf.url}/headers?req=${traceId}`)}`;
          const r = await send(url, { headers: { traceparent: `00-${traceId}-${hex(8)}-01` } });
          expect(r.status).toBe(200);
        }
        for (const traceId of traceIds) {
          const inTrace = (): PrintedSpanLine[] => agent!.spans().filter((s) => s.traceId === traceId);
          await waitFor(`trace ${traceId}: front server, front client, leaf server`, () => inTrace().length >= 3, 30_000);
          const server = inTrace().find((s) => s.kind === 'SERVER' && s.resource['service.name'] === which)!;
          const client = inTrace().find((s) => s.kind === 'CLIENT' && s.resource['service.name'] === which)!;
          const leafServer = inTrace().find((s) => s.kind === 'SERVER' && s.resource['service.name'] === 'py-leaf')!;
          expect(client.parentSpanId).toBe(server.spanId);
          expect(client.attributes['spanbridge.parent.source']).toBe('asyncio_task');
          expect(leafServer.parentSpanId).toBe(client.spanId);
          // the call started after the response had been written
          expect(BigInt(client.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(server.endTimeUnixNano));
        }
      }, 120_000);
    });
  }
});

/**
 * A Python service selected at its exec (`--exe`), before it imported asyncio: the probe finds no
 * asyncio at the attach and tries again at the agent's periodic tick; once found, the service's
 * calls are linked (without that, none would ever be).
 */
describe('Python asyncio: a service selected before it loaded asyncio is linked once it has', () => {
  let leaf: FrameworkService | undefined;
  let front: FrameworkService | undefined;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    requireRootAndBpf();
    leaf = await startFramework('fastapi-uvicorn', 'py-leaf-late');
    agent = await startAgent(['--exe', 'python3.13', '--export', 'none'], {}, 120_000);
    front = await startFramework('fastapi-uvicorn', 'fastapi-late-313', { venv: 'py313' });
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([leaf?.proc.stop(), front?.proc.stop()]);
  });

  it('sequential requests after the late probe: every call is the child of its request', async () => {
    const call = async (): Promise<{ traceId: string; echoedTrace: string; echoedSpan: string }> => {
      const traceId = hex(16);
      const r = await send(callUrl(front!, `${leaf!.url}/headers`), { headers: { traceparent: `00-${traceId}-${hex(8)}-01` } });
      expect(r.status).toBe(200);
      const [, echoedTrace, echoedSpan] = (echoed(r.body)?.traceparent ?? '').split('-');
      return { traceId, echoedTrace, echoedSpan };
    };
    const sourceOf = async (spanId: string): Promise<unknown> => {
      await waitFor('client span', () => agent!.spans().some((s) => s.spanId === spanId), 30_000);
      return agent!.spans().find((s) => s.spanId === spanId)!.attributes['spanbridge.parent.source'];
    };
    // linked by its task from the first tick after uvicorn imported asyncio (5 s period); until
    // then a sequential call may be linked by thread
    await waitFor('the late asyncio probe', async () => (await sourceOf((await call()).echoedSpan)) === 'asyncio_task', 60_000);
    for (let i = 0; i < 10; i++) {
      const c = await call();
      expect(c.echoedTrace).toBe(c.traceId);
      const serverOf = (): PrintedSpanLine | undefined => agent!.spans().find((s) => s.kind === 'SERVER' && s.traceId === c.traceId && s.resource['service.name'] === 'fastapi-late-313');
      await waitFor('client and server spans', () => agent!.spans().some((s) => s.spanId === c.echoedSpan) && serverOf() !== undefined, 30_000);
      const client = agent!.spans().find((s) => s.spanId === c.echoedSpan)!;
      const server = serverOf();
      expect(client.attributes['spanbridge.parent.source']).toBe('asyncio_task');
      expect(client.parentSpanId).toBe(server?.spanId);
    }
  }, 120_000);
});
