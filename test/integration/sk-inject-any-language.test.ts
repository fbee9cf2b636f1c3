/**
 * Socket-level traceparent injection for uninstrumented non-Go clients, on any kernel (non-Go
 * processes get the sk_msg path whether or not lockdown allows memory writes): Python (urllib, a
 * connection per request; http.client, one keep-alive connection) and Node (http, keep-alive) call
 * a Go echo server (/headers returns the request headers it received). The client span's context is
 * decided by the syscall tracer at write enter and handed to the sk_msg program (bpf/common/sk_inject.h):
 * the header the server sees must be exactly the CLIENT span the agent reports for that request.
 * Byte identity: the same client programs, not selected, send the same POSTs to a raw capture
 * server; the traced requests must equal theirs plus the one inserted line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildGoApp } from '../helpers/go-build';
import { freePort } from './helpers/collector';
import { echoedTraceparents } from './helpers/go-chain';
import { startServer } from './helpers/any-language';
import { startAgent, startProcess, waitFor, waitForPort, waitForTraced, type AgentProcess, type Running } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';

const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** A client command, one JSON line on stdin; the answer is one JSON line {bodies: [...]}. */
interface Command {
  n: number;
  url: string;
  headers?: Record<string, string>;
  method?: string;
  bodyHex?: string;
  /** python: one http.client connection for all n requests (urllib opens one per request) */
  keepAlive?: boolean;
}

const PY_CLIENT = `
import http.client, json, sys, urllib.parse, urllib.request
print("ready", flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    n, url, hdrs = cmd["n"], cmd["url"], cmd.get("headers", {})
    method = cmd.get("method", "GET")
    data = bytes.fromhex(cmd["bodyHex"]) if "bodyHex" in cmd else None
    bodies = []
    if cmd.get("keepAlive"):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        for _ in range(n):
            conn.request(method, u.path, body=data, headers=hdrs)
            bodies.append(conn.getresponse().read().decode("latin1"))
        conn.close()
    else:
        for _ in range(n):
            req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
            with urllib.request.urlopen(req, timeout=10) as r:
                bodies.append(r.read().decode("latin1"))
    print(json.dumps({"bodies": bodies}), flush=True)
`;

const NODE_CLIENT = `
const http = require('node:http');
const readline = require('node:readline');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const send = (url, method, headers, body) => new Promise((resolve, reject) => {
  const req = http.request(url, { agent, method, headers }, (r) => { let b = ''; r.setEncoding('latin1'); r.on('data', (d) => (b += d)); r.on('end', () => resolve(b)); });
  req.on('error', reject);
  req.end(body);
});
console.log('ready');
const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  chain = chain.then(async () => {
    const cmd = JSON.parse(line);
    const body = cmd.bodyHex === undefined ? undefined : Buffer.from(cmd.bodyHex, 'hex');
    const bodies = [];
    for (let i = 0; i < cmd.n; i++) bodies.push(await send(cmd.url, cmd.method ?? 'GET', cmd.headers ?? {}, body));
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
  run(cmd: Command): Promise<string[]>;
}

function startClient(lang: 'python' | 'node', dir: string): Client {
  const file = path.join(dir, lang === 'python' ? 'client.py' : 'client.js');
  writeFileSync(file, lang === 'python' ? PY_CLIENT : NODE_CLIENT);
  const proc = spawnWithStdin(lang === 'python' ? 'python3' : process.execPath, [file]);
  let answered = 0;
  return {
    proc,
    async run(cmd) {
      proc.proc.stdin?.write(`${JSON.stringify(cmd)}\n`);
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

/** A raw HTTP/1.1 server that keeps every request exactly as it arrived (head + Content-Length
 * body), answering each with a 2-byte 200 on the same connection. */
interface CaptureServer {
  readonly port: number;
  /** the requests received since the last take, in arrival order */
  take(): Buffer[];
  close(): Promise<void>;
}

function startCaptureServer(): Promise<CaptureServer> {
  let got: Buffer[] = [];
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const headEnd = buf.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const m = /\r\ncontent-length:[ \t]*(\d+)/i.exec(buf.subarray(0, headEnd).toString('latin1'));
        const total = headEnd + 4 + (m ? Number(m[1]) : 0);
        if (buf.length < total) return;
        got.push(Buffer.from(buf.subarray(0, total)));
        buf = buf.subarray(total);
        sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        take: () => {
          const out = got;
          got = [];
          return out;
        },
        close: () => new Promise<void>((r) => server.close(() => r())),
      }),
    ),
  );
}

/** 64 KiB that would fool a parser not framing by Content-Length: it starts like a request
 * carrying a traceparent and has request lines, blank lines and every byte value inside. */
function requestLookalikeBody(): Buffer {
  const parts: Buffer[] = [Buffer.from('GET /not-a-request HTTP/1.1\r\ntraceparent: 00-11111111111111111111111111111111-2222222222222222-01\r\n\r\n')];
  let size = parts[0].length;
  for (let i = 0; size < 64 * 1024; i++) {
    const chunk = i % 7 === 3 ? Buffer.from(`POST /also-not-${i} HTTP/1.1\r\nHost: x\r\n\r\n`) : Buffer.from(Array.from({ length: 256 }, (_, b) => (b * 31 + i) & 0xff));
    parts.push(chunk);
    size += chunk.length;
  }
  return Buffer.concat(parts).subarray(0, 64 * 1024);
}

const TP_LINE = /^traceparent: (00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2})\r\n/;

/** Splits the traceparent line the agent inserted right after the request line off a request. */
function withoutInsertedTraceparent(req: Buffer): { traceparent: string; rest: Buffer } | undefined {
  const eol = req.indexOf('\r\n') + 2;
  const m = TP_LINE.exec(req.subarray(eol, eol + 80).toString('latin1'));
  if (!m) return undefined;
  return { traceparent: m[1], rest: Buffer.concat([req.subarray(0, eol), req.subarray(eol + m[0].length)]) };
}

describe('sk_msg traceparent injection into non-Go clients (every kernel: non-Go clients always get sk_msg)', () => {
  let backend: Running;
  let backendPort: number;
  let agent: AgentProcess;
  let pyServer: Running;
  let pyServerPort: number;
  const clients: Partial<Record<'python' | 'node', Client>> = {};
  /** the same client programs, not selected: what the requests look like without the agent */
  const twins: Partial<Record<'python' | 'node', Client>> = {};
  let capture: CaptureServer;

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
    twins.python = startClient('python', dir);
    twins.node = startClient('node', dir);
    capture = await startCaptureServer();
    for (const c of [...Object.values(clients), ...Object.values(twins)]) await waitFor('client ready', () => c!.proc.stdout().includes('ready'), 15_000);
    agent = await startAgent(
      ['--pid', String(backend.pid), '--pid', String(pyServer.pid), '--pid', String(clients.python.proc.pid), '--pid', String(clients.node.proc.pid), '--export', 'none'],
      {},
      120_000,
    );
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    for (const c of [...Object.values(clients), ...Object.values(twins)]) await c?.proc.stop();
    await capture?.close();
    await pyServer?.stop();
    await backend?.stop();
  });

  it('selects the clients for socket-level injection', async () => {
    for (const c of Object.values(clients)) {
      expect((await waitForTraced(agent, c!.proc.pid)).injection).toBe('sk_msg');
    }
  });

  it.each(['python', 'node'] as const)('%s: one traceparent = the reported CLIENT span; the backend continues the trace', async (lang) => {
    const c = clients[lang]!;
    const [body] = await c.run({ n: 1, url: `http://127.0.0.1:${backendPort}/headers` });
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

  it.each([
    ['python (urllib, a connection per request)', 'python', false],
    ['python (http.client, one keep-alive connection)', 'python', true],
    ['node (http, one keep-alive connection)', 'node', false],
  ] as const)('%s: 1,000 requests each get their own header', async (_name, lang, keepAlive) => {
    const bodies = await clients[lang]!.run({ n: 1000, url: `http://127.0.0.1:${backendPort}/headers`, keepAlive });
    const ids = new Set<string>();
    for (const b of bodies) {
      const tps = echoedTraceparents(b);
      expect(tps).toHaveLength(1);
      ids.add(TP.exec(tps[0])![2]);
    }
    expect(ids.size).toBe(1000);
  }, 120_000);

  it.each(['python', 'node'] as const)(
    '%s: two keep-alive POSTs with a 64 KiB request-lookalike body: one traceparent line after the request line (the reported CLIENT span), every other byte identical to an unselected twin client',
    async (lang) => {
      const body = requestLookalikeBody();
      const cmd: Command = {
        n: 2,
        url: `http://127.0.0.1:${capture.port}/upload?x=1`,
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length), 'X-Odd-Header': 'a: b;  c=d\tend', Accept: '*/*' },
        bodyHex: body.toString('hex'),
        keepAlive: true,
      };
      capture.take();
      await clients[lang]!.run(cmd);
      const traced = capture.take();
      await twins[lang]!.run(cmd);
      const plain = capture.take();
      expect(traced).toHaveLength(2);
      expect(plain).toHaveLength(2);
      const seen = new Set<string>();
      for (let i = 0; i < 2; i++) {
        const plainHead = plain[i].subarray(0, plain[i].indexOf('\r\n\r\n') + 4).toString('latin1');
        expect(plainHead).not.toMatch(/\r\ntraceparent:/i);
        expect(plain[i].subarray(plainHead.length).equals(body)).toBe(true);
        const split = withoutInsertedTraceparent(traced[i]);
        expect({ request: i, head: traced[i].subarray(0, 200).toString('latin1'), inserted: split !== undefined }).toMatchObject({ inserted: true });
        expect(split!.rest.equals(plain[i])).toBe(true);
        const [, traceId, spanId] = TP.exec(split!.traceparent)!;
        seen.add(spanId);
        const client = await waitFor(`${lang} POST client span ${i}`, () =>
          agent.spans().find((s) => s.kind === 'CLIENT' && s.resource['process.pid'] === clients[lang]!.proc.pid && s.spanId === spanId),
        );
        expect(client.traceId).toBe(traceId);
      }
      expect(seen.size).toBe(2);
    },
    60_000,
  );

  it.each(['python', 'node'] as const)('%s: an application-set traceparent is never doubled', async (lang) => {
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const [body] = await clients[lang]!.run({ n: 1, url: `http://127.0.0.1:${backendPort}/headers`, headers: { traceparent: tp } });
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
    const counters = await agent.kernelCounters();
    await agent.stop();
    // 2 single requests, 3 x 1,000, 2 x 2 POSTs, 1 continued call through the Python server
    expect(counters.sk_inject_done).toBeGreaterThanOrEqual(3007);
    expect(counters.sk_inject_skip_push_failed ?? 0).toBe(0);
    expect(counters.sk_inject_tracestate_done).toBe(1);
    expect(counters.sys_http_skip_tracestate_not_kept).toBe(1);
  });
});
