/**
 * The syscall HTTP assembler on hand-made records: framing (keep-alive, pipelining, split heads,
 * heads bigger than the capture, Content-Length and chunked bodies, interim responses), ids taken
 * from the kernel's records only, and bad input producing no span.
 */
import type { SysHttpConnRecord, SysHttpDataRecord } from '../../../src/events/sys-http';
import {
  SYS_F2_CONTEXT,
  SYS_F2_CONTEXT_PENDING,
  SYS_F2_TASK_PARENT,
  SYS_F2_PIPELINED,
  SYS_F2_PROPAGATION_SKIPPED,
  SYS_F_BLACKBOX_PARENT,
  SYS_F_REMOTE_PARENT,
  SYS_F_REQUEST_START,
  SYS_F_RESPONSE_START,
  SYS_F_SPARE_IDS,
  SYS_F_THREAD_PARENT,
} from '../../../src/events/sys-http';
import { SelfMetrics } from '../../../src/metrics/counters';
import { SysHttpAssembler, SYS_SPANS_DROPPED } from '../../../src/spans/sys-http-assembler';
import { urlRedaction, type UrlRedaction } from '../../../src/spans/url-redaction';
import type { Span } from '../../../src/spans/span';
import { FixedClock } from '../../../src/time/clock';

const CAPTURE = 1024;
const resource = { attributes: { 'service.name': 'svc' } };

let n = 0;
const id = (len: number): string => (++n).toString(16).padStart(len, '0');

class Harness {
  readonly spans: Span[] = [];
  readonly metrics = new SelfMetrics();
  readonly asm: SysHttpAssembler;
  ts = 1_000_000n;
  constructor(opts: { maxConnections?: number; maxExchangesPerConnection?: number; redaction?: UrlRedaction; hostMayDiffer?: (pid: number) => boolean } = {}) {
    this.asm = new SysHttpAssembler({
      clock: new FixedClock(1_700_000_000_000_000_000n),
      metrics: this.metrics,
      resourceOf: (pid) => (pid === 7 ? resource : undefined),
      onSpan: (s) => this.spans.push(s),
      ...opts,
    });
  }
  open(connId: bigint, role: 'server' | 'client' = 'server', pid = 7): void {
    const rec: SysHttpConnRecord = {
      type: 'sys_http_conn_open',
      role,
      pid,
      tid: 70,
      fd: 5,
      connId,
      tsNs: this.ts,
      localAddress: '127.0.0.1',
      localPort: role === 'server' ? 8080 : 40000,
      remoteAddress: '127.0.0.1',
      remotePort: role === 'server' ? 40000 : 8080,
    };
    this.asm.onRecord(rec);
  }
  close(connId: bigint): void {
    this.asm.onRecord({ ...this.connRec(connId), type: 'sys_http_conn_close' });
  }
  private connRec(connId: bigint): SysHttpConnRecord {
    return { type: 'sys_http_conn_close', role: 'server', pid: 7, tid: 70, fd: 5, connId, tsNs: this.ts, localAddress: '', localPort: 0, remoteAddress: '', remotePort: 0 };
  }
  /** One syscall's bytes; `len` defaults to the full length (captured up to CAPTURE bytes). */
  data(
    connId: bigint,
    direction: 'ingress' | 'egress',
    bytes: string | Buffer,
    o: {
      flags?: number;
      flags2?: number;
      len?: number;
      role?: 'server' | 'client';
      parent?: string;
      traceId?: string;
      spanId?: string;
      spares?: number;
      spareIds?: { traceId: string; spanId: string; parentSpanId?: string; traceFlags?: number }[];
    } = {},
  ): SysHttpDataRecord {
    this.ts += 1_000_000n;
    const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1');
    const rec: SysHttpDataRecord = {
      type: 'sys_http_data',
      direction,
      role: o.role ?? 'server',
      flags: o.flags ?? 0,
      flags2: o.flags2 ?? 0,
      pid: 7,
      tid: 70,
      fd: 5,
      connId,
      tsNs: this.ts,
      len: o.len ?? b.length,
      data: b.subarray(0, CAPTURE),
      tail: b.subarray(Math.max(0, b.length - 8)),
      traceId: o.traceId ?? id(32),
      spanId: o.spanId ?? id(16),
      parentSpanId: o.parent ?? '',
      traceFlags: 1,
      spareIds: (o.spareIds ?? Array.from({ length: o.spares ?? 3 }, (): { traceId: string; spanId: string; parentSpanId?: string; traceFlags?: number } => ({ traceId: id(32), spanId: id(16) }))).map((s) => ({
        traceId: s.traceId,
        spanId: s.spanId,
        parentSpanId: s.parentSpanId ?? '',
        traceFlags: s.traceFlags ?? 1,
      })),
    };
    this.asm.onRecord(rec);
    return rec;
  }
  dropped(reason: string): number {
    return this.metrics.snapshot().find((p) => p.name === SYS_SPANS_DROPPED && p.labels.reason === reason)?.value ?? 0;
  }
}

const START = SYS_F_REQUEST_START;
const RESP = SYS_F_RESPONSE_START;
const ok = (body = 'hello', extra = ''): string => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

describe('SysHttpAssembler: server side', () => {
  it('emits one span per keep-alive request with ids from the kernel records', () => {
    const h = new Harness();
    h.open(1n);
    const r1 = h.data(1n, 'ingress', 'GET /a?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t/1\r\n\r\n', { flags: START });
    h.data(1n, 'egress', ok(), { flags: RESP });
    const r2 = h.data(1n, 'ingress', 'POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody', { flags: START });
    h.data(1n, 'egress', 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n', { flags: RESP });
    expect(h.spans).toHaveLength(2);
    const [a, b] = h.spans;
    expect(a.traceId).toBe(r1.traceId);
    expect(a.spanId).toBe(r1.spanId);
    expect(a.parentSpanId).toBe('');
    expect(a.kind).toBe('SERVER');
    expect(a.name).toBe('GET');
    expect(a.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/a',
      'url.query': 'q=1',
      'url.scheme': 'http',
      'server.address': 'example.com',
      'server.port': 8080,
      'http.response.status_code': 200,
      'user_agent.original': 't/1',
      'network.peer.port': 40000,
    });
    expect(a.status.code).toBe('UNSET');
    expect(a.startTimeUnixNano).toBe(1_700_000_000_000_000_000n + 2_000_000n);
    expect(a.endTimeUnixNano).toBe(1_700_000_000_000_000_000n + 3_000_000n);
    expect(b.spanId).toBe(r2.spanId);
    expect(b.status.code).toBe('ERROR');
    expect(b.attributes['error.type']).toBe('500');
  });

  it('takes a Go route record for the request answered next (keep-alive), and only for it', () => {
    const h = new Harness();
    h.open(1n);
    h.data(1n, 'ingress', 'GET /items/42 HTTP/1.1\r\nHost: x\r\n\r\n', { flags: START });
    h.asm.onRecord({ type: 'sys_http_route', pid: 7, connId: 1n, pattern: 'GET /items/{id}' });
    h.data(1n, 'egress', ok(), { flags: RESP });
    h.data(1n, 'ingress', 'GET /other HTTP/1.1\r\nHost: x\r\n\r\n', { flags: START });
    h.data(1n, 'egress', ok(), { flags: RESP });
    expect(h.spans.map((s) => [s.name, s.attributes['http.route']])).toEqual([
      ['GET /items/{id}', '/items/{id}'],
      ['GET', undefined],
    ]);
    // a route for a connection without a request waiting is counted, never attached elsewhere
    h.asm.onRecord({ type: 'sys_http_route', pid: 7, connId: 1n, pattern: '/x' });
    h.asm.onRecord({ type: 'sys_http_route', pid: 7, connId: 9n, pattern: '/y' });
    expect(h.dropped('route_without_request')).toBe(2);
  });

  it('continues an incoming traceparent and keeps tracestate', () => {
    const h = new Harness();
    h.open(1n);
    const r = h.data(1n, 'ingress', 'GET / HTTP/1.1\r\ntraceparent: 00-aa-bb-01\r\ntracestate: k=v\r\n\r\n', {
      flags: START | SYS_F_REMOTE_PARENT,
      parent: 'b7ad6b7169203331',
    });
    h.data(1n, 'egress', ok());
    expect(h.spans[0].traceId).toBe(r.traceId);
    expect(h.spans[0].parentSpanId).toBe('b7ad6b7169203331');
    expect(h.spans[0].traceState).toBe('k=v');
    expect(h.spans[0].attributes['spanbridge.parent.source']).toBe('traceparent');
  });

  it('marks black-box parents', () => {
    const h = new Harness();
    h.open(1n);
    h.data(1n, 'ingress', 'GET / HTTP/1.1\r\n\r\n', { flags: START | SYS_F_BLACKBOX_PARENT, parent: '1111111111111111' });
    h.data(1n, 'egress', ok());
    expect(h.spans[0].parentSpanId).toBe('1111111111111111');
    expect(h.spans[0].attributes['spanbridge.parent.source']).toBe('blackbox');
    expect(h.spans[0].traceState).toBe('');
  });

  it('assembles a head split over several reads', () => {
    const h = new Harness();
    h.open(1n);
    h.data(1n, 'ingress', 'GET /split HT', { flags: START });
    h.data(1n, 'ingress', 'TP/1.1\r\nHost: a\r');
    h.data(1n, 'ingress', '\n\r\n');
    h.data(1n, 'egress', ok());
    expect(h.spans).toHaveLength(1);
    expect(h.spans[0].attributes['url.path']).toBe('/split');
    expect(h.spans[0].attributes['spanbridge.request.head_truncated']).toBeUndefined();
  });

  it('keeps what it can of a head bigger than the capture', () => {
    const h = new Harness();
    h.open(1n);
    const big = `GET /big HTTP/1.1\r\nHost: a\r\nX-Big: ${'z'.repeat(20_000)}\r\n\r\n`;
    // The server reads 8 KiB at a time; each read is captured up to 1 KiB.
    for (let i = 0; i < big.length; i += 8192) {
      h.data(1n, 'ingress', big.slice(i, i + 8192), { flags: i === 0 ? START : 0 });
    }
    h.data(1n, 'egress', ok());
    expect(h.spans).toHaveLength(1);
    expect(h.spans[0].attributes['url.path']).toBe('/big');
    expect(h.spans[0].attributes['spanbridge.request.head_truncated']).toBe(true);
    // The next request on the connection is still framed correctly.
    h.data(1n, 'ingress', 'GET /after HTTP/1.1\r\n\r\n', { flags: START });
    h.data(1n, 'egress', ok());
    expect(h.spans.map((s) => s.attributes['url.path'])).toEqual(['/big', '/after']);
  });

  it('frames pipelined requests in one read with the spare kernel ids, responses in order', () => {
    const h = new Harness();
    h.open(1n);
    const r = h.data(1n, 'ingress', 'GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\n\r\n', { flags: START });
    h.data(1n, 'egress', ok('one') + ok('two') + ok('three'));
    expect(h.spans.map((s) => s.attributes['url.path'])).toEqual(['/1', '/2', '/3']);
    expect(h.spans[0].spanId).toBe(r.spanId);
    expect(h.spans[1].spanId).toBe(r.spareIds[0].spanId);
    expect(h.spans[1].traceId).toBe(r.spareIds[0].traceId);
    expect(h.spans[2].spanId).toBe(r.spareIds[1].spanId);
    expect(new Set(h.spans.map((s) => s.spanId)).size).toBe(3);
  });

  it('frames a request pipelined in a later read (before the first response) with spare ids', () => {
    const h = new Harness();
    h.open(1n);
    const r1 = h.data(1n, 'ingress', 'GET /first HTTP/1.1\r\n\r\n', { flags: START });
    const r2 = h.data(1n, 'ingress', 'GET /second HTTP/1.1\r\n\r\n', { flags: SYS_F_SPARE_IDS });
    h.data(1n, 'egress', ok('1'), { flags: RESP });
    h.data(1n, 'egress', ok('2'));
    expect(h.spans.map((s) => s.attributes['url.path'])).toEqual(['/first', '/second']);
    expect(h.spans[0].spanId).toBe(r1.spanId);
    expect(h.spans[1].spanId).toBe(r2.spareIds[0].spanId);
    expect(h.spans[1].parentSpanId).toBe('');
  });

  it('a server request pipelined in one read continues its own traceparent: the kernel-decided spare context', () => {
    const h = new Harness();
    h.open(1n);
    const trace = 'cd'.repeat(16);
    const r = h.data(1n, 'ingress', `GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\ntraceparent: 00-${trace}-00000000000000a1-00\r\n\r\n`, {
      flags: START,
      spareIds: [
        { traceId: trace, spanId: '00000000000000b2', parentSpanId: '00000000000000a1', traceFlags: 0 },
        { traceId: id(32), spanId: id(16) },
        { traceId: id(32), spanId: id(16) },
      ],
    });
    h.data(1n, 'egress', ok('one') + ok('two'), { flags: RESP });
    expect(h.spans.map((s) => [s.attributes['url.path'], s.traceId, s.spanId, s.parentSpanId])).toEqual([
      ['/1', r.traceId, r.spanId, ''],
      ['/2', trace, '00000000000000b2', '00000000000000a1'],
    ]);
    expect(h.spans[1].traceFlags).toBe(0);
  });

  it('a body that looks like a request line stays a body', () => {
    const h = new Harness();
    h.open(1n);
    h.data(1n, 'ingress', 'POST /up HTTP/1.1\r\nContent-Length: 27\r\n\r\n', { flags: START });
    h.data(1n, 'ingress', 'GET /not-a-request HTTP/1.1', { flags: SYS_F_SPARE_IDS });
    h.data(1n, 'egress', ok(), { flags: RESP });
    expect(h.spans.map((s) => s.attributes['url.path'])).toEqual(['/up']);
  });

  it('never invents ids: pipelined requests beyond the spare ids are counted, not reported', () => {
    const h = new Harness();
    h.open(1n);
    h.data(1n, 'ingress', 'GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n', { flags: START, spares: 0 });
    h.data(1n, 'egress', ok() + ok());
    expect(h.spans).toHaveLength(1);
    expect(h.dropped('pipelined_beyond_spare_ids')).toBe(1);
  });

  it('skips Content-Length bodies by byte count (body larger than the capture)', () => {
    const h = new Harness();
    h.open(1n);
    h.data(1n, 'ingress', 'GET /dl HTTP/1.1\r\n\r\n', { flags: START });
    const body = 'b'.repeat(100_000);
    const head = `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`;
    h.data(1n, 'egress', head + body.slice(0, 60_000), { flags: RESP });
    expect(h.spans).toHaveLength(0); // 40 000 bytes still to come
    h.data(1n, 'egress', body.slice(60_000));
    expect(h.spans).toHaveLength(1);
    expect(h.spans[0].endTimeUnixNano - h.spans[0].startTimeUnixNano).toBe(2_000_000n); // last write - first read
  });

  it('ends chunked responses at the last chunk (seen in the message tail)', () => {
    const h = new Harness();
    h.open(1n);
    h.data(1n, 'ingress', 'GET /c HTTP/1.1\r\n\r\n', { flags: START });
    h.data(1n, 'egress', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', { flags: RESP });
    h.data(1n, 'egress', `800\r\n${'x'.repeat(2048)}\r\n`);
    expect(h.spans).toHaveLength(0);
    h.data(1n, 'egress', `5\r\nhello\r\n${'p'.repeat(2000)}0\r\n\r\n`);
    expect(h.spans).toHaveLength(1);
  });

  it('ignores interim 100 Continue responses', () => {
    const h = new Harness();
    h.open(1n);
    h.data(1n, 'ingress', 'POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n', { flags: START });
    h.data(1n, 'egress', 'HTTP/1.1 100 Continue\r\n\r\n', { flags: RESP });
    h.data(1n, 'ingress', 'abc');
    h.data(1n, 'egress', 'HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n');
    expect(h.spans).toHaveLength(1);
    expect(h.spans[0].attributes['http.response.status_code']).toBe(201);
  });

  it('ends a response without length at close', () => {
    const h = new Harness();
    h.open(1n);
    h.data(1n, 'ingress', 'GET /stream HTTP/1.0\r\n\r\n', { flags: START });
    h.data(1n, 'egress', 'HTTP/1.0 200 OK\r\n\r\npart', { flags: RESP });
    h.data(1n, 'egress', 'more');
    expect(h.spans).toHaveLength(0);
    h.close(1n);
    expect(h.spans).toHaveLength(1);
    expect(h.spans[0].attributes['network.protocol.version']).toBe('1.0');
  });

  it('reports no span for a request closed before its response, nor for half requests', () => {
    const h = new Harness();
    h.open(1n);
    h.data(1n, 'ingress', 'GET /never HTTP/1.1\r\n\r\n', { flags: START });
    h.close(1n);
    h.open(2n);
    h.data(2n, 'ingress', 'GET /half HTTP/1.1\r\nHost: a', { flags: START });
    h.close(2n);
    expect(h.spans).toHaveLength(0);
    expect(h.dropped('closed_before_response')).toBe(1);
    expect(h.dropped('incomplete_request')).toBe(1);
  });

  it.each([
    ['binary after the method', Buffer.concat([Buffer.from('GET /'), Buffer.from([0, 1, 2, 3, 0xff, 0x0d, 0x0a, 0x0d, 0x0a])])],
    ['no HTTP version', 'GET /x\r\n\r\n'],
    ['bad header line', 'GET / HTTP/1.1\r\nno colon here\r\n\r\n'],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['lower-case method', 'get / HTTP/1.1\r\n\r\n'],
  ])('no span for garbage that starts like a request: %s', (_name, bytes) => {
    const h = new Harness();
    h.open(1n);
    h.data(1n, 'ingress', bytes, { flags: START });
    h.data(1n, 'egress', ok());
    h.close(1n);
    expect(h.spans).toHaveLength(0);
  });

  it('no span when the reply is not HTTP', () => {
    const h = new Harness();
    h.open(1n);
    h.data(1n, 'ingress', 'GET / HTTP/1.1\r\n\r\n', { flags: START });
    h.data(1n, 'egress', '+PONG\r\n');
    h.close(1n);
    expect(h.spans).toHaveLength(0);
  });

  it('bounds connections: the least recently active is finished and counted', () => {
    const h = new Harness({ maxConnections: 2 });
    for (const c of [1n, 2n, 3n]) {
      h.open(c);
      h.data(c, 'ingress', 'GET / HTTP/1.1\r\n\r\n', { flags: START });
    }
    expect(h.asm.connectionCount).toBe(2);
    const evicted = h.metrics.snapshot().find((p) => p.name === 'spanbridge_sys_http_connections_evicted_total');
    expect(evicted?.value).toBe(1);
  });

  it('finishes idle connections on sweep and forgets a gone process', () => {
    const h = new Harness();
    h.open(1n);
    h.data(1n, 'ingress', 'GET / HTTP/1.0\r\n\r\n', { flags: START });
    h.data(1n, 'egress', 'HTTP/1.0 200 OK\r\n\r\n', { flags: RESP });
    h.asm.sweep(h.ts + 121_000_000_000n);
    expect(h.spans).toHaveLength(1);
    expect(h.asm.connectionCount).toBe(0);
    h.open(2n);
    h.asm.dropPid(7);
    expect(h.asm.connectionCount).toBe(0);
  });

  it('counts records of an unknown process instead of reporting them', () => {
    const h = new Harness();
    h.open(1n, 'server', 99);
    h.data(1n, 'ingress', 'GET / HTTP/1.1\r\n\r\n', { flags: START });
    h.data(1n, 'egress', ok());
    expect(h.spans).toHaveLength(0);
    expect(h.dropped('unknown_process')).toBe(1);
  });
});

describe('SysHttpAssembler: client side', () => {
  it('emits a CLIENT span with url.full, thread parent and the response status', () => {
    const h = new Harness();
    h.open(1n, 'client');
    const r = h.data(1n, 'egress', 'GET /items/1?x=2 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n', {
      role: 'client',
      flags: START | SYS_F_THREAD_PARENT,
      parent: '2222222222222222',
    });
    h.data(1n, 'ingress', 'HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno', { role: 'client', flags: RESP });
    expect(h.spans).toHaveLength(1);
    const s = h.spans[0];
    expect(s.kind).toBe('CLIENT');
    expect(s.spanId).toBe(r.spanId);
    expect(s.parentSpanId).toBe('2222222222222222');
    expect(s.attributes).toMatchObject({
      'url.full': 'http://127.0.0.1:8080/items/1?x=2',
      'server.address': '127.0.0.1',
      'server.port': 8080,
      'http.response.status_code': 404,
      'spanbridge.parent.source': 'thread',
    });
    expect(s.status.code).toBe('ERROR'); // 4xx is an error on client spans
  });

  it('Go clients (hostMayDiffer): a Host header naming another port than the peer (a reverse proxy keeping the incoming Host) gives the peer\'s URL; others keep the Host header', () => {
    const req = 'GET /hello HTTP/1.1\r\nHost: 127.0.0.1:9999\r\n\r\n';
    const resp = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';
    const go = new Harness({ hostMayDiffer: (pid) => pid === 7 });
    go.open(1n, 'client');
    go.data(1n, 'egress', req, { role: 'client', flags: START });
    go.data(1n, 'ingress', resp, { role: 'client', flags: RESP });
    go.open(2n, 'client');
    go.data(2n, 'egress', 'GET /x HTTP/1.1\r\nHost: backend:8080\r\n\r\n', { role: 'client', flags: START });
    go.data(2n, 'ingress', resp, { role: 'client', flags: RESP });
    expect(go.spans.map((s) => [s.attributes['url.full'], s.attributes['server.address'], s.attributes['server.port']])).toEqual([
      ['http://127.0.0.1:8080/hello', '127.0.0.1', 8080],
      ['http://backend:8080/x', 'backend', 8080],
    ]);
    const other = new Harness();
    other.open(1n, 'client');
    other.data(1n, 'egress', req, { role: 'client', flags: START });
    other.data(1n, 'ingress', resp, { role: 'client', flags: RESP });
    expect(other.spans[0].attributes['url.full']).toBe('http://127.0.0.1:9999/hello');
  });

  it('a response record with SYS_F2_PROPAGATION_SKIPPED: the CLIENT span says spanbridge.propagation=skipped', () => {
    const h = new Harness();
    h.open(1n, 'client');
    h.data(1n, 'egress', 'GET /big HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n', { role: 'client', flags: START });
    h.data(1n, 'ingress', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', { role: 'client', flags: RESP, flags2: SYS_F2_PROPAGATION_SKIPPED });
    h.data(1n, 'egress', 'GET /small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n', { role: 'client', flags: START });
    h.data(1n, 'ingress', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', { role: 'client', flags: RESP });
    expect(h.spans.map((s) => s.attributes['spanbridge.propagation'])).toEqual(['skipped', undefined]);
  });

  it('a client call linked to its asyncio task\'s request says so and carries that request\'s tracestate (what the kernel sends on)', () => {
    const h = new Harness();
    h.open(1n);
    const srv = h.data(1n, 'ingress', 'GET / HTTP/1.1\r\ntraceparent: 00-aa-bb-01\r\ntracestate: congo=t61rcWkgMzE\r\n\r\n', {
      flags: START | SYS_F_REMOTE_PARENT,
      parent: 'b7ad6b7169203331',
    });
    h.open(2n, 'client');
    h.data(2n, 'egress', 'GET /down HTTP/1.1\r\nHost: b\r\n\r\n', { role: 'client', flags: START | SYS_F_THREAD_PARENT, flags2: SYS_F2_TASK_PARENT, parent: srv.spanId, traceId: srv.traceId });
    h.data(2n, 'ingress', ok(), { role: 'client', flags: RESP });
    const c = h.spans.find((s) => s.kind === 'CLIENT')!;
    expect(c.parentSpanId).toBe(srv.spanId);
    expect(c.attributes['spanbridge.parent.source']).toBe('asyncio_task');
    expect(c.traceState).toBe('congo=t61rcWkgMzE');
  });

  it('a client call linked to its thread\'s server request carries that request\'s tracestate (what the kernel sends on)', () => {
    const h = new Harness();
    h.open(1n);
    const srv = h.data(1n, 'ingress', 'GET / HTTP/1.1\r\ntraceparent: 00-aa-bb-01\r\ntracestate: congo=t61rcWkgMzE\r\n\r\n', {
      flags: START | SYS_F_REMOTE_PARENT,
      parent: 'b7ad6b7169203331',
    });
    h.open(2n, 'client');
    h.data(2n, 'egress', 'GET /down HTTP/1.1\r\nHost: b\r\n\r\n', { role: 'client', flags: START | SYS_F_THREAD_PARENT, parent: srv.spanId, traceId: srv.traceId });
    // A call not linked by the thread (a new trace) inherits nothing.
    h.open(3n, 'client');
    h.data(3n, 'egress', 'GET /other HTTP/1.1\r\nHost: b\r\n\r\n', { role: 'client', flags: START });
    h.data(2n, 'ingress', ok(), { role: 'client', flags: RESP });
    h.data(3n, 'ingress', ok(), { role: 'client', flags: RESP });
    h.data(1n, 'egress', ok(), { flags: RESP });
    // After the server request ended, a late thread-linked call finds nothing to inherit.
    h.open(4n, 'client');
    h.data(4n, 'egress', 'GET /late HTTP/1.1\r\nHost: b\r\n\r\n', { role: 'client', flags: START | SYS_F_THREAD_PARENT, parent: srv.spanId });
    h.data(4n, 'ingress', ok(), { role: 'client', flags: RESP });
    const byPath = (p: string): Span => h.spans.find((s) => s.attributes['url.full']?.toString().endsWith(p))!;
    expect(byPath('/down').traceState).toBe('congo=t61rcWkgMzE');
    expect(byPath('/other').traceState).toBe('');
    expect(byPath('/late').traceState).toBe('');
    expect(h.spans.find((s) => s.kind === 'SERVER')!.traceState).toBe('congo=t61rcWkgMzE');
  });

  it('tracestate is reported as the kernel sends it on: headers combined, whitespace removed, invalid or over-long lists dropped', () => {
    const h = new Harness();
    const serve = (conn: bigint, lines: string): Span => {
      h.open(conn);
      const srv = h.data(conn, 'ingress', `GET / HTTP/1.1\r\ntraceparent: 00-aa-bb-01\r\n${lines}\r\n`, {
        flags: START | SYS_F_REMOTE_PARENT,
        parent: 'b7ad6b7169203331',
      });
      h.open(conn + 100n, 'client');
      h.data(conn + 100n, 'egress', 'GET /down HTTP/1.1\r\nHost: b\r\n\r\n', { role: 'client', flags: START | SYS_F_THREAD_PARENT, parent: srv.spanId });
      h.data(conn + 100n, 'ingress', ok(), { role: 'client', flags: RESP });
      h.data(conn, 'egress', ok(), { flags: RESP });
      const server = h.spans.find((s) => s.kind === 'SERVER' && s.spanId === srv.spanId)!;
      const client = h.spans.find((s) => s.kind === 'CLIENT' && s.parentSpanId === srv.spanId)!;
      expect(client.traceState).toBe(server.traceState);
      return server;
    };
    expect(serve(1n, 'tracestate: foo=1 \t , \t bar=2\r\ntracestate:\r\ntracestate: baz=3\t\r\n').traceState).toBe('foo=1,bar=2,baz=3');
    expect(serve(2n, `tracestate: k=${'v'.repeat(300)}\r\n`).traceState).toBe(''); // value over 256
    expect(serve(3n, 'tracestate: foo=1,Bar=2\r\n').traceState).toBe(''); // invalid key: nothing sent on
    const list = (n: number, v: string): string => Array.from({ length: n }, (_, i) => `k${i}=${v}`).join(',');
    expect(serve(4n, `tracestate: ${list(30, 'x'.repeat(20))}\r\n`).traceState).toBe(''); // 30 members, 749 bytes > 512
    expect(serve(5n, `tracestate: ${list(33, '1')}\r\n`).traceState).toBe(''); // 33 members
    expect(serve(6n, `tracestate: ${list(32, '1')}\r\n`).traceState).toBe(list(32, '1'));
  });

  it('a head whose context the kernel decided in a later read takes the ids of that read (SYS_F2_CONTEXT)', () => {
    const h = new Harness();
    h.open(1n);
    const first = h.data(1n, 'ingress', 'GET /split HTTP/1.1\r\nHost: a\r\nCookie: c=1\r\n', { flags: START, flags2: SYS_F2_CONTEXT_PENDING, traceId: '0'.repeat(32), spanId: '0'.repeat(16) });
    const second = h.data(1n, 'ingress', 'traceparent: 00-aa-bb-01\r\ntracestate: k=v\r\n\r\n', {
      flags: SYS_F_REMOTE_PARENT,
      flags2: SYS_F2_CONTEXT,
      parent: 'b7ad6b7169203331',
    });
    h.data(1n, 'egress', ok(), { flags: RESP });
    expect(h.spans).toHaveLength(1);
    const s = h.spans[0];
    expect(s.traceId).toBe(second.traceId);
    expect(s.spanId).toBe(second.spanId);
    expect(s.spanId).not.toBe(first.spanId);
    expect(s.parentSpanId).toBe('b7ad6b7169203331');
    expect(s.traceState).toBe('k=v');
    expect(s.attributes['spanbridge.parent.source']).toBe('traceparent');
    expect(s.attributes['url.path']).toBe('/split');
  });

  it('a request whose context the kernel never decided gives no span (ids are never made up)', () => {
    const h = new Harness();
    h.open(2n);
    h.data(2n, 'ingress', 'GET /never HTTP/1.1\r\nHost: a\r\n\r\n', { flags: START, flags2: SYS_F2_CONTEXT_PENDING });
    h.data(2n, 'egress', ok(), { flags: RESP });
    expect(h.spans).toHaveLength(0);
    expect(h.dropped('context_not_decided')).toBe(1);
  });

  it('client requests pipelined in one write take the kernel\'s ids for them (same trace and parent); responses match in order', () => {
    const h = new Harness();
    h.open(1n, 'client');
    const trace = 'ab'.repeat(16);
    const r = h.data(1n, 'egress', 'GET /1 HTTP/1.1\r\nHost: b\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\n\r\n', {
      role: 'client',
      flags: START | SYS_F_THREAD_PARENT | SYS_F_SPARE_IDS,
      traceId: trace,
      parent: '2222222222222222',
      spareIds: [
        { traceId: trace, spanId: '0000000000000b02' },
        { traceId: trace, spanId: '0000000000000b03' },
        { traceId: trace, spanId: '0000000000000000' },
      ],
    });
    h.data(1n, 'ingress', ok('one') + ok('two'), { role: 'client', flags: RESP });
    h.data(1n, 'ingress', 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', { role: 'client' });
    expect(h.spans.map((s) => [s.attributes['url.full'], s.spanId, s.traceId, s.parentSpanId, s.attributes['http.response.status_code']])).toEqual([
      ['http://b/1', r.spanId, trace, '2222222222222222', 200],
      ['http://127.0.0.1:8080/2', '0000000000000b02', trace, '2222222222222222', 200],
      ['http://127.0.0.1:8080/3', '0000000000000b03', trace, '2222222222222222', 404],
    ]);
  });

  it('client pipelining beyond the kernel\'s ids (a zero id, or no spare flag) is counted, never given made-up ids', () => {
    const h = new Harness();
    h.open(1n, 'client');
    h.data(1n, 'egress', 'GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n', { role: 'client', flags: START });
    expect(h.dropped('client_pipelining')).toBe(1);
    h.open(2n, 'client');
    h.data(2n, 'egress', 'GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n', {
      role: 'client',
      flags: START | SYS_F_SPARE_IDS,
      spareIds: [{ traceId: 'ab'.repeat(16), spanId: '0000000000000000' }],
    });
    expect(h.dropped('pipelined_beyond_spare_ids')).toBe(1);
  });

  it('a client request written while the previous one awaits its response (kernel: pipelined) keeps the earlier exchange open', () => {
    const h = new Harness();
    h.open(1n, 'client');
    const a = h.data(1n, 'egress', 'GET /a HTTP/1.1\r\nHost: b\r\n\r\n', { role: 'client', flags: START });
    const b = h.data(1n, 'egress', 'GET /b HTTP/1.1\r\nHost: b\r\n\r\n', { role: 'client', flags: START, flags2: SYS_F2_PIPELINED });
    h.data(1n, 'ingress', ok('A'), { role: 'client', flags: RESP });
    h.data(1n, 'ingress', 'HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n', { role: 'client' });
    expect(h.spans.map((s) => [s.spanId, s.attributes['http.response.status_code']])).toEqual([
      [a.spanId, 200],
      [b.spanId, 201],
    ]);
    // Without the kernel's word, a new request start supersedes what is open (as before).
    h.open(2n, 'client');
    const c = h.data(2n, 'egress', 'GET /c HTTP/1.1\r\nHost: b\r\n\r\n', { role: 'client', flags: START });
    h.data(2n, 'egress', 'GET /d HTTP/1.1\r\nHost: b\r\n\r\n', { role: 'client', flags: START });
    expect(h.spans.find((s) => s.spanId === c.spanId)?.attributes['error.type']).toBe('no_response');
  });

  it('reports a client request whose connection closed before any response as an error', () => {
    const h = new Harness();
    h.open(1n, 'client');
    h.data(1n, 'egress', 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { role: 'client', flags: START });
    h.close(1n);
    expect(h.spans).toHaveLength(1);
    expect(h.spans[0].status.code).toBe('ERROR');
    expect(h.spans[0].attributes['error.type']).toBe('connection_closed');
  });
});

describe('SysHttpAssembler: anything a peer can send', () => {
  // Deterministic PRNG (mulberry32) so a failure is reproducible.
  function rng(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const pieces = [
    'GET / HTTP/1.1\r\n',
    'POST /p HTTP/1.1\r\n',
    'HTTP/1.1 200 OK\r\n',
    'HTTP/1.1 100 Continue\r\n\r\n',
    'Content-Length: 5\r\n',
    'Content-Length: -1\r\n',
    'Content-Length: 99999999999999999999\r\n',
    'Transfer-Encoding: chunked\r\n',
    'Host: a\r\n',
    '\r\n',
    '0\r\n\r\n',
    'hello',
    '\x00\xff\x16\x03\x01',
    'GET ',
    ' HTTP/1.1',
  ];

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('never throws and reports only well-formed exchanges (seed %i)', (seed) => {
    const r = rng(seed);
    const h = new Harness({ maxConnections: 8, maxExchangesPerConnection: 4 });
    for (let i = 0; i < 600; i++) {
      const conn = BigInt(1 + Math.floor(r() * 6));
      if (r() < 0.05) {
        h.open(conn, r() < 0.5 ? 'server' : 'client');
        continue;
      }
      if (r() < 0.03) {
        h.close(conn);
        continue;
      }
      let bytes = '';
      const n = 1 + Math.floor(r() * 6);
      for (let j = 0; j < n; j++) bytes += pieces[Math.floor(r() * pieces.length)];
      if (r() < 0.1) bytes += 'x'.repeat(Math.floor(r() * 3000));
      const flags = (r() < 0.3 ? START : 0) | (r() < 0.2 ? RESP : 0);
      const len = r() < 0.1 ? bytes.length + Math.floor(r() * 100_000) : undefined;
      expect(() => h.data(conn, r() < 0.5 ? 'ingress' : 'egress', bytes, { flags, len, role: r() < 0.5 ? 'server' : 'client' })).not.toThrow();
      if (r() < 0.01) h.asm.sweep(h.ts + 200_000_000_000n);
    }
    for (let c = 1n; c <= 6n; c++) h.close(c);
    for (const s of h.spans) {
      expect(['GET', 'POST']).toContain(s.attributes['http.request.method']);
      expect(s.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(s.spanId).toMatch(/^[0-9a-f]{16}$/);
      expect(s.endTimeUnixNano >= s.startTimeUnixNano).toBe(true);
      const status = s.attributes['http.response.status_code'];
      if (status !== undefined) expect([100, 200]).toContain(status);
    }
    expect(h.asm.connectionCount).toBeLessThanOrEqual(8);
  });
});

describe('SysHttpAssembler: secrets', () => {
  const SECRET_HEADERS =
    'Authorization: Bearer hdr-secret-1\r\nCookie: sid=hdr-secret-2\r\nX-Api-Key: hdr-secret-3\r\nProxy-Authorization: Basic hdr-secret-4\r\n';
  const everything = (s: Span): string => JSON.stringify(s, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));

  it('server: query values of the default keys, Host userinfo and secret headers never reach the span', () => {
    const h = new Harness();
    h.open(1n);
    h.data(
      1n,
      'ingress',
      `GET /cb?code=q-secret-1&state=ok&%73ig=q-secret-2&X-Goog-Signature=q-secret-3 HTTP/1.1\r\nHost: alice:pw-secret@example.com:8080\r\n${SECRET_HEADERS}User-Agent: t/1\r\n\r\n`,
      { flags: START },
    );
    h.data(1n, 'egress', ok('body', 'Set-Cookie: sid=resp-secret\r\n'), { flags: RESP });
    expect(h.spans).toHaveLength(1);
    const a = h.spans[0].attributes;
    expect(a['url.query']).toBe('code=REDACTED&state=ok&%73ig=REDACTED&X-Goog-Signature=REDACTED');
    expect(a['server.address']).toBe('example.com');
    expect(a['server.port']).toBe(8080);
    expect(a['user_agent.original']).toBe('t/1');
    expect(everything(h.spans[0])).not.toMatch(/secret/);
  });

  it('client: url.full carries REDACTED:REDACTED@ and redacted values (absolute-form target too)', () => {
    const h = new Harness();
    h.open(2n, 'client');
    h.data(2n, 'egress', `GET http://bob:pw-secret@backend:9000/obj?token=q-secret&a=1 HTTP/1.1\r\n${SECRET_HEADERS}\r\n`, { flags: START, role: 'client' });
    h.data(2n, 'ingress', ok(), { flags: RESP, role: 'client' });
    expect(h.spans).toHaveLength(1);
    expect(h.spans[0].attributes['url.full']).toBe('http://REDACTED:REDACTED@backend:9000/obj?token=REDACTED&a=1');
    expect(h.spans[0].attributes['server.address']).toBe('backend');
    expect(everything(h.spans[0])).not.toMatch(/secret/);
  });

  it('the configured policy applies: query all', () => {
    const h = new Harness({ redaction: urlRedaction({ query: 'all' }) });
    h.open(1n);
    h.data(1n, 'ingress', 'GET /s?q=private+words&page=2 HTTP/1.1\r\nHost: x\r\n\r\n', { flags: START });
    h.data(1n, 'egress', ok(), { flags: RESP });
    expect(h.spans[0].attributes['url.query']).toBe('q=REDACTED&page=REDACTED');
  });
});
