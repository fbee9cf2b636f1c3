/** decodeSysHttpData on records built from the generated layout (bpf/sys_http/sys_http.h). */
import { decodeSysHttpData, decodeSysHttpRoute, SYS_F2_CONTEXT, SYS_F_REMOTE_PARENT, SYS_F_REQUEST_START, SYS_HTTP_DATA_RECORD_SIZE } from '../../../src/events/sys-http';
import { RECORD_TYPE, SYS_HTTP_DATA_EVENT as D, SYS_HTTP_DIRECTION, SYS_HTTP_ROLE, SYS_HTTP_ROUTE_EVENT } from '../../../src/events/structs.generated';
import { encodeRecord, PARENT_SPAN_ID, SPAN_ID, sysDataRecord } from '../../fixtures/records';

function record(opts: { flags: number; len: bigint; capture: string; tail?: string; captureLen?: number; flags2?: number }): Buffer {
  const data = Buffer.from(opts.capture, 'latin1');
  const tail = Buffer.from(opts.tail ?? '', 'latin1');
  return encodeRecord(
    D,
    {
      direction: SYS_HTTP_DIRECTION.SYS_DIR_EGRESS,
      role: SYS_HTTP_ROLE.SYS_ROLE_CLIENT,
      flags: opts.flags,
      trace_flags: 1,
      capture_len: opts.captureLen ?? data.length,
      pid: 4242,
      tid: 4243,
      fd: 7,
      tail_len: tail.length,
      tail,
      flags2: opts.flags2 ?? 1,
      route_len: 0,
      conn_id: 0xfeedbeefcafe0001n,
      ts_ns: 123_456_789_012n,
      len: opts.len,
      trace_id: Buffer.from('4bf92f3577b34da6a3ce929d0e0e4736', 'hex'),
      span_id: Buffer.from(SPAN_ID, 'hex'),
      parent_span_id: Buffer.from(PARENT_SPAN_ID, 'hex'),
      data,
    },
    { size: SYS_HTTP_DATA_RECORD_SIZE + data.length },
  );
}

describe('decodeSysHttpData', () => {
  it('reads every field of a request start with a remote parent', () => {
    const r = decodeSysHttpData(record({ flags: SYS_F_REQUEST_START | SYS_F_REMOTE_PARENT, len: 5_000_000_000n, capture: 'GET / HTTP/1.1\r\n', tail: '\r\n\r\n' }));
    expect(r).toMatchObject({
      type: 'sys_http_data',
      direction: 'egress',
      role: 'client',
      flags2: 1,
      pid: 4242,
      tid: 4243,
      fd: 7,
      connId: 0xfeedbeefcafe0001n,
      tsNs: 123_456_789_012n,
      len: 5_000_000_000,
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      parentSpanId: 'b7ad6b7169203331',
      traceFlags: 1,
    });
    expect(r.data.toString('latin1')).toBe('GET / HTTP/1.1\r\n');
    expect(r.tail.toString('latin1')).toBe('\r\n\r\n');
  });

  it('ids only where a request starts, the parent only when one is flagged', () => {
    const mid = decodeSysHttpData(record({ flags: 0, len: 10n, capture: 'x' }));
    expect([mid.traceId, mid.spanId, mid.parentSpanId]).toEqual(['', '', '']);
    const root = decodeSysHttpData(record({ flags: SYS_F_REQUEST_START, len: 10n, capture: 'x' }));
    expect(root.spanId).toBe('00f067aa0ba902b7');
    expect(root.parentSpanId).toBe('');
    // a later read on which the kernel decided a split head's context carries its ids
    const decided = decodeSysHttpData(record({ flags: SYS_F_REMOTE_PARENT, flags2: SYS_F2_CONTEXT, len: 10n, capture: 'x' }));
    expect([decided.traceId, decided.spanId, decided.parentSpanId]).toEqual(['4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', 'b7ad6b7169203331']);
  });

  it('a length beyond 2^53 is capped; a capture length past the record is cut to the bytes present', () => {
    const r = decodeSysHttpData(record({ flags: 0, len: 0xffff_ffff_ffff_ffffn, capture: 'abc', captureLen: 900 }));
    expect(r.len).toBe(Number.MAX_SAFE_INTEGER);
    expect(r.data.toString('latin1')).toBe('abc');
    expect(decodeSysHttpData(record({ flags: 0, len: 2n ** 53n - 1n, capture: '' })).len).toBe(Number.MAX_SAFE_INTEGER);
    expect(decodeSysHttpData(record({ flags: 0, len: 2n ** 32n + 5n, capture: '' })).len).toBe(2 ** 32 + 5);
  });
});

describe('decoded records read in place', () => {
  it('a data record holds its own bytes, the capture bounds and conn_id by halves; its view and bigint on demand', () => {
    const buf = record({ flags: SYS_F_REQUEST_START, len: 20n, capture: 'GET / HTTP/1.1\r\n' });
    const r = decodeSysHttpData(buf);
    expect(r.bytes).toBe(buf);
    expect(r.dataOffset).toBe(D.fields.data.offset);
    expect(r.captureLen).toBe(16);
    expect([r.connLo, r.connHi]).toEqual([0xcafe0001, 0xfeedbeef]);
    expect(r.connId).toBe(0xfeedbeefcafe0001n);
    expect(r.data).toBe(r.data); // made once
    expect(r.data.toString('latin1')).toBe(buf.toString('latin1', D.fields.data.offset, D.fields.data.offset + 16));
  });

  it('a Go server response carries its route after the captured bytes (cut at the capture, bounded by the record)', () => {
    const r = decodeSysHttpData(sysDataRecord('HTTP/1.1 200 OK\r\n', { direction: 1, flags: 2 }, 'GET /items/{id}'));
    expect(r.data.toString('latin1')).toBe('HTTP/1.1 200 OK\r\n');
    expect(r.route).toBe('GET /items/{id}');
    expect(decodeSysHttpData(sysDataRecord('HTTP/1.1 200 OK\r\n', { direction: 1 })).route).toBe('');
    const long = `/${'a'.repeat(300)}`;
    expect(decodeSysHttpData(sysDataRecord('x', {}, long)).route).toBe(long.slice(0, 128));
    // a route length past the record's end: only the bytes present
    const sent = sysDataRecord('xy', {}, '/abc');
    expect(decodeSysHttpData(sent.subarray(0, D.fields.data.offset + 2 + 2)).route).toBe('/a');
  });

  it('routes of consecutive responses that differ by one byte of the same length decode each as sent', () => {
    // The decoder gives back the last route's string for the same bytes.
    for (const route of ['GET /items/{id}', 'GET /items/{id}', 'GET /itemz/{id}', 'GET /items/{id}', 'GET /é/{id}', 'GET /è/{id}', '']) {
      expect(decodeSysHttpData(sysDataRecord('HTTP/1.1 200 OK\r\n', { direction: 1 }, route)).route).toBe(route);
    }
  });

  it('a route record: its pattern (UTF-8, cut at the true length) and conn_id by halves', () => {
    const pattern = Buffer.from('GET /caf\u00e9/{id}', 'utf8');
    const buf = Buffer.alloc(SYS_HTTP_ROUTE_EVENT.size, 0xee);
    buf[0] = RECORD_TYPE.RECORD_SYS_HTTP_ROUTE;
    buf.writeUInt32LE(77, SYS_HTTP_ROUTE_EVENT.fields.pid.offset);
    buf.writeBigUInt64LE(0x8000000000000005n, SYS_HTTP_ROUTE_EVENT.fields.conn_id.offset);
    buf.writeUInt32LE(pattern.length, SYS_HTTP_ROUTE_EVENT.fields.route_len.offset);
    pattern.copy(buf, SYS_HTTP_ROUTE_EVENT.fields.route.offset);
    const r = decodeSysHttpRoute(buf);
    expect(r).toMatchObject({ type: 'sys_http_route', pid: 77, pattern: 'GET /caf\u00e9/{id}', connLo: 5, connHi: 0x80000000 });
    expect(r.connId).toBe(0x8000000000000005n);
    // a true length past the capture: cut to the capture
    buf.writeUInt32LE(5000, SYS_HTTP_ROUTE_EVENT.fields.route_len.offset);
    const { offset, size } = SYS_HTTP_ROUTE_EVENT.fields.route;
    expect(decodeSysHttpRoute(buf).pattern).toBe(buf.toString('utf8', offset, offset + size));
  });
});
