/**
 * One request through a chain of third-party services, checked end to end: the answer equals the
 * untraced one (but for the echoed traceparent), the last service echoes exactly one traceparent,
 * and the agent's spans of that trace are exactly the expected chain (each the child of the one
 * before, the echoed parent-id = the last CLIENT span, no other span, every CLIENT span ending no
 * earlier than the SERVER span it caused).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { waitFor, type AgentProcess, type PrintedSpanLine } from './processes';

const TP = /00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})/;
const TP_G = /00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}/g;

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function send(url: string, method: string, body: string | undefined, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'text/plain' } : {}) } }, (res) => {
      let b = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (b += d));
      res.on('end', () => {
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (k !== 'date') h[k] = String(v);
        resolve({ status: res.statusCode ?? 0, headers: h, body: b });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The answer with the echoed traceparent values (and so the length) left out: what must not differ
 * with the agent. The services echo the header the agent inserted or replaced.
 */
export function normalized(a: Answer): Answer {
  const headers = { ...a.headers };
  expect(Number(headers['content-length'] ?? a.body.length)).toBe(Buffer.byteLength(a.body, 'latin1'));
  delete headers['content-length'];
  return { status: a.status, headers, body: a.body.replace(/"traceparent":\s*"[^"]*"/g, '"traceparent": ?').replace(TP_G, 'TRACEPARENT') };
}

/** A traced service: its service.name, and the pid it was started as (workers may have others). */
export interface ChainService {
  readonly service: string;
  readonly proc: { readonly pid: number };
}

/** A hop of the expected trace: which service's span, of which kind. */
export interface Hop {
  svc: () => ChainService;
  kind: 'SERVER' | 'CLIENT';
}

export const serverHop = (svc: () => ChainService): Hop => ({ svc, kind: 'SERVER' });
export const clientHop = (svc: () => ChainService): Hop => ({ svc, kind: 'CLIENT' });

export interface ChainCase {
  name: string;
  method: 'GET' | 'POST' | 'PUT';
  url: () => string;
  body?: string;
  /** The request arrives with a traceparent (fresh ids for each request). */
  incoming?: boolean;
  /** The spans of the trace from the entry SERVER span down, each the child of the one before. */
  chain: () => Hop[];
}

export interface Ids {
  traceId: string;
  spanId: string;
}

export function freshIds(): Ids {
  return { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex') };
}

export function incomingHeaders(c: ChainCase, ids: Ids): Record<string, string> {
  return c.incoming ? { traceparent: `00-${ids.traceId}-${ids.spanId}-01` } : {};
}

function belongsTo(s: PrintedSpanLine, svc: ChainService): boolean {
  return s.resource['service.name'] === svc.service || Number(s.resource['process.pid']) === svc.proc.pid;
}

/** The untraced answer of a case (call before the agent starts). */
export function baselineOf(c: ChainCase): Promise<Answer> {
  return send(c.url(), c.method, c.body, incomingHeaders(c, freshIds()));
}

/** Sends the case once with the agent running and checks everything listed above. */
export async function checkChainRequest(agent: AgentProcess, c: ChainCase, baseline: Answer): Promise<void> {
  const ids = freshIds();
  const a = await send(c.url(), c.method, c.body, incomingHeaders(c, ids));
  expect(a.status).toBe(200);
  expect(normalized(a)).toEqual(normalized(baseline));
  // The last service echoes what it received: exactly one traceparent.
  const echoed = /"traceparent":\s*"([^"]*)"/.exec(a.body)?.[1] ?? '';
  expect(echoed).toMatch(new RegExp(`^${TP.source}$`));
  const [, traceId, parentId] = TP.exec(echoed)!;
  if (c.incoming) expect(traceId).toBe(ids.traceId);
  const hops = c.chain();
  const spans = await waitFor(
    `${c.name}: ${hops.length} spans of trace ${traceId}`,
    () => {
      const t = agent.spans().filter((s) => s.traceId === traceId);
      return t.length >= hops.length && t;
    },
    30_000,
  ).catch((err: Error) => {
    const last = hops[hops.length - 1].svc();
    const recent = agent.spans().filter((s) => belongsTo(s, last)).slice(-3);
    throw new Error(
      `${err.message}\nspans of the trace: ${JSON.stringify(agent.spans().filter((s) => s.traceId === traceId), null, 1)}\n` +
        `last spans of ${last.service}: ${JSON.stringify(recent, null, 1)}`,
    );
  });
  // Walk the chain from its entry SERVER span.
  const entry = spans.filter((s) => s.kind === 'SERVER' && belongsTo(s, hops[0].svc()));
  expect(entry).toHaveLength(1);
  expect(entry[0].parentSpanId).toBe(c.incoming ? ids.spanId : '');
  const walked = [entry[0]];
  for (let i = 1; i < hops.length; i++) {
    const kids = spans.filter((s) => s.parentSpanId === walked[i - 1].spanId);
    expect({ hop: i, kids: kids.map((k) => `${k.kind} ${k.resource['service.name']}`) }).toEqual({ hop: i, kids: [`${hops[i].kind} ${hops[i].svc().service}`] });
    expect(belongsTo(kids[0], hops[i].svc())).toBe(true);
    walked.push(kids[0]);
  }
  // The echoed parent is the last CLIENT span; nothing else in the trace.
  expect(walked[walked.length - 2].spanId).toBe(parentId);
  expect(spans.map((s) => s.spanId).sort()).toEqual(walked.map((s) => s.spanId).sort());
  // A CLIENT span covers the exchange: it ends no earlier than the SERVER span it caused.
  for (let i = 1; i + 1 < walked.length; i++) {
    if (walked[i].kind !== 'CLIENT') continue;
    const cl = walked[i];
    const down = walked[i + 1];
    expect({ name: c.name, clientEnd: BigInt(cl.endTimeUnixNano) >= BigInt(down.endTimeUnixNano) }).toEqual({ name: c.name, clientEnd: true });
    expect(cl.attributes['spanbridge.propagation'] ?? 'unset').not.toBe('skipped');
  }
}
