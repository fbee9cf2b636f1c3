/**
 * The assembler reads decoded records in place (src/events/sys-http.ts: the ring's bytes, valid
 * during the handler's call only; conn_id compared by its halves with the last connection's).
 * These cases feed the same encoded records decoded from their own buffers, decoded in place from
 * one ring-like buffer that is overwritten as soon as each record's call returns (as the kernel
 * may once consumer_pos passes it), and as plain objects (the `data` view, the bigint id), and
 * hold the spans and drop counters of all three to be equal: split heads (kept across records),
 * bodies in the same write, chunked and interim responses, routes, and connections whose ids
 * share their low or high halves.
 */
import { decodeRecord } from '../../../src/events/decoder';
import type { SysHttpConnRecord, SysHttpDataRecord, SysHttpRouteRecord } from '../../../src/events/sys-http';
import { SYS_F_REQUEST_START, SYS_F_RESPONSE_START } from '../../../src/events/sys-http';
import { RECORD_TYPE, SYS_HTTP_ROUTE_EVENT } from '../../../src/events/structs.generated';
import { SelfMetrics } from '../../../src/metrics/counters';
import { SysHttpAssembler } from '../../../src/spans/sys-http-assembler';
import type { Span } from '../../../src/spans/span';
import { FixedClock } from '../../../src/time/clock';
import { encodeRecord, sysConnRecord, sysDataRecord } from '../../fixtures/records';

type SysRecord = SysHttpConnRecord | SysHttpDataRecord | SysHttpRouteRecord;

const A = 0xfeedbeef_00000001n;
const B = 0x00000002_00000001n; // A's low half
const C = 0xfeedbeef_00000003n; // A's high half
let ts = 1_000_000n;
let span = 0;

function open(connId: bigint): Buffer {
  return sysConnRecord(RECORD_TYPE.RECORD_SYS_HTTP_CONN_OPEN, { conn_id: connId, ts_ns: (ts += 1000n) });
}
function close(connId: bigint): Buffer {
  return sysConnRecord(RECORD_TYPE.RECORD_SYS_HTTP_CONN_CLOSE, { conn_id: connId, ts_ns: (ts += 1000n) });
}
/** Server role: ingress = request bytes, egress = response bytes. `len` past the bytes: a cut capture. */
function data(connId: bigint, dir: 'in' | 'out', bytes: string, flags = 0, len?: number, routePattern = ''): Buffer {
  const id = (++span).toString(16).padStart(16, '0');
  return sysDataRecord(
    bytes,
    {
    conn_id: connId,
    direction: dir === 'in' ? 0 : 1,
    flags,
    ts_ns: (ts += 1000n),
    span_id: Buffer.from(id, 'hex'),
    ...(len === undefined ? {} : { len: BigInt(len) }),
    },
    routePattern,
  );
}
function route(connId: bigint, pattern: string): Buffer {
  const p = Buffer.from(pattern, 'utf8');
  return encodeRecord(SYS_HTTP_ROUTE_EVENT, { type: RECORD_TYPE.RECORD_SYS_HTTP_ROUTE, pid: 7, conn_id: connId, route_len: p.length, _pad1: 0, route: p });
}

const REQ = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: svc:8080\r\nUser-Agent: t/1\r\n${extra}\r\n`;
const OK = (body: string): string => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

function records(): Buffer[] {
  const S = SYS_F_REQUEST_START;
  const R = SYS_F_RESPONSE_START;
  return [
    open(A),
    open(B),
    open(C),
    // keep-alive on A with routes, interleaved with B (same low half) and C (same high half)
    data(A, 'in', REQ('/items/1'), S),
    data(B, 'in', REQ('/b/1'), S),
    data(C, 'in', REQ('/c/1'), S),
    data(A, 'out', OK('hello'), R, undefined, 'GET /items/{id}'), // the route in the response's record
    data(B, 'out', OK('bee'), R),
    route(C, '/c/{n}'), // a route record of its own
    data(C, 'out', OK('sea'), R),
    // a head split over three reads, a body in the same write as the response head
    data(A, 'in', 'GET /split HTTP/1.1\r\nHo', S),
    data(A, 'in', 'st: svc:8080\r\nUser-Agent: t'),
    data(A, 'in', '/1\r\n\r\n'),
    data(A, 'out', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234', R),
    data(A, 'out', '56789'),
    // an interim response, then a chunked one ending at its last chunk
    data(B, 'in', REQ('/upload', 'Expect: 100-continue\r\nContent-Length: 3\r\n'), S),
    data(B, 'out', 'HTTP/1.1 100 Continue\r\n\r\n', R),
    data(B, 'in', 'abc'),
    data(B, 'out', 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n'),
    data(B, 'out', '0\r\n\r\n'),
    // a response longer than its capture (len past the bytes): its end by Content-Length
    data(C, 'in', REQ('/big'), S),
    data(C, 'out', 'HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\nxx', R, 5038),
    // garbage where a response should be: no span, the connection is dead
    data(A, 'in', REQ('/bad'), S),
    data(A, 'out', 'SSH-2.0-OpenSSH\r\n', R),
    close(A),
    close(B),
    close(C),
    route(A, '/late'), // a route after the connection closed: counted, attached nowhere
    data(A, 'out', OK('x'), R, undefined, '/later'), // likewise in a data record
  ];
}

/** A data record as a plain object of its own (no `bytes`: the assembler reads `data`); its hex
 * ids from `twin` (the same record decoded again: no hex made on the SpanIds the spans get). */
function asObject(rec: SysHttpDataRecord, twin: SysHttpDataRecord): SysHttpDataRecord {
  return {
    type: rec.type,
    direction: rec.direction,
    role: rec.role,
    flags: rec.flags,
    flags2: rec.flags2,
    pid: rec.pid,
    tid: rec.tid,
    fd: rec.fd,
    connId: rec.connId,
    tsNs: rec.tsNs,
    len: rec.len,
    data: Buffer.from(rec.data),
    tail: Buffer.from(rec.tail),
    traceId: twin.traceId,
    spanId: twin.spanId,
    parentSpanId: twin.parentSpanId,
    traceFlags: rec.traceFlags,
    ...(rec.ids ? { ids: rec.ids } : {}),
    spareIds: rec.spareIds,
    route: rec.route,
  };
}

function run(mode: 'own' | 'ring' | 'objects'): { spans: Span[]; drops: unknown } {
  const metrics = new SelfMetrics();
  const spans: Span[] = [];
  const asm = new SysHttpAssembler({ clock: new FixedClock(1_700_000_000_000_000_000n), metrics, resourceOf: () => ({ attributes: { 'service.name': 'svc' } }), onSpan: (s) => spans.push(s) });
  const ring = Buffer.alloc(1 << 14, 0xee);
  let pos = 0;
  for (const buf of records()) {
    if (mode === 'ring') {
      // At a moving offset of one buffer, overwritten once the call returns.
      if (pos + buf.length + 8 > ring.length) pos = 0;
      const at = pos + 8;
      pos = (at + buf.length + 7) & ~7;
      buf.copy(ring, at);
      asm.onRecord(decodeRecord(ring, metrics, at, buf.length) as SysRecord);
      ring.fill(0xee, at, at + buf.length);
      continue;
    }
    const rec = decodeRecord(buf, metrics) as SysRecord;
    if (mode === 'objects' && rec.type === 'sys_http_route') {
      asm.onRecord({ type: rec.type, pid: rec.pid, connId: rec.connId, pattern: rec.pattern });
    } else if (mode === 'objects' && rec.type === 'sys_http_data') {
      asm.onRecord(asObject(rec, decodeRecord(buf, metrics) as SysHttpDataRecord));
    } else {
      asm.onRecord(rec);
    }
  }
  return { spans, drops: metrics.snapshot().filter((p) => p.name !== 'spanbridge_records_invalid_total') };
}

describe('assembly of decoded records read in place', () => {
  it('gives the spans and counters of the same records as objects, also from a ring overwritten after each call', () => {
    ts = 1_000_000n;
    span = 0;
    const inPlace = run('own');
    ts = 1_000_000n;
    span = 0;
    const fromRing = run('ring');
    ts = 1_000_000n;
    span = 0;
    const objects = run('objects');
    expect(inPlace).toEqual(objects);
    expect(fromRing).toEqual(objects);
    expect(inPlace.drops).toContainEqual(expect.objectContaining({ labels: { reason: 'route_without_request' }, value: 2 }));
    expect(inPlace.spans.map((s) => [s.name, s.attributes['url.path'], s.attributes['http.response.status_code']])).toEqual([
      ['GET /items/{id}', '/items/1', 200],
      ['GET', '/b/1', 200],
      ['GET /c/{n}', '/c/1', 200],
      ['GET', '/split', 200],
      ['GET', '/upload', 201],
      ['GET', '/big', 200],
    ]);
  });
});
