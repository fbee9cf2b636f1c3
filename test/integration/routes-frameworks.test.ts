/**
 * Routes on third-party frameworks with no tracing code (real kernel, real Collector, the built
 * agent): requests to many distinct ids become a handful of routes in the Collector's spans and
 * metrics and on /metrics; a declared pattern beats the heuristic; Go's ServeMux pattern beats
 * both; and 100,000 random paths never create more than routes.max_per_service routes (default
 * 1,000) per service, in span names, on /metrics or in OTLP, with the agent's memory bounded.
 */
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort, startCollector, type FlatMetricPoint, type FlatSpan, type RunningCollector } from './helpers/collector';
import { startFramework, type Framework, type FrameworkService } from './helpers/frameworks';
import { AGENT_CLI, startAgent, startProcess, waitFor, type AgentProcess, type Running } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';

/** GETs `paths` over `concurrency` keep-alive connections; returns how many got an answer. */
async function getAll(port: number, paths: readonly string[], concurrency = 16): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let answered = 0;
  const worker = async (): Promise<void> => {
    while (next < paths.length) {
      const p = paths[next++];
      await new Promise<void>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: p, agent }, (res) => {
          res.resume();
          res.on('end', () => {
            answered++;
            resolve();
          });
        });
        req.on('error', () => resolve());
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return answered;
}

async function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** Prometheus label sets of `metric` lines (e.g. `http_server_request_duration_seconds_count`). */
function series(text: string, metric: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const labels: Record<string, string> = {};
    for (const m of line.slice(metric.length + 1, line.lastIndexOf('}')).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
    out.push(labels);
  }
  return out;
}

function metricValue(text: string, metric: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

const RED_COUNT = 'http_server_request_duration_seconds_count';

function writeConfig(yaml: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'spanbridge-routes-')), 'spanbridge.yaml');
  writeFileSync(file, yaml);
  return file;
}

describe('routes on third-party frameworks', () => {
  // Each framework routes /items/<n> itself (Flask <int:item>, FastAPI {item}, Express :item,
  // Spring @PathVariable); the agent sees only bytes on sockets.
  const HEURISTIC: Framework[] = ['flask-gunicorn', 'fastapi-uvicorn', 'spring'];
  const DECLARED: Framework = 'express';
  // A Go httputil.ReverseProxy behind a ServeMux "/" (forwarding to Flask): Go's Request.Pattern
  // is the route, even though its selection declares a pattern for /items/{item}.
  const GO: Framework = 'go-proxy';
  const services = new Map<Framework, FrameworkService>();
  let collector: RunningCollector;
  let agent: AgentProcess;
  let promPort: number;
  const IDS = 150;
  const expected = (f: Framework): string[] => (f === GO ? ['/'] : f === DECLARED ? ['/hello', '/items/{item}'] : ['/hello', '/items/{id}']);

  beforeAll(async () => {
    requireRootAndBpf();
    collector = await startCollector();
    const started = await Promise.all([...HEURISTIC, DECLARED].map((f) => startFramework(f, `routes-${f}-${randomBytes(3).toString('hex')}`)));
    for (const s of started) services.set(s.framework, s);
    const upstream = services.get('flask-gunicorn')!.url;
    services.set(GO, await startFramework(GO, `routes-go-proxy-${randomBytes(3).toString('hex')}`, { upstream }));
    promPort = await freePort();
    const express = services.get(DECLARED)!;
    const config = writeConfig(
      [
        'selections:',
        ...HEURISTIC.map((f) => `  - open_port: ${services.get(f)!.port}`),
        `  - open_port: ${express.port}`,
        '    routes:',
        "      patterns: ['/items/{item}', '/items/{item}/parts/{part}']",
        `  - open_port: ${services.get(GO)!.port}`,
        '    routes:',
        "      patterns: ['/items/{item}']",
        '',
      ].join('\n'),
    );
    agent = await startAgent(
      ['--config', config, '--otlp-endpoint', collector.endpoint, '--prometheus-port', String(promPort), '--inject-headers', 'off'],
      { OTEL_METRIC_EXPORT_INTERVAL: '1000', OTEL_BSP_SCHEDULE_DELAY: '200' },
      60_000,
    );
    for (const s of services.values()) {
      const paths = [...Array.from({ length: IDS }, () => `/items/${Math.floor(Math.random() * 1e9)}`), ...Array.from({ length: 5 }, () => '/hello')];
      expect(await getAll(s.port, paths, 4)).toBe(paths.length);
    }
  }, 300_000);

  afterAll(async () => {
    if (agent && agent.proc.exitCode === null) await agent.stop();
    for (const s of services.values()) await s.proc.stop();
    await collector?.stop();
  });

  const serverSpans = (spans: FlatSpan[], service: string): FlatSpan[] => spans.filter((s) => s.kind === 'SERVER' && s.resource['service.name'] === service);

  it('many distinct ids give a handful of routes in the Collector spans: heuristic, declared beats it', async () => {
    const all = await collector.waitForSpans(
      (spans) => [...services.values()].every((s) => serverSpans(spans, s.service).length >= IDS + 5),
      90_000,
    );
    for (const [framework, s] of services) {
      const spans = serverSpans(all, s.service);
      const names = new Set(spans.map((x) => x.name));
      const sources = new Set(spans.filter((x) => String(x.attributes['url.path']).startsWith('/items/')).map((x) => x.attributes['spanbridge.route.source']));
      if (framework === GO) {
        expect([framework, [...names].sort()]).toEqual([framework, ['GET /']]);
        expect([framework, [...sources]]).toEqual([framework, ['framework']]);
        continue;
      }
      if (framework === DECLARED) {
        expect([framework, [...names].sort()]).toEqual([framework, ['GET /hello', 'GET /items/{item}']]);
        expect([framework, [...sources]]).toEqual([framework, ['declared']]);
      } else {
        expect([framework, [...names].sort()]).toEqual([framework, ['GET /hello', 'GET /items/{id}']]);
        expect([framework, [...sources]]).toEqual([framework, ['heuristic']]);
      }
      const item = spans.find((x) => String(x.attributes['url.path']).startsWith('/items/'))!;
      expect(item.attributes['http.route']).toBe(framework === DECLARED ? '/items/{item}' : '/items/{id}');
      // The raw path stays on the span, only the name and route are grouped.
      expect(item.attributes['url.path']).toMatch(/^\/items\/\d+$/);
    }
  });

  it('... and on /metrics and in the OTLP metrics: two routes per service', async () => {
    const text = await waitFor(
      'RED series on /metrics',
      async () => {
        const t = await scrape(promPort);
        return [...services.values()].every((s) => series(t, RED_COUNT).some((l) => l.service_name === s.service)) ? t : undefined;
      },
      30_000,
    );
    for (const [framework, s] of services) {
      const routes = new Set(series(text, RED_COUNT).filter((l) => l.service_name === s.service).map((l) => l.http_route));
      expect([framework, [...routes].sort()]).toEqual([framework, expected(framework)]);
    }
    const otlpRoutes = (ps: FlatMetricPoint[], service: string): string[] =>
      [...new Set(ps.filter((p) => p.name === 'http.server.request.duration' && p.resource['service.name'] === service).map((p) => String(p.attributes['http.route'])))].sort();
    // Cumulative points, pushed every second: wait for an export made after the last request.
    const points = await collector.waitForMetrics(
      (ps) => [...services].every(([f, s]) => expected(f).every((r) => otlpRoutes(ps, s.service).includes(r))),
      60_000,
    );
    for (const [framework, s] of services) {
      expect([framework, otlpRoutes(points, s.service)]).toEqual([framework, expected(framework)]);
    }
  });

  it('the traced-processes report says how each process gets its routes', async () => {
    const procs = await agent.processes();
    const routesOf = async (port: number): Promise<string | undefined> => procs.find((p) => p.reason === `port ${port}`)?.routes;
    expect(await routesOf(services.get(DECLARED)!.port)).toBe('2 declared patterns > heuristic (ids -> {id})');
    for (const f of HEURISTIC) expect(await routesOf(services.get(f)!.port)).toBe('heuristic (ids -> {id})');
    expect(await routesOf(services.get(GO)!.port)).toMatch(/^Go ServeMux pattern \(Request\.Pattern\) > 1 declared pattern > heuristic/);
  });
});

describe('route limit under 100,000 random paths', () => {
  const PATHS = 100_000;
  const LIMIT = 1000;
  let collector: RunningCollector;
  let svc: FrameworkService;
  let agent: Running;
  let promPort: number;
  const rss: number[] = [];

  const agentRssMb = (): number => {
    const status = readFileSync(`/proc/${agent.proc.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
  };

  beforeAll(async () => {
    requireRootAndBpf();
    collector = await startCollector();
    svc = await startFramework('express', `routes-scan-${randomBytes(3).toString('hex')}`);
    promPort = await freePort();
    const ready = path.join(mkdtempSync(path.join(os.tmpdir(), 'spanbridge-routes-')), 'ready');
    // No --print-spans: 100,000 JSON lines would only load the test.
    agent = startProcess(
      process.execPath,
      [AGENT_CLI, 'run', '--pid', String(svc.proc.proc.pid), '--otlp-endpoint', collector.endpoint, '--prometheus-port', String(promPort), '--inject-headers', 'off', '--ready-file', ready],
      { OTEL_METRIC_EXPORT_INTERVAL: '2000', OTEL_BSP_SCHEDULE_DELAY: '200', OTEL_BSP_MAX_QUEUE_SIZE: '50000', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2048' },
    );
    await waitFor('agent ready', () => {
      if (agent.proc.exitCode !== null) throw new Error(`agent exited: ${agent.stderr()}`);
      return existsSync(ready);
    }, 60_000);
    // Paths the heuristic cannot fold (random words, as a scanner sends), so only the limit holds.
    const word = (): string => Array.from(randomBytes(10), (b) => String.fromCharCode(97 + (b % 26))).join('');
    const batch = PATHS / 5;
    for (let i = 0; i < 5; i++) {
      const paths = Array.from({ length: batch }, () => `/${word()}/${word()}`);
      expect(await getAll(svc.port, paths, 32)).toBe(paths.length);
      rss.push(agentRssMb());
    }
  }, 600_000);

  afterAll(async () => {
    if (agent && agent.proc.exitCode === null) await agent.stop();
    await svc?.proc.stop();
    await collector?.stop();
  });

  it('/metrics: at most the limit of routes (plus the overflow route), overflow counted', async () => {
    // Wait until (nearly) every span has been through the route stage.
    const text = await waitFor(
      'spans routed',
      async () => {
        const t = await scrape(promPort);
        const n = series(t, RED_COUNT).filter((l) => l.service_name === svc.service).reduce((sum, l) => sum + metricValue(t, RED_COUNT, l), 0);
        return n >= PATHS * 0.95 ? t : undefined;
      },
      120_000,
      1000,
    );
    const red = series(text, RED_COUNT).filter((l) => l.service_name === svc.service);
    const routes = new Set(red.map((l) => l.http_route));
    // eslint-disable-next-line no-console
    console.log(`route limit: ${routes.size} routes, ${red.length} RED series on /metrics for ${PATHS} random paths; agent RSS MB after each 20k: ${rss.map((r) => r.toFixed(0)).join(', ')}`);
    expect(routes.size).toBe(LIMIT + 1);
    expect(routes.has('(overflow)')).toBe(true);
    // One status (404) and method: one series per route; never the store's own overflow series.
    expect(red.length).toBe(LIMIT + 1);
    expect(red.some((l) => l.otel_metric_overflow === 'true')).toBe(false);
    const overflow = metricValue(text, 'spanbridge_routes_overflow_total', { service: svc.service });
    expect(overflow).toBeGreaterThanOrEqual(PATHS * 0.95 - LIMIT);
    expect(metricValue(text, 'spanbridge_routes_distinct', { service: svc.service })).toBe(LIMIT);
    expect(metricValue(text, RED_COUNT, { service_name: svc.service, http_route: '(overflow)' })).toBe(overflow);
  });

  it('OTLP: span names and metric routes bounded the same way; the overflow is logged once', async () => {
    const points = await collector.waitForMetrics(
      (ps) => ps.filter((p) => p.name === 'http.server.request.duration' && p.resource['service.name'] === svc.service).length >= LIMIT + 1,
      60_000,
    );
    const routes = new Set(points.filter((p) => p.name === 'http.server.request.duration' && p.resource['service.name'] === svc.service).map((p) => p.attributes['http.route']));
    expect(routes.size).toBe(LIMIT + 1);
    const spans = await collector.waitForSpans((s) => s.filter((x) => x.resource['service.name'] === svc.service).length >= PATHS * 0.5, 120_000);
    const mine = spans.filter((x) => x.resource['service.name'] === svc.service);
    const names = new Set(mine.map((x) => x.name));
    // eslint-disable-next-line no-console
    console.log(`route limit: ${mine.length} spans in the Collector, ${names.size} distinct span names`);
    expect(names.size).toBeLessThanOrEqual(LIMIT + 1);
    expect(names.has('GET (overflow)')).toBe(true);
    expect(mine.filter((x) => x.name === 'GET (overflow)').every((x) => x.attributes['spanbridge.route.source'] === 'overflow')).toBe(true);
    // The log line is the feature: a user-facing warning, given once per service.
    expect(agent.stderr().match(/reached 1000 distinct routes/g) ?? []).toHaveLength(1);
  });

  it("the agent's memory stays bounded while random paths keep coming", () => {
    // Routes, RED series and span names are bounded, so the last 80,000 paths add no state: the
    // resident size after them stays near the size after the first 20,000 (unbounded series would
    // add ~1 KiB per path: ~80 MB).
    expect(rss[rss.length - 1] - rss[0]).toBeLessThan(64);
  });
});

describe('doctor --config: the route plan', () => {
  it('prints how routes are obtained, per selection, from the file run would use', () => {
    const config = writeConfig(
      [
        'selections:',
        '  - exe: shop-api',
        '    routes: {patterns: ["/carts/{cart}"], unmatched: path}',
        'routes:',
        '  patterns: ["/users/{id}", "/users/me"]',
        '  max_per_service: 300',
        '',
      ].join('\n'),
    );
    const text = execFileSync(process.execPath, [AGENT_CLI, 'doctor', '--config', config], { encoding: 'utf8', timeout: 60_000 });
    expect(text).toContain('Go servers          Go ServeMux pattern (Request.Pattern, Go >= 1.23) first, then as below');
    expect(text).toContain('every process       2 declared patterns > heuristic (ids -> {id})');
    expect(text).toContain('selection exe shop-api: 1 declared pattern > the path itself');
    expect(text).toContain('limit               300 distinct routes per service; then http.route=(overflow)');
    const json = JSON.parse(execFileSync(process.execPath, [AGENT_CLI, 'doctor', '--json', '--config', config], { encoding: 'utf8', timeout: 60_000 }));
    expect(json.routes).toMatchObject({ patterns: ['/users/{id}', '/users/me'], maxPerService: 300, selections: [{ selection: 'exe shop-api', patterns: ['/carts/{cart}'] }] });
    // A bad pattern stops doctor too, naming the key.
    const bad = writeConfig('routes: {patterns: ["/users/{id"]}\n');
    expect(() => execFileSync(process.execPath, [AGENT_CLI, 'doctor', '--config', bad], { stdio: 'pipe' })).toThrow(/routes\.patterns\[0\]: "\/users\/\{id": segment/);
  });
});
