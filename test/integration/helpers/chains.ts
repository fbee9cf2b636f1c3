/**
 * Checks one request's trace through a chain of third-party services: exactly the expected spans,
 * one trace, each hop's SERVER span the child of the previous hop's CLIENT span (the first the
 * child of the caller's incoming context), each CLIENT span the child of its own service's SERVER
 * span, the right method/path/status/service, and the traceparent/tracestate the leaf echoed at
 * /headers equal to the last CLIENT span's context. Returns every problem found (empty: connected).
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { PrintedSpanLine } from './processes';

export interface Hop {
  readonly service: string;
  /** url.path of the SERVER span. */
  readonly path: string;
  /** The next hop's URL as the CLIENT span reports it (url.full); absent for the leaf. */
  readonly calls?: string;
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export const hex = (n: number): string => randomBytes(n).toString('hex');

/** One HTTP/1.1 request on a fresh connection. */
export function send(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The answer without what differs between any two runs of the same request (Date). */
export function comparable(a: Answer): Answer {
  const headers = { ...a.headers };
  delete headers.date;
  return { status: a.status, headers, body: a.body };
}

/** The JSON the leaf's /headers echoed, found after the last "-> " of a chain's answer. */
export function echoed(body: string): { traceparent: string; tracestate: string } | null {
  const m = /(\{[^{}]*"traceparent"[^{}]*\})\s*$/.exec(body);
  if (!m) return null;
  try {
    return JSON.parse(m[1]) as { traceparent: string; tracestate: string };
  } catch {
    return null;
  }
}

export interface Incoming {
  readonly traceId: string;
  readonly spanId: string;
  readonly tracestate?: string;
}

export function checkChain(
  all: readonly PrintedSpanLine[],
  incoming: Incoming,
  hops: readonly Hop[],
  method: string,
  answer: Answer,
): string[] {
  const problems: string[] = [];
  const spans = all.filter((s) => s.traceId === incoming.traceId);
  const want = hops.length * 2 - 1;
  if (spans.length !== want) {
    problems.push(`${spans.length} spans in trace ${incoming.traceId}, want ${want}: ${spans.map((s) => `${s.resource['service.name']}/${s.kind}`).join(' ')}`);
  }
  if (answer.status !== 200) problems.push(`status ${answer.status}: ${answer.body}`);
  const ids = spans.map((s) => s.spanId);
  if (new Set(ids).size !== ids.length) problems.push(`span ids not unique in the trace: ${ids.join(' ')}`);
  let parent = incoming.spanId;
  for (const [i, hop] of hops.entries()) {
    const of = (kind: string): PrintedSpanLine[] => spans.filter((s) => s.kind === kind && s.resource['service.name'] === hop.service);
    const servers = of('SERVER');
    if (servers.length !== 1) {
      problems.push(`hop ${i} ${hop.service}: ${servers.length} SERVER spans`);
      return problems;
    }
    const server = servers[0];
    if (server.parentSpanId !== parent) problems.push(`hop ${i} ${hop.service}: SERVER parent ${server.parentSpanId || '(none)'}, want ${parent}`);
    if (server.attributes['url.path'] !== hop.path) problems.push(`hop ${i} ${hop.service}: url.path ${server.attributes['url.path']}, want ${hop.path}`);
    if (server.attributes['http.request.method'] !== method) problems.push(`hop ${i} ${hop.service}: method ${server.attributes['http.request.method']}`);
    if (server.attributes['http.response.status_code'] !== 200) problems.push(`hop ${i} ${hop.service}: SERVER status ${server.attributes['http.response.status_code']}`);
    if (!hop.calls) break;
    const clients = of('CLIENT');
    if (clients.length !== 1) {
      problems.push(`hop ${i} ${hop.service}: ${clients.length} CLIENT spans`);
      return problems;
    }
    const client = clients[0];
    if (client.parentSpanId !== server.spanId) problems.push(`hop ${i} ${hop.service}: CLIENT parent ${client.parentSpanId || '(none)'}, want its SERVER ${server.spanId}`);
    if (client.attributes['url.full'] !== hop.calls) problems.push(`hop ${i} ${hop.service}: CLIENT url.full ${client.attributes['url.full']}, want ${hop.calls}`);
    if (client.attributes['http.request.method'] !== method) problems.push(`hop ${i} ${hop.service}: CLIENT method ${client.attributes['http.request.method']}`);
    if (client.attributes['http.response.status_code'] !== 200) problems.push(`hop ${i} ${hop.service}: CLIENT status ${client.attributes['http.response.status_code']}`);
    parent = client.spanId;
  }
  const echo = echoed(answer.body);
  if (echo) {
    const tp = `00-${incoming.traceId}-${parent}-01`;
    if (echo.traceparent !== tp) problems.push(`leaf received traceparent ${echo.traceparent || '(none)'}, want ${tp}`);
    if (incoming.tracestate !== undefined && echo.tracestate !== incoming.tracestate) {
      problems.push(`leaf received tracestate ${echo.tracestate || '(none)'}, want ${incoming.tracestate}`);
    }
  }
  return problems;
}
