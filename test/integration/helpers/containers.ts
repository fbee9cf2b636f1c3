/**
 * Containers for integration tests: testcontainers against podman's Docker-compatible API
 * (scripts/setup-podman.sh starts it on /run/podman/podman.sock; no Docker engine and no image
 * registry here). Images are built locally FROM scratch with static binaries (test/containers/):
 * the Go test/demo services and the stock Collector. Builds are cached by content: an image whose
 * tag (a hash of its inputs) exists is not built again.
 *
 *   const env = await requirePodman();                    // sets DOCKER_HOST for testcontainers
 *   const image = await goServiceImage('goserver', 'ctr-goserver');
 *   const c = await new GenericContainer(image).withEntrypoint([...]).start();
 *   const pid = await hostPidOf(c.getId());               // the container's first process, host pid
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { COLLECTOR_BINARY, flattenTraceRequest, type FlatSpan, type JsonValue } from './collector';
import { buildGoApp } from '../../helpers/go-build';
import { REPO_ROOT } from './processes';

export const PODMAN_SOCKET = process.env.SPANBRIDGE_PODMAN_SOCK ?? '/run/podman/podman.sock';
export const CONTAINERS_DIR = path.join(REPO_ROOT, 'test', 'containers');

/** GET (or other method) on the engine API over its unix socket; resolves with status and parsed body. */
export function engineApi(method: string, apiPath: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: PODMAN_SOCKET, method, path: apiPath, timeout: 10_000 }, (res) => {
      let data = '';
      res.on('data', (d: Buffer) => (data += d.toString()));
      res.on('end', () => {
        let body: unknown = data;
        try {
          body = JSON.parse(data);
        } catch {
          // not JSON (e.g. _ping's "OK")
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`engine API ${apiPath}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Points testcontainers at podman (for this test process only) and checks the API answers; throws
 * a message saying how to fix it otherwise. Ryuk (the reaper container) is disabled: it needs an
 * image from a registry; tests stop what they start.
 */
export async function requirePodman(): Promise<void> {
  process.env.DOCKER_HOST = `unix://${PODMAN_SOCKET}`;
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  let ok = false;
  try {
    ok = (await engineApi('GET', '/_ping')).status === 200;
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new Error(`the podman API does not answer on ${PODMAN_SOCKET}: run \`make setup\` (scripts/setup-podman.sh) as root`);
  }
}

/** The host pid of a container's first process (its pid 1 inside). */
export async function hostPidOf(containerId: string): Promise<number> {
  const r = await engineApi('GET', `/containers/${containerId}/json`);
  const pid = (r.body as { State?: { Pid?: number } }).State?.Pid;
  if (!pid) throw new Error(`container ${containerId}: no running process (${JSON.stringify(r.body).slice(0, 300)})`);
  return pid;
}

async function imageExists(tag: string): Promise<boolean> {
  return (await engineApi('GET', `/images/${encodeURIComponent(tag)}/json`)).status === 200;
}

function hashInputs(files: string[], extra: string): string {
  const h = createHash('sha256');
  for (const f of files) h.update(path.basename(f)).update(readFileSync(f));
  h.update(extra);
  return h.digest('hex').slice(0, 16);
}

/** Time spent building images in this process (for the report in the suite's log). */
export const buildTimings: Array<{ image: string; ms: number; cached: boolean }> = [];

/**
 * Builds `localhost/spanbridge-test/<name>:<hash of inputs>` from test/containers/<dir>/Containerfile
 * with `files` copied into the context (as `rename[basename]` or their own names), unless it exists.
 * Uses testcontainers' image build (the engine's /build API, as with Docker).
 */
export async function buildImage(
  name: string,
  dir: string,
  files: Record<string, string>,
  buildArgs: Record<string, string> = {},
): Promise<string> {
  const { GenericContainer } = await import('testcontainers');
  const ctxSrc = path.join(CONTAINERS_DIR, dir);
  const inputs = [...readdirSync(ctxSrc).sort().map((f) => path.join(ctxSrc, f)), ...Object.values(files)];
  const tag = `localhost/spanbridge-test/${name}:${hashInputs(inputs, JSON.stringify([files, buildArgs]))}`;
  const started = Date.now();
  if (await imageExists(tag)) {
    buildTimings.push({ image: tag, ms: Date.now() - started, cached: true });
    return tag;
  }
  const ctx = mkdtempSync(path.join(os.tmpdir(), 'spanbridge-image-'));
  try {
    for (const f of readdirSync(ctxSrc)) copyFileSync(path.join(ctxSrc, f), path.join(ctx, f));
    for (const [as, from] of Object.entries(files)) copyFileSync(from, path.join(ctx, as));
    await GenericContainer.fromDockerfile(ctx, 'Containerfile').withBuildArgs(buildArgs).build(tag, { deleteOnExit: false });
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
  buildTimings.push({ image: tag, ms: Date.now() - started, cached: false });
  await pruneOtherTags(tag);
  return tag;
}

/** Removes older builds of the same image (other input hashes); images still in use stay. */
async function pruneOtherTags(tag: string): Promise<void> {
  const repo = tag.slice(0, tag.lastIndexOf(':'));
  const filters = encodeURIComponent(JSON.stringify({ reference: [repo] }));
  try {
    const r = await engineApi('GET', `/images/json?filters=${filters}`);
    for (const img of (r.body as Array<{ Id: string; RepoTags?: string[] }>) ?? []) {
      if ((img.RepoTags ?? []).some((t) => t === tag || !t.startsWith(`${repo}:`))) continue;
      await engineApi('DELETE', `/images/${img.Id}`).catch(() => undefined);
    }
  } catch {
    // best effort
  }
}

/** A FROM scratch image has no dynamic loader: the binary must have no PT_INTERP program header. */
function assertStatic(bin: string): void {
  const fd = openSync(bin, 'r');
  try {
    const eh = Buffer.alloc(64);
    readSync(fd, eh, 0, 64, 0);
    if (eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2) throw new Error(`${bin}: not a 64-bit ELF file`);
    const phoff = Number(eh.readBigUInt64LE(32));
    const phentsize = eh.readUInt16LE(54);
    const phnum = eh.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      if (ph.readUInt32LE(i * phentsize) === 3) throw new Error(`${bin} is dynamically linked (PT_INTERP): a FROM scratch image needs a static binary (CGO_ENABLED=0)`);
    }
  } finally {
    closeSync(fd);
  }
}

/** A Go service from test/apps/<app> or demo/<app> (static, CGO_ENABLED=0) at /app/<exeName> in a scratch image. */
export async function goServiceImage(app: string, exeName: string = app): Promise<string> {
  const bin = app.startsWith('demo/') ? buildDemoApp(app.slice(5)) : buildGoApp(app);
  assertStatic(bin);
  return buildImage(`go-${exeName}`, 'go-service', { service: bin }, { NAME: exeName });
}

/** Any static binary (e.g. the C test server built with -static) at /app/<exeName> in a scratch image. */
export async function staticServiceImage(bin: string, exeName: string): Promise<string> {
  assertStatic(bin);
  return buildImage(`static-${exeName}`, 'go-service', { service: bin }, { NAME: exeName });
}

/** test/apps/c-http/server.c linked statically (glibc -static: no loader, no NSS calls used). */
export function buildStaticCServer(): string {
  const src = path.join(REPO_ROOT, 'test', 'apps', 'c-http', 'server.c');
  const h = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12);
  const dir = path.join(os.tmpdir(), 'spanbridge-go-builds', `c-http-static-${h}`);
  const bin = path.join(dir, 'c-http-server');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    execFileSync('gcc', ['-O2', '-static', '-pthread', '-o', `${bin}.tmp${process.pid}`, src], { stdio: ['ignore', 'pipe', 'pipe'] });
    execFileSync('mv', [`${bin}.tmp${process.pid}`, bin]);
  }
  return bin;
}

/** demo/<name> built like test apps (static, cached by source hash). */
export function buildDemoApp(name: string): string {
  const src = path.join(REPO_ROOT, 'demo', name);
  const h = createHash('sha256');
  for (const f of readdirSync(src).sort()) h.update(f).update(readFileSync(path.join(src, f)));
  const dir = path.join(os.tmpdir(), 'spanbridge-go-builds', `demo-${name}-${h.digest('hex').slice(0, 12)}`);
  const bin = path.join(dir, `demo-${name}`);
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.tmp${process.pid}`;
    execFileSync('go', ['build', '-o', tmp, '.'], { cwd: src, env: { ...process.env, CGO_ENABLED: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    execFileSync('mv', [tmp, bin]);
  }
  return bin;
}

/** The stock Collector (build/otelcol/otelcol, static) in a scratch image writing to /out/telemetry.jsonl. */
export async function collectorImage(): Promise<string> {
  if (!existsSync(COLLECTOR_BINARY)) throw new Error(`${COLLECTOR_BINARY} is missing: run \`make setup\``);
  assertStatic(COLLECTOR_BINARY);
  return buildImage('otelcol', 'otelcol', { otelcol: COLLECTOR_BINARY });
}

/** Spans in a Collector output file (OTLP/JSON lines), flattened; [] before the first write. */
export function readSpansFile(file: string): FlatSpan[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const spans: FlatSpan[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let rec: JsonValue;
    try {
      rec = JSON.parse(line) as JsonValue;
    } catch {
      continue; // a line being written
    }
    if (rec && typeof rec === 'object' && !Array.isArray(rec) && 'resourceSpans' in rec) spans.push(...flattenTraceRequest(rec));
  }
  return spans;
}
