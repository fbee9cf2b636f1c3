/**
 * Smoke test of the main job (`make run-local` runs scripts/run-local.sh after `make setup`):
 * it starts the stock Collector, the Go demo services, traffic and the agent; spans of both
 * services reach the Collector; and when it stops nothing it started is left running.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, flattenTraceRequest, type JsonValue } from './helpers/collector';
import { REPO_ROOT } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';

describe('make run-local (scripts/run-local.sh)', () => {
  it('shows spans of both demo services and leaves nothing running', async () => {
    requireRootAndBpf();
    const [otlp, grpc, prom, fe, be] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    const r = spawnSync('bash', [path.join(REPO_ROOT, 'scripts/run-local.sh')], {
      env: {
        ...process.env,
        SPANBRIDGE_RUN_SECONDS: '10',
        SPANBRIDGE_OTLP_HTTP_PORT: String(otlp),
        SPANBRIDGE_OTLP_GRPC_PORT: String(grpc),
        SPANBRIDGE_PROMETHEUS_PORT: String(prom),
        SPANBRIDGE_SCRAPE_INTERVAL: '2s',
        SPANBRIDGE_DEMO_FRONTEND_PORT: String(fe),
        SPANBRIDGE_DEMO_BACKEND_PORT: String(be),
      },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/attached pid \d+ \(.*demo-frontend/);
    expect(r.stderr).toMatch(/attached pid \d+ \(.*demo-backend/);
    expect(r.stdout).toMatch(/\[collector\] GET \/shop\/\{item\}/);
    expect(r.stderr).toMatch(/stopped: [1-9]\d* spans exported, 0 dropped/);
    const lines = readFileSync(path.join(REPO_ROOT, 'build/run-local/telemetry.jsonl'), 'utf8').split('\n').filter(Boolean);
    // RED metrics reached the Collector (pushed over OTLP and scraped from the agent's endpoint).
    expect(lines.some((l) => l.includes('"resourceMetrics"') && l.includes('http.server.request.duration'))).toBe(true);
    expect(lines.some((l) => l.includes('"resourceMetrics"') && l.includes('http_server_request_duration'))).toBe(true);
    const spans = lines.flatMap((l) => flattenTraceRequest(JSON.parse(l) as JsonValue));
    const services = new Set(spans.map((s) => s.resource['service.name']));
    expect(services).toEqual(new Set(['demo-frontend', 'demo-backend']));
    expect(spans.some((s) => s.name === 'GET /price/{item}' && s.status.code === 'ERROR')).toBe(true);
    const left = execFileSync('sh', ['-c', `pgrep -f 'build/run-local/bin/dem[o]-|collector-config/run-local.yam[l]' || true`], { encoding: 'utf8' });
    expect(left.trim()).toBe('');
  });
});
