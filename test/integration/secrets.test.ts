/**
 * Secrets never leave in telemetry (issue 18), on the real kernel with third-party frameworks: a
 * Go service (httputil.ReverseProxy + net/http client) and a Python service (Flask on gunicorn +
 * requests) receive and send requests carrying every default sensitive query key, URL credentials
 * and Authorization/Cookie headers. The Collector's received data (spans and metrics), the agent's
 * stdout (--print-spans json) and stderr (at debug level), /metrics and the web view's JSON must
 * hold none of the secret values, while the spans show the redacted shape (`key=REDACTED`,
 * `REDACTED:REDACTED@`). Also: the local endpoints answer on loopback only, and what the agent
 * writes or pins is root-only.
 */
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DEFAULT_QUERY_KEYS } from '../../src/spans/url-redaction';
import { freePort, startCollector, type FlatSpan, type RunningCollector } from './helpers/collector';
import { callUrl, startFramework, type FrameworkService } from './helpers/frameworks';
import { requireRootAndBpf } from './helpers/privileges';
import { startAgent, waitFor, type AgentProcess } from './helpers/processes';
import { b64, startPyClient, type PyClient } from './helpers/py-raw-client';

const TAG = randomBytes(6).toString('hex').replace(/[0-9a-f]/g, (c) => 'ghijklmnopqrstuv'[parseInt(c, 16)]);
/** Every value is unique and alphanumeric, so percent-encoding cannot hide a leak from the grep. */
const QUERY_SECRETS = DEFAULT_QUERY_KEYS.map((k, i) => ({ key: k, value: `qs${i}x${TAG}` }));
const USER = `creduser${TAG}`;
const PASSWORD = `credpass${TAG}`;
const BEARER = `bearersecret${TAG}`;
const COOKIE = `cookiesecret${TAG}`;
const API_KEY_HEADER = `headerkey${TAG}`;
const SECRETS = [
  ...QUERY_SECRETS.map((s) => s.value),
  USER,
  PASSWORD,
  b64(`${USER}:${PASSWORD}`), // the Authorization: Basic value clients derive from URL credentials
  BEARER,
  COOKIE,
  API_KEY_HEADER,
];
/**
 * Every default key with its secret value, in varied case, plus harmless pairs that must stay; in
 * two queries, as the Go tracer captures the first 256 bytes of a query (bpf/go_http/go_http_server.h).
 */
const pairs = QUERY_SECRETS.map((s, i) => `${i % 2 ? s.key.toUpperCase() : s.key}=${s.value}`);
const QUERIES = [pairs.slice(0, 8), pairs.slice(8)].map((p) => ['page=2', ...p, 'lang=en'].join('&'));
const SECRET_HEADERS = { authorization: `Bearer ${BEARER}`, cookie: `sid=${COOKIE}`, 'x-api-key': API_KEY_HEADER };

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error(`GET ${url}: timeout`)));
  });
}

/** Every secret found in `text`, by name, for a readable failure. */
function leaks(text: string): string[] {
  return SECRETS.filter((s) => text.includes(s));
}

/** Each default key appears as `key=REDACTED` (any case) in one of `values`. */
function allKeysRedacted(values: unknown[]): boolean {
  const v = values.map((x) => `&${String(x ?? '').toLowerCase()}`);
  return DEFAULT_QUERY_KEYS.every((k) => v.some((x) => x.includes(`&${k.toLowerCase()}=redacted`)));
}

function nonLoopbackIPv4(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 3000 });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
}

describe('secrets never leave in telemetry (Go and Python services, server and client spans)', () => {
  let collector: RunningCollector;
  let py: FrameworkService;
  let go: FrameworkService;
  let pyc: PyClient;
  let agent: AgentProcess;
  let promPort: number;
  let webPort: number;
  let spans: FlatSpan[] = [];
  let metricsText = '';
  let webJson = '';

  const of = (service: string, kind: 'SERVER' | 'CLIENT'): FlatSpan[] =>
    spans.filter((s) => s.resource['service.name'] === service && s.kind === kind);

  beforeAll(async () => {
    requireRootAndBpf();
    collector = await startCollector();
    py = await startFramework('flask-gunicorn', `py-secrets-${TAG}`, { workers: 2 });
    go = await startFramework('go-proxy', `go-secrets-${TAG}`, { upstream: py.url });
    pyc = startPyClient(mkdtempSync(path.join(os.tmpdir(), 'spanbridge-secrets-')));
    promPort = await freePort();
    webPort = await freePort();
    agent = await startAgent(
      [
        '--open-port', String(py.port),
        '--open-port', String(go.port),
        '--pid', String(pyc.pid),
        '--otlp-endpoint', collector.endpoint,
        '--prometheus-port', String(promPort),
        '--web-port', String(webPort),
        '--log-level', 'debug',
      ],
      { OTEL_BSP_SCHEDULE_DELAY: '200', OTEL_METRIC_EXPORT_INTERVAL: '1000' },
      60_000,
    );
    // Attached, as the web view's process table says: the Go proxy, the Python client, gunicorn's master and 2 workers.
    await waitFor(
      'services attached',
      async () => {
        const { processes } = JSON.parse((await get(`http://127.0.0.1:${webPort}/api/processes`)).body) as { processes: { pid: number; service: string }[] };
        const pids = new Set(processes.map((p) => p.pid));
        return pids.has(go.proc.pid) && pids.has(pyc.pid) && processes.filter((p) => p.service === py.service).length >= 3;
      },
      60_000,
    );

    for (const qs of QUERIES) {
      // Go server -> (ReverseProxy, Go client) -> Python server, with secret headers.
      expect((await get(`${go.url}/hello?${qs}`, SECRET_HEADERS)).status).toBe(200);
      // Python server -> (requests) -> Go server -> Python server; the URL carries credentials.
      const credsToGo = `http://${USER}:${PASSWORD}@127.0.0.1:${go.port}/hello?${qs}`;
      expect((await get(callUrl(py, credsToGo, `&sig=${QUERY_SECRETS[2].value}`), SECRET_HEADERS)).status).toBe(200);
      // Go server -> (net/http client with URL credentials) -> Python server.
      const credsToPy = `http://${USER}:${PASSWORD}@127.0.0.1:${py.port}/hello?${qs}`;
      expect((await get(callUrl(go, credsToPy), SECRET_HEADERS)).status).toBe(200);
      // A Python client writing userinfo into Host itself (some clients and proxies do).
      const raw =
        `GET /hello?${qs} HTTP/1.1\r\nHost: ${USER}:${PASSWORD}@127.0.0.1:${py.port}\r\n` +
        `Authorization: Bearer ${BEARER}\r\nCookie: sid=${COOKIE}\r\nConnection: close\r\n\r\n`;
      const answer = await pyc.send({ kind: 'raw', port: py.port, chunks: [b64(raw)], half_close: false });
      expect(Buffer.from(answer.data ?? '', 'base64').toString('latin1')).toMatch(/^HTTP\/1\.[01] 200/);
    }

    spans = await collector.waitForSpans(
      (s) => {
        spans = s;
        return (
          of(go.service, 'SERVER').length >= 6 &&
          of(go.service, 'CLIENT').length >= 4 &&
          of(py.service, 'SERVER').length >= 10 &&
          spans.filter((x) => x.kind === 'CLIENT' && x.resource['process.pid'] === pyc.pid).length >= 2 &&
          of(py.service, 'CLIENT').length >= 2
        );
      },
      60_000,
    );
    await waitFor('printed spans', () => agent.spans().length >= spans.length, 30_000);
    await collector.waitForMetrics((m) => m.some((p) => p.name === 'http.server.request.duration' && p.resource['service.name'] === py.service), 30_000);
    metricsText = (await get(`http://127.0.0.1:${promPort}/metrics`)).body;
    // A trace reaches the web view once it is finished (quiet for trace_view.quiet_ms).
    webJson = await waitFor(
      'finished traces on the web view',
      async () => {
        const body = (await get(`http://127.0.0.1:${webPort}/api/traces?limit=500`)).body;
        return body.includes('REDACTED') ? body : undefined;
      },
      30_000,
    );
  }, 300_000);

  afterAll(async () => {
    await agent?.stop();
    await pyc?.stop();
    await go?.proc.stop();
    await py?.proc.stop();
    await collector?.stop();
  });

  it('Go server and client spans: every default key is key=REDACTED, other pairs kept', () => {
    const servers = of(go.service, 'SERVER').filter((s) => s.attributes['url.path'] === '/hello');
    expect(servers.length).toBeGreaterThanOrEqual(2);
    expect(allKeysRedacted(servers.map((s) => s.attributes['url.query']))).toBe(true);
    for (const s of servers) expect(String(s.attributes['url.query'])).toMatch(/^page=2&.*&lang=en$/);
    const clients = of(go.service, 'CLIENT').filter((s) => String(s.attributes['url.full']).includes('/hello?'));
    expect(allKeysRedacted(clients.map((s) => s.attributes['url.full']))).toBe(true);
    for (const c of clients) expect(c.attributes['server.address']).toBe('127.0.0.1');
    // /call?url=<a URL with credentials and signed query>: redacted inside the outer query too.
    const call = of(go.service, 'SERVER').find((s) => s.attributes['url.path'] === '/call');
    expect(String(call!.attributes['url.query'])).toContain('url=http%3A%2F%2FREDACTED%3AREDACTED%40127.0.0.1');
  });

  it('Python server and client spans: every default key is key=REDACTED; Host userinfo is REDACTED:REDACTED@', () => {
    const servers = of(py.service, 'SERVER').filter((s) => s.attributes['url.path'] === '/hello');
    expect(allKeysRedacted(servers.map((s) => s.attributes['url.query']))).toBe(true);
    const clients = of(py.service, 'CLIENT').filter((s) => String(s.attributes['url.full']).includes('/hello?'));
    expect(allKeysRedacted(clients.map((s) => s.attributes['url.full']))).toBe(true);
    const rawClient = spans.find((s) => s.kind === 'CLIENT' && s.resource['process.pid'] === pyc.pid);
    expect(String(rawClient!.attributes['url.full'])).toMatch(new RegExp(`^http://REDACTED:REDACTED@127\\.0\\.0\\.1:${py.port}/hello\\?page=2&`));
    expect(rawClient!.attributes['server.address']).toBe('127.0.0.1');
    expect(rawClient!.attributes['server.port']).toBe(py.port);
  });

  it('no header value but trace context, user agent, host and framing is exported', () => {
    const allowed = /^(http\.|url\.|server\.|client\.|network\.|user_agent\.original$|thread\.id$|error\.type$|spanbridge\.)/;
    for (const s of spans) for (const key of Object.keys(s.attributes)) expect(key).toMatch(allowed);
    expect(JSON.stringify(spans)).not.toMatch(/Bearer|sid=/);
  });

  it('nothing the agent emitted holds a secret: Collector data, stdout, stderr (debug), /metrics, web view', () => {
    // The grep covers the raw bytes each output wrote, not a parsed view of them.
    const outputs: Record<string, string> = {
      'collector (spans and metrics, as received)': readFileSync(collector.outputFile, 'utf8'),
      'agent stdout (--print-spans json)': agent.stdout(),
      // The log is the feature here: what the agent writes to it must hold no secret either.
      'agent stderr (--log-level debug)': agent.stderr(),
      '/metrics': metricsText,
      'web view /api/traces': webJson,
    };
    expect(outputs['collector (spans and metrics, as received)']).toContain('REDACTED');
    expect(outputs['agent stdout (--print-spans json)']).toContain('REDACTED');
    expect(metricsText).toContain('http_server_request_duration');
    expect(webJson).toContain('REDACTED');
    const found = Object.entries(outputs)
      .map(([where, text]) => ({ where, leaked: leaks(text) }))
      .filter((x) => x.leaked.length > 0);
    expect(found).toEqual([]);
  });

  it('the Prometheus endpoint and the web view answer on loopback only', async () => {
    const ip = nonLoopbackIPv4();
    if (ip === undefined) throw new Error('this host has no non-loopback IPv4 address to test against');
    expect(await connects('127.0.0.1', promPort)).toBe(true);
    expect(await connects(ip, promPort)).toBe(false);
    expect(await connects('127.0.0.1', webPort)).toBe(true);
    expect(await connects(ip, webPort)).toBe(false);
  });

  it('files the agent writes or pins are root-only', () => {
    const mode = (p: string): number => statSync(p).mode & 0o777;
    const pins = readdirSync('/sys/fs/bpf').filter((n) => n.startsWith('spanbridge_'));
    expect(pins.length).toBeGreaterThan(0);
    for (const n of pins) expect({ pin: n, mode: mode(`/sys/fs/bpf/${n}`).toString(8) }).toEqual({ pin: n, mode: '600' });
    expect(mode(agent.readyFile).toString(8)).toBe('600');
  });

  it('the redaction settings reach both tracers: query_keys from YAML replaces the list; --redaction-query all', async () => {
    await agent.stop(); // one agent at a time on these services
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spanbridge-redaction-'));
    const config = path.join(dir, 'redaction.yaml');
    writeFileSync(config, 'redaction:\n  query_keys: [Session]\n');
    const selection = ['--open-port', String(py.port), '--open-port', String(go.port), '--export', 'none'];
    const queryOf = async (a: AgentProcess, tag: string): Promise<{ go: string; py: string }> => {
      expect((await get(`${go.url}/hello?session=sess${TAG}&sig=visible&run=${tag}`)).status).toBe(200);
      return waitFor(`spans of run ${tag}`, () => {
        // Each agent prints only its own spans: the one /hello of this run per service.
        const q = (service: string) =>
          a.spans().find((s) => s.kind === 'SERVER' && s.resource['service.name'] === service && s.attributes['url.path'] === '/hello')?.attributes['url.query'];
        const goQ = q(go.service);
        const pyQ = q(py.service);
        return goQ !== undefined && pyQ !== undefined ? { go: String(goQ), py: String(pyQ) } : undefined;
      }, 30_000);
    };
    const replaced = await startAgent(['--config', config, ...selection], {}, 60_000);
    try {
      const q = await queryOf(replaced, 'keys');
      expect(q).toEqual({ go: 'session=REDACTED&sig=visible&run=keys', py: 'session=REDACTED&sig=visible&run=keys' });
    } finally {
      await replaced.stop();
    }
    const all = await startAgent([...selection, '--redaction-query', 'all'], {}, 60_000);
    try {
      const q = await queryOf(all, 'all');
      expect(q).toEqual({ go: 'session=REDACTED&sig=REDACTED&run=REDACTED', py: 'session=REDACTED&sig=REDACTED&run=REDACTED' });
      expect(all.stdout()).not.toContain(`sess${TAG}`);
    } finally {
      await all.stop();
    }
  });
});
