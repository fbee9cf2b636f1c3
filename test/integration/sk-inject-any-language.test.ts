/**
 * Socket-level traceparent injection for uninstrumented non-Go clients on the locked-down host:
 * Python (urllib, a new connection per request) and Node (http, keep-alive) call a Go echo server
 * (/headers returns the request headers it received). The client span's context is decided by the
 * syscall tracer at write enter and handed to the sk_msg program (bpf/sk_inject.h): the header the
 * server sees must be exactly the CLIENT span the agent reports for that request.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildGoApp } from './helpers/go-build';
import { freePort } from './helpers/collector';
import { echoedTraceparents } from './helpers/go-chain';
import { startServer } from './helpers/any-language';
import { kernelCounters, startAgent, startProcess, waitFor, waitForPort, type AgentProcess, type Running } from './helpers/processes';
import { lockedDown, requireRootAndBpf } from './helpers/privileges';

const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Each stdin line "N URL [HEADER=VALUE]" -> N GETs; prints one JSON line {bodies: [...]}. */
const PY_CLIENT = `
import json, sys, urllib.request
print("ready", flush=True)
for line in sys.stdin:
    parts = line.split()
    n, url = int(parts[0]), parts[1]
    hdrs = dict(p.split("=", 1) for p in parts[2:])
    bodies = []
    for _ in range(n):
        req = urllib.request.Request(url, headers=hdrs)
        with urllib.request.urlopen(req, timeout=10) as r:
            bodies.append(r.read().decode("latin1"))
    print(json.dumps({"bodies": bodies}), flush=True)
`;

const NODE_CLIENT = `
const http = require('node:http');
const readline = require('node:readline');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const get = (url, headers) => new Promise((resolve, reject) => {
  http.get(url, { agent, headers }, (r) => { let b = ''; r.setEncoding('latin1'); r.on('data', (d) => (b += d)); r.on('end', () => resolve(b)); }).on('error', reject);
});
console.log('ready');
const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  chain = chain.then(async () => {
    const [n, url, ...h] = line.trim().split(/\\s+/);
    const headers = Object.fromEntries(h.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
    const bodies = [];
    for (let i = 0; i < Number(n); i++) bodies.push(await get(url, headers));
    console.log(JSON.stringify({ bodies }));
  });
});
`;

interface ClientProc {
  readonly pid: number;
  readonly proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  stop(): Promise<void>;
}

/** Like helpers/processes startProcess, with stdin as a pipe (commands are sent there). */
function spawnWithStdin(cmd: string, args: string[]): ClientProc {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => proc.on('close', () => resolve()));
  return {
    pid: proc.pid ?? -1,
    proc,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

interface Client {
  readonly proc: ClientProc;
  run(n: number, url: string, headers?: Record<string, string>): Promise<string[]>;
}

function startClient(lang: 'python' | 'node', dir: string): Client {
  const file = path.join(dir, lang === 'python' ? 'client.py' : 'client.js');
  writeFileSync(file, lang === 'python' ? PY_CLIENT : NODE_CLIENT);
  const proc = spawnWithStdin(lang === 'python' ? 'python3' : process.execPath, [file]);
  let answered = 0;
  return {
    proc,
    async run(n, url, headers = {}) {
      const h = Object.entries(headers).map(([k, v]) => `${k}=${v}`);
      proc.proc.stdin?.write(`${n} ${url} ${h.join(' ')}\n`);
      const want = ++answered;
      const line = await waitFor(
        `${lang} client answer ${want}`,
        () => {
          if (proc.proc.exitCode !== null) throw new Error(`${lang} client exited:\n${proc.stderr()}`);
          return proc.stdout().split('\n').filter((l) => l.startsWith('{'))[want - 1];
        },
        60_000,
      );
      return (JSON.parse(line) as { bodies: string[] }).bodies;
    },
  };
}

const maybe = lockedDown() ? describe : describe.skip;

maybe('sk_msg traceparent injection into non-Go clients (locked-down host)', () => {
  let backend: Running;
  let backendPort: number;
  let agent: AgentProcess;
  let pyServer: Running;
  let pyServerPort: number;
  const clients: Partial<Record<'python' | 'node', Client>> = {};

  beforeAll(async () => {
    requireRootAndBpf();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sk-inject-clients-'));
    backendPort = await freePort();
    backend = startProcess(buildGoApp('goserver'), ['-addr', `127.0.0.1:${backendPort}`]);
    await waitForPort(backendPort, 60_000);
    pyServerPort = await freePort();
    pyServer = await startServer('python', pyServerPort, 'py-middle');
    clients.python = startClient('python', dir);
    clients.node = startClient('node', dir);
    for (const c of Object.values(clients)) await waitFor('client ready', () => c!.proc.stdout().includes('ready'), 15_000);
    agent = await startAgent(
      ['--pid', String(backend.pid), '--pid', String(pyServer.pid), '--pid', String(clients.python.proc.pid), '--pid', String(clients.node.proc.pid), '--export', 'none'],
      {},
      120_000,
    );
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    for (const c of Object.values(clients)) await c?.proc.stop();
    await pyServer?.stop();
    await backend?.stop();
  });

  it('selects the clients for socket-level injection', () => {
    for (const c of Object.values(clients)) {
      expect(agent.stderr()).toMatch(new RegExp(`attached pid ${c!.proc.pid} .*traceparent injection: sk_msg`));
    }
  });

  it.each(['python', 'node'] as const)('%s: one traceparent = the reported CLIENT span; the backend continues the trace', async (lang) => {
    const c = clients[lang]!;
    const [body] = await c.run(1, `http://127.0.0.1:${backendPort}/headers`);
    const tps = echoedTraceparents(body);
    expect(tps).toHaveLength(1);
    const m = TP.exec(tps[0]);
    expect(m).not.toBeNull();
    const [, traceId, spanId] = m!;
    const client = await waitFor(`${lang} client span`, () =>
      agent.spans().find((s) => s.kind === 'CLIENT' && s.resource['process.pid'] === c.proc.pid && s.spanId === spanId),
    );
    expect(client.traceId).toBe(traceId);
    const server = await waitFor('backend span', () =>
      agent.spans().find((s) => s.kind === 'SERVER' && s.resource['process.pid'] === backend.pid && s.parentSpanId === spanId),
    );
    expect(server.traceId).toBe(traceId);
  });

  it.each(['python', 'node'] as const)('%s: 1,000 requests (node: one keep-alive connection) each get their own header', async (lang) => {
    const bodies = await clients[lang]!.run(1000, `http://127.0.0.1:${backendPort}/headers`);
    const ids = new Set<string>();
    for (const b of bodies) {
      const tps = echoedTraceparents(b);
      expect(tps).toHaveLength(1);
      ids.add(TP.exec(tps[0])![2]);
    }
    expect(ids.size).toBe(1000);
  }, 120_000);

  it.each(['python', 'node'] as const)('%s: an application-set traceparent is never doubled', async (lang) => {
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const [body] = await clients[lang]!.run(1, `http://127.0.0.1:${backendPort}/headers`, { traceparent: tp });
    expect(echoedTraceparents(body)).toEqual([tp]);
  });

  /** GET pyServer /call?url=<backend /headers> with `headers`; returns the backend's echoed head. */
  function callThroughPython(headers: Record<string, string>): Promise<string> {
    const target = encodeURIComponent(`http://127.0.0.1:${backendPort}/headers`);
    return new Promise<string>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: pyServerPort, path: `/call?url=${target}`, agent: false, headers }, (res) => {
          let b = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => (b += d));
          // The Python server answers "<status> <backend body>".
          res.on('end', () => resolve(b.replace(/^\d+ /, '')));
        })
        .on('error', reject);
    });
  }

  const tracestatesOf = (body: string): string[] =>
    body
      .split('\n')
      .filter((l) => /^tracestate:/i.test(l))
      .map((l) => l.slice(l.indexOf(':') + 1).trim());

  it('an incoming trace is continued through an uninstrumented Python server (thread-linked client call): trace id and tracestate', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const tracestate = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';
    const body = await callThroughPython({ traceparent: `00-${traceId}-00f067aa0ba902b7-01`, tracestate });
    const tps = echoedTraceparents(body);
    expect({ tps, body }).toMatchObject({ tps: [expect.stringMatching(TP)] });
    const [, tid, spanId] = TP.exec(tps[0])!;
    expect(tid).toBe(traceId);
    // W3C: the incoming tracestate goes on unchanged, exactly once.
    expect(tracestatesOf(body)).toEqual([tracestate]);
    const client = await waitFor('python server client span', () =>
      agent.spans().find((s) => s.kind === 'CLIENT' && s.resource['process.pid'] === pyServer.pid && s.spanId === spanId),
    );
    const server = await waitFor('python server span', () =>
      agent.spans().find((s) => s.kind === 'SERVER' && s.resource['process.pid'] === pyServer.pid && s.spanId === client.parentSpanId),
    );
    expect(server.traceId).toBe(traceId);
    expect(server.parentSpanId).toBe('00f067aa0ba902b7');
    expect(server.traceState).toBe(tracestate);
    expect(client.traceState).toBe(tracestate);
  });

  it('tracestate: none sent without an incoming one (no value left over from the previous request), and a 300-byte value is not sent', async () => {
    const traceId = '5bf92f3577b34da6a3ce929d0e0e4737';
    const plain = await callThroughPython({ traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    expect(TP.exec(echoedTraceparents(plain)[0])![1]).toBe(traceId);
    expect(tracestatesOf(plain)).toEqual([]);
    const long = `k=${'v'.repeat(298)}`;
    const cut = await callThroughPython({ traceparent: `00-${traceId}-00f067aa0ba902b7-01`, tracestate: long });
    expect(TP.exec(echoedTraceparents(cut)[0])![1]).toBe(traceId);
    expect(tracestatesOf(cut)).toEqual([]);
  });

  it('tracestate: a request that starts a new trace sends none', async () => {
    // A tracestate without a valid traceparent is meaningless (W3C): the Python server's span is a
    // new root and its call must not carry the stray value.
    const body = await callThroughPython({ tracestate: 'stray=1' });
    expect(echoedTraceparents(body)).toHaveLength(1);
    expect(tracestatesOf(body)).toEqual([]);
  });

  it('counts injections in the kernel', async () => {
    await agent.stop();
    const counters = kernelCounters(agent.stderr());
    expect(counters.sk_inject_done).toBeGreaterThanOrEqual(2002);
    expect(counters.sk_inject_skip_push_failed ?? 0).toBe(0);
    expect(counters.sk_inject_tracestate_done).toBe(1);
    expect(counters.sys_http_skip_tracestate_not_kept).toBe(1);
  });
});
