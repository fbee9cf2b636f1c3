/**
 * The spine, end to end on the real kernel: a Go net/http service nobody instrumented, the agent
 * (built CLI, as root), and the stock Collector writing what it receives to a file. Run on the
 * machine's Go and on Go 1.22 to prove struct offsets are resolved per version.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { buildGoApp, goVersionOf, type GoToolchain } from '../helpers/go-build';
import { startCollector, freePort, type FlatSpan, type RunningCollector } from './helpers/collector';
import { startAgent, startProcess, waitFor, waitForPort, type AgentProcess, type PrintedSpanLine, type Running } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';
import { heuristicRoute } from '../../src/spans/routes/heuristic';

interface Sent {
  readonly path: string;
  readonly method: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
  readonly expectStatus: number;
  readonly sleepMs: number;
  /** Expected to produce a span (false for unsampled parents). */
  readonly sampled: boolean;
  /** Expected to continue the given trace. */
  readonly continues: boolean;
}

function request(agent: http.Agent, port: number, s: Sent): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (s.traceparent) headers.traceparent = s.traceparent;
    if (s.tracestate) headers.tracestate = s.tracestate;
    const req = http.request({ host: '127.0.0.1', port, path: s.path, method: s.method, agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(s.method === 'POST' ? 'body' : undefined);
  });
}

function tp(traceId: string, spanId: string, flags = '01'): string {
  return `00-${traceId}-${spanId}-${flags}`;
}

const hex = (n: number): string => randomBytes(n).toString('hex');

function plan(): Sent[] {
  const sent: Sent[] = [];
  for (let i = 0; i < 5; i++) {
    sent.push({ path: `/items/${i}?sleep=30`, method: 'GET', expectStatus: 200, sleepMs: 30, sampled: true, continues: false });
    sent.push({
      path: `/items/tp${i}?sleep=30&q=${i}`,
      method: 'GET',
      traceparent: tp(hex(16), hex(8)),
      tracestate: i % 2 === 0 ? `vendor${i}=value${i},other=x` : undefined,
      expectStatus: 200,
      sleepMs: 30,
      sampled: true,
      continues: true,
    });
  }
  sent.push({ path: '/fail', method: 'GET', expectStatus: 500, sleepMs: 0, sampled: true, continues: false });
  sent.push({ path: '/items?sleep=5', method: 'POST', traceparent: tp(hex(16), hex(8)), expectStatus: 201, sleepMs: 5, sampled: true, continues: true });
  // Malformed (uppercase hex, wrong length, zero ids) -> treated as absent: a new root.
  sent.push({ path: '/bad-upper', method: 'GET', traceparent: tp(hex(16).toUpperCase(), hex(8)), expectStatus: 200, sleepMs: 0, sampled: true, continues: false });
  sent.push({ path: '/bad-short', method: 'GET', traceparent: `00-${hex(15)}-${hex(8)}-01`, expectStatus: 200, sleepMs: 0, sampled: true, continues: false });
  sent.push({ path: '/bad-zero', method: 'GET', traceparent: tp('0'.repeat(32), hex(8)), expectStatus: 200, sleepMs: 0, sampled: true, continues: false });
  // Not sampled upstream: honoured, no span recorded.
  sent.push({ path: '/unsampled', method: 'GET', traceparent: tp(hex(16), hex(8), '00'), expectStatus: 200, sleepMs: 0, sampled: false, continues: true });
  return sent;
}

function traceIdOf(s: Sent): string {
  return s.traceparent!.split('-')[1];
}

function parentIdOf(s: Sent): string {
  return s.traceparent!.split('-')[2];
}

// The machine's Go (offsets from DWARF), Go 1.22 (older layout, no Request.Pattern), and a
// stripped build (-s -w: no symbols, no DWARF: functions from .gopclntab, offsets from the table),
// on the default server path (go.server_path), and the machine's Go on the other one.
const VARIANTS: [GoToolchain, string, string][] = [
  ['local', '', 'default'],
  ['go1.22.12', '', 'default'],
  ['local', '-s -w', 'default'],
  ['local', '', 'uprobes'],
  ['local', '', 'syscall'],
];

describe.each(VARIANTS)('Go net/http server spans (Go toolchain %s, ldflags %p, go.server_path %s)', (toolchain, ldflags, serverPath) => {
  let collector: RunningCollector;
  let app: Running;
  let agent: AgentProcess;
  let appPort: number;
  let goVersion: string;
  let hasPattern: boolean;
  const sent = plan();

  beforeAll(async () => {
    requireRootAndBpf();
    const bin = buildGoApp('goserver', toolchain, ldflags);
    goVersion = goVersionOf(toolchain);
    const [, minor] = /^go1\.(\d+)/.exec(goVersion) ?? [];
    hasPattern = Number(minor) >= 23;
    collector = await startCollector();
    appPort = await freePort();
    app = startProcess(bin, ['-addr', `127.0.0.1:${appPort}`]);
    await waitForPort(appPort);
    agent = await startAgent(['--pid', String(app.pid), '--otlp-endpoint', collector.endpoint], serverPath === 'default' ? {} : { SPANBRIDGE_GO_SERVER_PATH: serverPath });
    // One keep-alive connection for everything: per-request context must not leak between
    // requests that share a connection (and so a goroutine).
    const ka = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (const s of sent) {
      expect(await request(ka, appPort, s)).toBe(s.expectStatus);
    }
    ka.destroy();
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    await app?.stop();
    await collector?.stop();
  });

  const expectedCount = (): number => sent.filter((s) => s.sampled).length;

  it('prints exactly one span per sampled request with the right fields', async () => {
    const spans = await waitFor('printed spans', () => agent.spans().length >= expectedCount() && agent.spans(), 20_000);
    await new Promise((r) => setTimeout(r, 500)); // nothing extra may arrive
    const printed = agent.spans();
    expect(printed).toHaveLength(expectedCount());
    expect(spans.length).toBe(expectedCount());
    const byPath = new Map<string, PrintedSpanLine[]>();
    for (const p of printed) {
      const k = String(p.attributes['url.path']);
      byPath.set(k, [...(byPath.get(k) ?? []), p]);
    }
    for (const s of sent) {
      const [path, query] = s.path.split('?');
      const matches = byPath.get(path) ?? [];
      if (!s.sampled) {
        expect(matches).toHaveLength(0);
        continue;
      }
      expect(matches).toHaveLength(1);
      const span = matches[0];
      expect(span.kind).toBe('SERVER');
      expect(span.attributes['http.request.method']).toBe(s.method);
      expect(span.attributes['http.response.status_code']).toBe(s.expectStatus);
      expect(span.attributes['url.scheme']).toBe('http');
      if (query) expect(span.attributes['url.query']).toBe(query);
      else expect(span.attributes['url.query']).toBeUndefined();
      expect(span.attributes['server.port']).toBe(appPort);
      expect(span.attributes['network.peer.address']).toBe('127.0.0.1');
      expect(span.attributes['network.protocol.version']).toBe('1.1');
      const route = path.startsWith('/items/') ? '/items/{id}' : path === '/items' ? '/items' : path === '/fail' ? '/fail' : '/';
      if (hasPattern) {
        expect(span.attributes['http.route']).toBe(route);
        expect(span.attributes['spanbridge.route.source']).toBe('framework');
        expect(span.name).toBe(`${s.method} ${route}`);
      } else {
        // No Request.Pattern before Go 1.23: the heuristic route (src/spans/routes).
        const guessed = heuristicRoute(path);
        expect(span.attributes['http.route']).toBe(guessed);
        expect(span.attributes['spanbridge.route.source']).toBe('heuristic');
        expect(span.name).toBe(`${s.method} ${guessed}`);
      }
      expect(span.status.code).toBe(s.expectStatus >= 500 ? 'ERROR' : 'UNSET');
      if (s.expectStatus >= 500) expect(span.attributes['error.type']).toBe('500');
      expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(span.traceId).not.toBe('0'.repeat(32));
      expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
      expect(span.spanId).not.toBe('0'.repeat(16));
      if (s.continues) {
        expect(span.traceId).toBe(traceIdOf(s));
        expect(span.parentSpanId).toBe(parentIdOf(s));
        expect(span.traceState).toBe(s.tracestate ?? '');
      } else {
        expect(span.parentSpanId).toBe('');
        if (s.traceparent) expect(span.traceId).not.toBe(traceIdOf(s).toLowerCase());
      }
      const durationNs = BigInt(span.endTimeUnixNano) - BigInt(span.startTimeUnixNano);
      expect(durationNs).toBeGreaterThanOrEqual(BigInt(s.sleepMs) * 1_000_000n);
      expect(durationNs).toBeLessThan(10_000_000_000n);
      const startMs = Number(BigInt(span.startTimeUnixNano) / 1_000_000n);
      expect(Math.abs(startMs - Date.now())).toBeLessThan(120_000);
      expect(span.resource['service.name']).toBe('goserver');
      expect(span.resource['process.pid']).toBe(app.pid);
      expect(span.resource['process.runtime.version']).toBe(goVersion);
      expect(span.resource['telemetry.sdk.name']).toBe('spanbridge');
    }
    // Roots get distinct trace ids and all span ids are distinct.
    const roots = printed.filter((p) => p.parentSpanId === '');
    expect(new Set(roots.map((p) => p.traceId)).size).toBe(roots.length);
    expect(new Set(printed.map((p) => p.spanId)).size).toBe(printed.length);
  });

  it('delivers the same spans to the stock Collector over OTLP', async () => {
    const fromCollector: FlatSpan[] = await collector.waitForSpans((s) => s.length >= expectedCount(), 30_000);
    expect(fromCollector).toHaveLength(expectedCount());
    const printed = new Map(agent.spans().map((p) => [p.spanId, p]));
    for (const c of fromCollector) {
      const p = printed.get(c.spanId);
      expect(p).toBeDefined();
      expect(c.traceId).toBe(p!.traceId);
      expect(c.parentSpanId).toBe(p!.parentSpanId);
      expect(c.name).toBe(p!.name);
      expect(c.kind).toBe('SERVER');
      expect(c.startTimeUnixNano).toBe(p!.startTimeUnixNano);
      expect(c.endTimeUnixNano).toBe(p!.endTimeUnixNano);
      expect(c.status.code).toBe(p!.status.code);
      expect(c.traceState).toBe(p!.traceState);
      expect(c.attributes['url.path']).toBe(p!.attributes['url.path']);
      expect(c.attributes['http.response.status_code']).toBe(p!.attributes['http.response.status_code']);
      expect(c.resource['service.name']).toBe('goserver');
      expect(c.resource['process.pid']).toBe(app.pid);
    }
  });
});
