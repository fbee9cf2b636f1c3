/**
 * Third-party frameworks as test services (test/frameworks/README.md): each started the way its
 * users start it (gunicorn, uvicorn, java -jar, node), with no tracing code, serving the shared
 * test-service protocol. Installed by `make setup` (scripts/setup-frameworks.sh); a missing install
 * is an error that says so, never a skip.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { NGINX, writeNginxConfig } from '../../frameworks/nginx/config';
import { freePort } from './collector';
import { REPO_ROOT, startProcess, waitForPort, type Running } from './processes';

export const FRAMEWORKS = path.join(REPO_ROOT, 'test', 'frameworks');
const BUILT = path.join(REPO_ROOT, 'build', 'frameworks');
export const VENV_BIN = path.join(BUILT, 'py', 'bin');
export const PYTHON = path.join(VENV_BIN, 'python');
export const W3C_SUITE = path.join(FRAMEWORKS, 'w3c-trace-context', 'test');

export type Framework =
  | 'flask-gunicorn'
  | 'django-gunicorn'
  | 'fastapi-uvicorn'
  | 'aiohttp'
  | 'express'
  | 'express-fetch'
  | 'fastify'
  | 'spring'
  | 'go-proxy';

export interface FrameworkService {
  readonly framework: Framework;
  readonly proc: Running;
  readonly port: number;
  readonly service: string;
  readonly url: string;
}

/** The Python venvs `make setup` builds (scripts/setup-frameworks.sh). */
export type PyVenv = 'py' | 'py310' | 'py312' | 'py313';

export interface StartOptions {
  /** gunicorn: worker processes (default 2) and `--max-requests` (worker recycling; default off). */
  workers?: number;
  maxRequests?: number;
  /** go-proxy: where every unrouted path is forwarded. */
  upstream?: string;
  port?: number;
  env?: Record<string, string>;
  /** fastapi-uvicorn, aiohttp: the venv under build/frameworks (default `py`, CPython 3.11; `py310`, `py312`, `py313`: CPython 3.10, 3.12, 3.13). */
  venv?: PyVenv;
  /**
   * fastapi-uvicorn, aiohttp: the event loop (default asyncio's own). uvicorn is started with
   * `--loop asyncio` unless `uvloop` is asked for: its default (`auto`) would take uvloop, which
   * the venvs have.
   */
  loop?: 'asyncio' | 'uvloop';
  /** spring: the JDK to run it on (default: `java` on PATH, Java 17; `temurin-25`: the machine's second JDK, which has virtual threads). */
  jdk?: 'default' | 'temurin-25';
  /** spring: more application arguments (e.g. `--spring.threads.virtual.enabled=true`). */
  springArgs?: string[];
}

/** The machine's second JDK (the polyglot machine kind ships Temurin 25 beside Debian's OpenJDK 17). */
export const TEMURIN_25_JAVA = '/usr/lib/jvm/temurin-25-jdk-amd64/bin/java';

function need(file: string): string {
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`make setup\` (it installs the test frameworks)`);
  return file;
}

/** Starts `framework` as service `service` and waits until its port accepts connections. */
export async function startFramework(framework: Framework, service: string, opts: StartOptions = {}): Promise<FrameworkService> {
  const port = opts.port ?? (await freePort());
  const env = { OTEL_SERVICE_NAME: service, PYTHONDONTWRITEBYTECODE: '1', ...opts.env };
  const py = path.join(FRAMEWORKS, 'python');
  const node = path.join(FRAMEWORKS, 'node');
  const venvBin = path.join(BUILT, opts.venv ?? 'py', 'bin');
  const gunicorn = (app: string): Running =>
    startProcess(need(path.join(VENV_BIN, 'gunicorn')), [
      '--chdir', py, '--bind', `127.0.0.1:${port}`, '--workers', String(opts.workers ?? 2),
      ...(opts.maxRequests ? ['--max-requests', String(opts.maxRequests)] : []),
      '--access-logfile', '-', '--log-level', 'warning', app,
    ], env);
  let proc: Running;
  switch (framework) {
    case 'flask-gunicorn':
      proc = gunicorn('flask_app:app');
      break;
    case 'django-gunicorn':
      proc = gunicorn('django_app:application');
      break;
    case 'fastapi-uvicorn':
      proc = startProcess(need(path.join(venvBin, 'uvicorn')), ['--app-dir', py, '--host', '127.0.0.1', '--port', String(port), '--loop', opts.loop ?? 'asyncio', '--log-level', 'warning', 'fastapi_app:app'], env);
      break;
    case 'aiohttp':
      proc = startProcess(need(path.join(venvBin, 'python')), [path.join(py, 'aiohttp_app.py'), String(port)], { ...env, EVENT_LOOP: opts.loop ?? 'asyncio' });
      break;
    case 'express':
    case 'express-fetch':
      need(path.join(node, 'node_modules', 'express'));
      proc = startProcess(process.execPath, [path.join(node, 'express_app.js'), String(port)], { ...env, CLIENT: framework === 'express-fetch' ? 'fetch' : 'axios' });
      break;
    case 'fastify':
      need(path.join(node, 'node_modules', 'fastify'));
      proc = startProcess(process.execPath, [path.join(node, 'fastify_app.js'), String(port)], env);
      break;
    case 'spring':
      proc = startProcess(opts.jdk === 'temurin-25' ? need(TEMURIN_25_JAVA) : 'java', ['-Xmx256m', '-XX:TieredStopAtLevel=1', '-jar', need(path.join(BUILT, 'spring.jar')), `--server.port=${port}`, '--server.address=127.0.0.1', '--spring.main.banner-mode=off', ...(opts.springArgs ?? [])], env);
      break;
    case 'go-proxy':
      proc = startProcess(need(path.join(BUILT, 'go-proxy')), [String(port), opts.upstream ?? 'http://127.0.0.1:9'], env);
      break;
  }
  try {
    await waitForPort(port, framework === 'spring' ? 90_000 : 30_000);
  } catch (err) {
    await proc.stop('SIGKILL');
    throw new Error(`${framework} did not start: ${(err as Error).message}\n${proc.stderr()}`);
  }
  return { framework, proc, port, service, url: `http://127.0.0.1:${port}` };
}

/** `/call?url=` of `svc` aimed at `target` (a full URL). */
export function callUrl(svc: FrameworkService, target: string, extra = ''): string {
  return `${svc.url}/call?url=${encodeURIComponent(target)}${extra}`;
}

export interface RunningNginx {
  readonly proc: Running;
  readonly port: number;
  readonly url: string;
  /** Its temp directory (config, pid file, temp paths); free for a test's own files. */
  readonly dir: string;
}

/**
 * Debian's nginx in the foreground (master + `workers` workers), every path served by
 * `location` (an nginx location body, e.g. `proxy_pass http://...;`), all state in a temp dir.
 * `http`: more directives for the http block (e.g. an `upstream` block with `keepalive`).
 */
export async function startNginx(location: string, workers = 1, http = ''): Promise<RunningNginx> {
  const port = await freePort();
  const { dir, args } = writeNginxConfig('spanbridge-nginx-', { port, location, workers, http });
  const proc = startProcess(need(NGINX), args);
  try {
    await waitForPort(port, 30_000);
  } catch (err) {
    await proc.stop('SIGKILL');
    throw new Error(`nginx did not start: ${(err as Error).message}\n${proc.stderr()}`);
  }
  return { proc, port, url: `http://127.0.0.1:${port}`, dir };
}
