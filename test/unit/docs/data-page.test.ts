/**
 * docs/data.md ("data the agent reads and exports") is true to the code: spans built by every
 * tracer's span builder (Go server, Go client, syscall server and client) and the route stage
 * carry exactly the attributes its span table lists; the resource builder exactly those of its
 * resource table; and its kept-header and default query-key lists are the code's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GoHttpClientRecord } from '../../../src/events/go-http-client';
import type { GoHttpServerRecord } from '../../../src/events/go-http-server';
import { SelfMetrics } from '../../../src/metrics/counters';
import { goClientSpan } from '../../../src/spans/go-client-span';
import { goServerSpan } from '../../../src/spans/go-server-span';
import { processResource } from '../../../src/spans/resource';
import { DEFAULT_ROUTES } from '../../../src/spans/routes/route-policy';
import { RouteStage } from '../../../src/spans/routes/route-stage';
import type { Span } from '../../../src/spans/span';
import { KEPT_HEADERS } from '../../../src/spans/sys-http-parse';
import { sysHttpSpan, type ExchangeView } from '../../../src/spans/sys-http-span';
import { SpanIds } from '../../../src/spans/span-ids';
import { DEFAULT_QUERY_KEYS } from '../../../src/spans/url-redaction';
import { FixedClock } from '../../../src/time/clock';
import { goClientFields, goServerFields } from '../../fixtures/records';

const doc = readFileSync(join(__dirname, '../../../docs/data.md'), 'utf8');

/** Backticked names in the first column of the table under `heading`. */
function tableKeys(heading: string): Set<string> {
  const start = doc.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`docs/data.md has no section '## ${heading}'`);
  const end = doc.indexOf('\n## ', start + 1);
  const keys = new Set<string>();
  for (const line of doc.slice(start, end < 0 ? undefined : end).split('\n')) {
    const first = /^\| ([^|]+) \|/.exec(line)?.[1] ?? '';
    for (const m of first.matchAll(/`([a-z_.]+)`/g)) keys.add(m[1]);
  }
  return keys;
}

const clock = new FixedClock(0n);
const resource = { attributes: { 'service.name': 'svc' } };

const goServer = (over: Partial<GoHttpServerRecord>): GoHttpServerRecord =>
  goServerFields({ goid: 1n, startNs: 1n, endNs: 2n, status: 500, path: '/items/1', host: 'h:80', remoteAddr: '10.0.0.1:5555', userAgent: 'ua', requestContentLength: 3n, responseSize: 4n, ...over });

const goClient = (over: Partial<GoHttpClientRecord>): GoHttpClientRecord =>
  goClientFields({ startNs: 1n, endNs: 2n, parentSpanId: '', status: 404, host: 'b:81', path: '/p', ...over });

const exchange = (over: Partial<ExchangeView>): ExchangeView => ({
  role: 'server', ids: SpanIds.fromHex('a'.repeat(32), 'b'.repeat(16), ''), traceFlags: 1, link: 'traceparent',
  inheritedTraceState: '', request: { method: 'BREW', target: '/pot?x=1', minor: 1 },
  requestHeaders: new Map([['host', 'h:80'], ['user-agent', 'ua']]), requestHeadComplete: false, status: 0,
  responseComplete: false, endReason: 'closed', startNs: 1n, endNs: 2n, localAddress: '10.0.0.2', localPort: 80,
  remoteAddress: '10.0.0.1', remotePort: 5555, tid: 9, ...over,
});

function allSpans(): Span[] {
  const routes = new RouteStage(DEFAULT_ROUTES, new SelfMetrics());
  const spans = [
    goServerSpan(goServer({}), resource, clock),
    goServerSpan(goServer({ method: 'BREW', pattern: '' }), resource, clock),
    goClientSpan(goClient({}), resource, clock),
    goClientSpan(goClient({ transportError: true, method: 'BREW' }), resource, clock),
    goClientSpan(goClient({ propagation: 'skipped' }), resource, clock, undefined, false),
    sysHttpSpan(exchange({}), resource, clock),
    sysHttpSpan(exchange({ role: 'client', status: 503, request: { method: 'GET', target: '/x?y=1', minor: 1 } }), resource, clock),
  ];
  return spans.map((s) => routes.apply(s));
}

describe('docs/data.md is true to the code', () => {
  it('span attributes: the table lists exactly what the span builders and the route stage produce', () => {
    const produced = new Set(allSpans().flatMap((s) => Object.keys(s.attributes)));
    expect([...produced].sort()).toEqual([...tableKeys('Span attributes')].sort());
  });

  it('resource attributes: the table lists exactly what the resource builder produces', () => {
    const r = processResource(
      { pid: 1, exePath: '/bin/x', exeOpenPath: '/proc/1/exe', exeName: 'x', exeKey: 'k', cmdline: [], env: {}, startTicks: 1, containerId: 'c'.repeat(64) },
      { runtime: { name: 'go', version: 'go1.23' }, language: 'go' },
    );
    expect(Object.keys(r.attributes).sort()).toEqual([...tableKeys('Resource attributes')].sort());
  });

  it('the kept headers and the default query keys are the code lists', () => {
    const kept = /### Header values kept from the syscall path\n\n([^(]+)\(/.exec(doc)?.[1] ?? '';
    expect([...kept.matchAll(/`([^`]+)`/g)].map((m) => m[1]).sort()).toEqual([...KEPT_HEADERS].sort());
    for (const k of DEFAULT_QUERY_KEYS) expect(doc).toContain(`\`${k}\``);
  });
});
