/**
 * Test services in several languages for the syscall HTTP tracer (test/apps/*), built once per
 * content hash into the temp directory, and small HTTP helpers.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './collector';
import { REPO_ROOT, startProcess, waitForPort, type Running } from './processes';

export const APPS = path.join(REPO_ROOT, 'test', 'apps');

function buildDir(name: string, files: string[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(f).update(readFileSync(f));
  return path.join(os.tmpdir(), 'spanbridge-app-builds', `${name}-${h.digest('hex').slice(0, 12)}`);
}

export function buildCServer(): string {
  const src = path.join(APPS, 'c-http', 'server.c');
  const dir = buildDir('c-http', [src]);
  const bin = path.join(dir, 'c-http-server');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    execFileSync('gcc', ['-O2', '-Wall', '-pthread', '-o', `${bin}.tmp${process.pid}`, src]);
    renameSync(`${bin}.tmp${process.pid}`, bin);
  }
  return bin;
}

export function buildJavaServer(): string {
  const src = path.join(APPS, 'java-http', 'Server.java');
  const dir = buildDir('java-http', [src]);
  if (!existsSync(path.join(dir, 'Server.class'))) {
    const tmp = `${dir}.tmp${process.pid}`;
    mkdirSync(tmp, { recursive: true });
    execFileSync('javac', ['-d', tmp, src]);
    try {
      renameSync(tmp, dir);
    } catch {
      // another test built it meanwhile
    }
  }
  return dir;
}

export type Lang = 'python' | 'node' | 'java' | 'c';

/** Starts a language's test server on `port` with OTEL_SERVICE_NAME=`service`. */
export async function startServer(lang: Lang, port: number, service: string): Promise<Running> {
  const env = { OTEL_SERVICE_NAME: service };
  let r: Running;
  switch (lang) {
    case 'python':
      r = startProcess('python3', [path.join(APPS, 'python-http', 'server.py'), String(port)], env);
      break;
    case 'node':
      r = startProcess(process.execPath, [path.join(APPS, 'node-http', 'server.js'), String(port)], env);
      break;
    case 'java':
      r = startProcess('java', ['-cp', buildJavaServer(), 'Server', String(port)], env);
      break;
    case 'c':
      r = startProcess(buildCServer(), [String(port)], env);
      break;
  }
  await waitForPort(port, 30_000);
  return r;
}

/** A language's test server as the tests know it. */
export interface LangServer {
  readonly proc: Running;
  readonly port: number;
  /** Its OTEL_SERVICE_NAME. */
  readonly service: string;
}

/**
 * Starts each language's server on a free port with the service name `service(lang)`, adding each
 * to `servers` once it is up (so that after a failure the ones started are there to stop).
 */
export async function startServers(servers: Map<Lang, LangServer>, langs: readonly Lang[], service: (lang: Lang) => string): Promise<void> {
  for (const lang of langs) {
    const port = await freePort();
    servers.set(lang, { proc: await startServer(lang, port, service(lang)), port, service: service(lang) });
  }
}

/** `spanbridge run` arguments that trace `pids` and change nothing on the wire (header injection off). */
export function observeOnlyArgs(pids: readonly number[]): string[] {
  return [...pids.flatMap((p) => ['--pid', String(p)]), '--inject-headers', 'off'];
}

export interface Reply {
  readonly status: number;
  readonly body: string;
}

export function httpRequest(
  port: number,
  p: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; agent?: http.Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: p, method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false },
      (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Sends raw bytes on a fresh connection; resolves with what came back before close/timeout. */
export function rawExchange(port: number, chunks: (Buffer | string)[], opts: { gapMs?: number; waitMs?: number; endAfter?: boolean } = {}): Promise<Buffer> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      s.destroy();
      resolve(Buffer.concat(got));
    };
    s.on('data', (d) => got.push(d));
    s.on('error', finish);
    s.on('close', finish);
    s.on('connect', async () => {
      for (const c of chunks) {
        s.write(c);
        await new Promise((r) => setTimeout(r, opts.gapMs ?? 20));
      }
      if (opts.endAfter) s.end();
      setTimeout(finish, opts.waitMs ?? 500);
    });
  });
}
