/// <reference lib="dom" />
/**
 * The web page in headless Chromium (Debian's `chromium`, driven by playwright-core):
 *  1. recorded demo spans served by the page's own server: the waterfall has one row per span
 *     with the right services, errors marked, bars inside their track; screenshot checked.
 *  2. end to end: the agent (--web-port, service names from a YAML config's selections) traces
 *     the Go demo frontend -> backend; the page shows their connected traces.
 * Screenshots are saved under build/web/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { PrintedSpan } from '../../src/spans/print-json';
import { TraceBuffer } from '../../src/spans/trace-tree-buffer';
import { printedToSpan } from '../../src/spans/trace-tree';
import { startWebServer } from '../../src/web/server';
import { freePort } from './helpers/collector';
import { REPO_ROOT, startAgent, startProcess, waitFor, waitForPort, type Running } from './helpers/processes';
import { requireRootAndBpf } from './helpers/privileges';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.join(REPO_ROOT, 'build', 'web');

async function launch(): Promise<{ context: BrowserContext; page: Page; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: make setup installs Debian's chromium`);
  const profile = mkdtempSync(path.join(os.tmpdir(), 'spanbridge-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** PNG width and height from the IHDR chunk. */
function pngSize(file: string): { width: number; height: number } {
  const b = readFileSync(file);
  expect(b.subarray(1, 4).toString()).toBe('PNG');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

async function rows(page: Page): Promise<{ service: string; cls: string; bar: { left: number; width: number; trackW: number } }[]> {
  return page.$$eval('tr.span-row', (trs) =>
    trs.map((tr) => {
      const fill = tr.querySelector('.fill') as HTMLElement;
      const track = tr.querySelector('.track') as HTMLElement;
      const f = fill.getBoundingClientRect();
      const t = track.getBoundingClientRect();
      return { service: (tr as HTMLElement).dataset.service ?? '', cls: tr.className, bar: { left: f.left - t.left, width: f.width, trackW: t.width } };
    }),
  );
}

describe('web page in headless Chromium', () => {
  it('draws recorded demo traces as a waterfall', async () => {
    const buffer = new TraceBuffer({ quietMs: 1000, maxTraces: 10 });
    const recorded = readFileSync(path.join(REPO_ROOT, 'test/fixtures/demo-spans.jsonl'), 'utf8').split('\n').filter(Boolean);
    for (const l of recorded) buffer.add(printedToSpan(JSON.parse(l) as PrintedSpan));
    buffer.flush();
    const web = await startWebServer(buffer, 0);
    const b = await launch();
    try {
      await b.page.goto(web.url);
      await b.page.waitForSelector('body[data-rendered="3"]', { timeout: 30_000 });
      const r = await rows(b.page);
      expect(r).toHaveLength(15);
      expect(r.filter((x) => x.service === 'demo-frontend')).toHaveLength(9);
      expect(r.filter((x) => x.service === 'demo-backend')).toHaveLength(6);
      expect(r.filter((x) => x.cls.includes('err'))).toHaveLength(3);
      for (const x of r) {
        expect(x.bar.left).toBeGreaterThanOrEqual(-0.5);
        expect(x.bar.left + x.bar.width).toBeLessThanOrEqual(x.bar.trackW + 2.5);
      }
      // each trace's root bar spans its whole track
      const roots = r.filter((_, i) => i % 5 === 0);
      for (const x of roots) expect(x.bar.width).toBeGreaterThan(x.bar.trackW - 2);
      expect(await b.page.$$eval('section.trace.error', (s) => s.length)).toBe(1);
      expect(await b.page.textContent('#status')).toMatch(/^3 recent traces/);
      mkdirSync(SHOTS, { recursive: true });
      const shot = path.join(SHOTS, 'recorded-traces.png');
      await b.page.screenshot({ path: shot, fullPage: true });
      const size = pngSize(shot);
      expect(size.width).toBe(1280);
      expect(size.height).toBeGreaterThan(300);
    } finally {
      await b.close();
      await web.close();
    }
  });

  it('end to end: the agent serves the Go demo frontend -> backend traces, named by the config file', async () => {
    requireRootAndBpf();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spanbridge-web-'));
    const tag = `${process.pid}`;
    for (const app of ['frontend', 'backend']) {
      execFileSync('go', ['build', '-o', path.join(dir, `webtest-${app}-${tag}`), '.'], {
        cwd: path.join(REPO_ROOT, 'demo', app),
        env: { ...process.env, CGO_ENABLED: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    }
    const [fe, be, webPort] = [await freePort(), await freePort(), await freePort()];
    const config = path.join(dir, 'spanbridge.yaml');
    writeFileSync(
      config,
      [
        'selections:',
        `  - exe: 'webtest-frontend-${tag}'`,
        '    service_name: shop-frontend',
        `  - exe: '**/webtest-backend-${tag}'`,
        '    service_name: shop-backend',
        'export: none',
        'trace_view:',
        '  quiet_ms: 500',
        'web:',
        `  port: ${webPort}`,
        '',
      ].join('\n'),
    );
    const procs: Running[] = [];
    const b = await launch();
    let agent: Running | undefined;
    try {
      procs.push(startProcess(path.join(dir, `webtest-backend-${tag}`), [], { BACKEND_ADDR: `127.0.0.1:${be}` }));
      procs.push(startProcess(path.join(dir, `webtest-frontend-${tag}`), [], { FRONTEND_ADDR: `127.0.0.1:${fe}`, BACKEND_URL: `http://127.0.0.1:${be}` }));
      await waitForPort(fe);
      await waitForPort(be);
      agent = await startAgent(['--config', config], {}, 90_000);
      await waitForPort(webPort);
      for (const item of ['apple', 'durian', 'unicorn', 'apple']) await fetch(`http://127.0.0.1:${fe}/shop/${item}`).then((r) => r.text());
      await b.page.goto(`http://127.0.0.1:${webPort}/`);
      // 4 requests -> 4 traces of frontend SERVER + 2x(CLIENT -> backend SERVER), once finished
      await b.page.waitForFunction(() => Number(document.body.dataset.rendered ?? 0) >= 4 && document.querySelectorAll('tr.span-row').length >= 20, undefined, {
        timeout: 60_000,
      });
      const r = await rows(b.page);
      expect(new Set(r.map((x) => x.service))).toEqual(new Set(['shop-frontend', 'shop-backend']));
      // connected: each trace holds both services
      const perTrace = await b.page.$$eval('section.trace', (ss) => ss.map((s) => new Set(Array.from(s.querySelectorAll('tr.span-row'), (tr) => (tr as HTMLElement).dataset.service)).size));
      expect(perTrace.filter((n) => n === 2).length).toBeGreaterThanOrEqual(4);
      expect(r.filter((x) => x.cls.includes('err')).length).toBeGreaterThanOrEqual(3); // the unicorn request fails
      // what is traced: the same table the agent logs
      const { processes } = (await (await fetch(`http://127.0.0.1:${webPort}/api/processes`)).json()) as {
        processes: { service: string; tracer: string; probes: number | null }[];
      };
      expect(processes.map((p) => p.service).sort()).toEqual(['shop-backend', 'shop-frontend']);
      for (const p of processes) {
        expect(p.tracer).toMatch(/^Go uprobes \(go1\.\d+/);
        expect(p.probes).toBeGreaterThan(0);
      }
      expect((await b.page.$$eval('#procs .proc', (ps) => ps.map((p) => (p as HTMLElement).dataset.service))).sort()).toEqual(['shop-backend', 'shop-frontend']);
      // The log line is the feature: the agent logs the table of traced processes for the user.
      await waitFor('the attachment table in the log', () => /traced processes: 2\n.*PID +SERVICE +TRACER +PROBES/.test(agent!.stderr()), 10_000);
      mkdirSync(SHOTS, { recursive: true });
      const shot = path.join(SHOTS, 'live-demo.png');
      await b.page.screenshot({ path: shot, fullPage: true });
      expect(pngSize(shot).width).toBe(1280);
    } finally {
      await b.close();
      await agent?.stop('SIGINT');
      for (const p of procs) await p.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
