import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PrintedSpan } from '../../../src/spans/print-json';
import { TraceBuffer } from '../../../src/spans/trace-tree-buffer';
import { printedToSpan } from '../../../src/spans/trace-tree';
import { PAGE_HTML } from '../../../src/web/page';
import { startWebServer, type WebServer } from '../../../src/web/server';
import type { WebTrace } from '../../../src/web/traces-json';

const RECORDED = readFileSync(join(__dirname, '../../fixtures/demo-spans.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => printedToSpan(JSON.parse(l) as PrintedSpan));

describe('web server', () => {
  let web: WebServer;
  const buffer = new TraceBuffer({ quietMs: 1000, maxTraces: 10 });
  beforeAll(async () => {
    for (const s of RECORDED) buffer.add(s);
    buffer.flush();
    web = await startWebServer(buffer, 0);
  });
  afterAll(() => web.close());

  it('serves recent traces as JSON, newest first, spans in tree order on the trace time axis', async () => {
    const r = await fetch(`${web.url}api/traces`);
    expect(r.headers.get('content-type')).toBe('application/json');
    const { traces } = (await r.json()) as { traces: WebTrace[] };
    expect(traces).toHaveLength(3);
    const err = traces.find((t) => t.error)!;
    expect(err.rootName).toBe('demo-frontend: GET /shop/{item}');
    expect(err.services).toEqual(['demo-frontend', 'demo-backend']);
    expect(err.spans.map((s) => [s.depth, s.service, s.kind, s.status])).toEqual([
      [0, 'demo-frontend', 'SERVER', '502 ERROR'],
      [1, 'demo-frontend', 'CLIENT', '500 ERROR'],
      [2, 'demo-backend', 'SERVER', '500 ERROR'],
      [1, 'demo-frontend', 'CLIENT', '200'],
      [2, 'demo-backend', 'SERVER', '200'],
    ]);
    expect(err.spans[0].offsetMs).toBe(0);
    expect(err.spans[0].durationMs).toBeCloseTo(err.durationMs, 6);
    for (const s of err.spans) expect(s.offsetMs + s.durationMs).toBeLessThanOrEqual(err.durationMs + 1e-6);
    expect(((await (await fetch(`${web.url}api/traces?limit=1`)).json()) as { traces: unknown[] }).traces).toHaveLength(1);
  });

  it('status, the page, 404 and 405', async () => {
    expect(await (await fetch(`${web.url}api/status`)).json()).toMatchObject({ openTraces: 0, evictions: 0 });
    const page = await fetch(web.url);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toBe(PAGE_HTML);
    expect(await (await fetch(`${web.url}api/processes`)).json()).toEqual({ processes: [] });
    expect((await fetch(`${web.url}nope`)).status).toBe(404);
    expect((await fetch(`${web.url}api/traces`, { method: 'POST' })).status).toBe(405);
  });

  it('listens on loopback only; a taken port is a config error naming web.port', async () => {
    expect(web.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    await expect(startWebServer(buffer, web.port)).rejects.toThrow(/web\.port: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
  });

  it('the page loads nothing from elsewhere and inserts data as text only', () => {
    expect(PAGE_HTML).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\//);
    expect(PAGE_HTML).not.toMatch(/innerHTML/);
  });
});
