import { decodeRecord, RECORDS_INVALID, RING_RECORDS, ringDecoder, ringHandler, type RingRecord } from '../../../src/events/decoder';
import { PROC_LIFECYCLE_EVENT as P, RECORD_TYPE, RECORD_TYPE as T } from '../../../src/events/structs.generated';
import { SelfMetrics } from '../../../src/metrics/counters';
import { goServerRecord } from '../../fixtures/records';

describe('decodeRecord', () => {
  it('decodes a Go server record using true lengths, never bytes past them', () => {
    const m = new SelfMetrics();
    const r = decodeRecord(goServerRecord(), m);
    expect(r).toMatchObject({
      type: 'go_http_server',
      pid: 4242,
      goid: 77n,
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: '00f067aa0ba902b7',
      parentSpanId: 'b7ad6b7169203331',
      remoteParent: true,
      status: 201,
      method: 'POST',
      path: '/items',
      query: '',
      pattern: 'POST /items',
      host: 'localhost:8080',
      remoteAddr: '127.0.0.1:51234',
      tracestate: 'a=b,c',
      userAgent: 'x'.repeat(128),
      protoMajor: 1,
      protoMinor: 1,
      requestContentLength: 4n,
      responseSize: 7n,
      truncated: ['user_agent'],
    });
    expect(m.total(RECORDS_INVALID)).toBe(0);
  });

  it('has no parent without the remote-parent flag, and no pattern without its flag', () => {
    const r = decodeRecord(goServerRecord({ flags: 0 }), new SelfMetrics());
    expect(r).toMatchObject({ parentSpanId: '', remoteParent: false, pattern: '' });
  });

  it('reports status 0 when the kernel marked it unknown', () => {
    const r = decodeRecord(goServerRecord({ flags: 0b100 }), new SelfMetrics());
    expect(r).toMatchObject({ status: 0 });
  });

  it('decodes process lifecycle records', () => {
    const buf = Buffer.alloc(P.size);
    buf.writeUInt8(RECORD_TYPE.RECORD_PROC_EXIT, 0);
    buf.writeUInt32LE(99, P.fields.pid.offset);
    buf.writeUInt32LE(1, P.fields.ppid.offset);
    buf.write('goserver\0junk', P.fields.comm.offset, 'latin1');
    expect(decodeRecord(buf, new SelfMetrics())).toEqual({ type: 'proc_exit', pid: 99, ppid: 1, tsNs: 0n, comm: 'goserver' });
  });

  it('counts empty, unknown and short records instead of throwing', () => {
    const m = new SelfMetrics();
    expect(decodeRecord(Buffer.alloc(0), m)).toBeNull();
    expect(decodeRecord(Buffer.from([200, 1, 2, 3]), m)).toBeNull();
    expect(decodeRecord(goServerRecord().subarray(0, 100), m)).toBeNull();
    expect(m.get(RECORDS_INVALID, { reason: 'empty' })).toBe(1);
    expect(m.get(RECORDS_INVALID, { reason: 'unknown_type' })).toBe(1);
    expect(m.get(RECORDS_INVALID, { reason: 'short' })).toBe(1);
  });
});

describe('decodeRecord: Go client records', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { GO_HTTP_CLIENT_EVENT: C } = require('../../../src/events/structs.generated') as typeof import('../../../src/events/structs.generated');
  function clientRecord(flags: number, flags2 = 0): Buffer {
    const buf = Buffer.alloc(C.size, 0xee);
    const f = C.fields;
    buf.writeUInt8(RECORD_TYPE.RECORD_GO_HTTP_CLIENT, 0);
    buf.writeUInt8(1, f.trace_flags.offset);
    buf.writeUInt8(flags, f.flags.offset);
    buf.writeUInt8(flags2, f.flags2.offset);
    buf.writeUInt16LE(503, f.status.offset);
    buf.writeUInt32LE(10, f.pid.offset);
    Buffer.from('0af7651916cd43dd8448eb211c80319c', 'hex').copy(buf, f.trace_id.offset);
    Buffer.from('00f067aa0ba902b7', 'hex').copy(buf, f.span_id.offset);
    Buffer.from('b7ad6b7169203331', 'hex').copy(buf, f.parent_span_id.offset);
    for (const [name, value] of [['method', 'GET'], ['scheme', 'http'], ['host', 'svc:81'], ['path', '/p'], ['query', '']] as const) {
      buf.writeUInt32LE(value.length, f[`${name}_len`].offset);
      buf.write(value, f[name].offset, 'latin1');
    }
    return buf;
  }

  it('reports the local parent, status and how the header was propagated', () => {
    const r = decodeRecord(clientRecord(0b1000101), new SelfMetrics());
    expect(r).toMatchObject({
      type: 'go_http_client',
      parentSpanId: 'b7ad6b7169203331',
      spanId: '00f067aa0ba902b7',
      status: 503,
      transportError: false,
      propagation: 'injected',
      method: 'GET',
      host: 'svc:81',
      path: '/p',
      query: '',
    });
  });

  it('an application traceparent: its ids, no local parent; a transport error has no status', () => {
    expect(decodeRecord(clientRecord(0b0001001), new SelfMetrics())).toMatchObject({ parentSpanId: '', propagation: 'app', status: 0 });
    expect(decodeRecord(clientRecord(0b0000010), new SelfMetrics())).toMatchObject({ transportError: true, status: 0, propagation: 'none' });
    expect(decodeRecord(clientRecord(0b11000000), new SelfMetrics())).toMatchObject({ propagation: 'injected-socket', status: 503 });
    expect(decodeRecord(clientRecord(0b00100000), new SelfMetrics())).toMatchObject({ propagation: 'skipped' });
  });

  it('a forwarded traceparent replaced by ours; a response body still open', () => {
    expect(decodeRecord(clientRecord(0b11000001, 0b001), new SelfMetrics())).toMatchObject({ propagation: 'replaced-socket', parentSpanId: 'b7ad6b7169203331', bodyOpen: false });
    expect(decodeRecord(clientRecord(0b00000101, 0b001), new SelfMetrics())).toMatchObject({ propagation: 'replaced' });
    expect(decodeRecord(clientRecord(0b01000101, 0b100), new SelfMetrics())).toMatchObject({ propagation: 'injected', bodyOpen: true });
  });

  it('a body-close record names the span it ends', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { GO_HTTP_CLIENT_END_EVENT: E } = require('../../../src/events/structs.generated') as typeof import('../../../src/events/structs.generated');
    const buf = Buffer.alloc(E.size);
    buf.writeUInt8(RECORD_TYPE.RECORD_GO_HTTP_CLIENT_END, 0);
    buf.writeUInt32LE(42, E.fields.pid.offset);
    buf.writeBigUInt64LE(123456789n, E.fields.end_ns.offset);
    Buffer.from('00f067aa0ba902b7', 'hex').copy(buf, E.fields.span_id.offset);
    expect(decodeRecord(buf, new SelfMetrics())).toEqual({ type: 'go_http_client_end', pid: 42, spanId: '00f067aa0ba902b7', endNs: 123456789n });
    expect(decodeRecord(buf.subarray(0, E.size - 1), new SelfMetrics())).toBeNull();
  });
});

describe('one decoder per ring', () => {
  const proc = (type: number): Buffer => {
    const buf = Buffer.alloc(P.size);
    buf.writeUInt8(type, 0);
    buf.writeUInt32LE(99, P.fields.pid.offset);
    return buf;
  };

  it('decodes the types its ring carries and counts any other type as unknown_type', () => {
    const m = new SelfMetrics();
    const procEvents = ringDecoder('proc_events', m);
    // Typed as that ring's records (a compile error if the ring's record type were empty).
    const t: RingRecord<'proc_events'>['type'] | undefined = procEvents(proc(T.RECORD_PROC_EXEC))?.type;
    expect(t).toBe('proc_exec');
    expect(procEvents(goServerRecord())).toBeNull();
    expect(m.get(RECORDS_INVALID, { reason: 'unknown_type' })).toBe(1);
    const goRing = ringDecoder('go_http_events', m);
    expect(goRing(goServerRecord())?.type).toBe('go_http_server');
    expect(goRing(proc(T.RECORD_PROC_EXIT))).toBeNull();
    expect(m.get(RECORDS_INVALID, { reason: 'unknown_type' })).toBe(2);
    // The syscall ring carries its process lifecycle records (after the process's last data).
    expect(ringDecoder('sys_http_events', m)(proc(T.RECORD_PROC_FORK))?.type).toBe('proc_fork');
  });

  it('every record type is carried by some ring', () => {
    const carried = new Set<string>(Object.values(RING_RECORDS).flat());
    const all = Object.keys(T).filter((k) => k.startsWith('RECORD_') && k !== 'RECORD_TYPE_MAX');
    const m = new SelfMetrics();
    for (const k of all) {
      const buf = Buffer.alloc(4096);
      buf.writeUInt8(T[k as keyof typeof T], 0);
      const rec = decodeRecord(buf, m);
      expect(rec && carried.has(rec.type)).toBe(true);
    }
  });

  it('a ring handler hands only decoded records to its consumer', () => {
    const m = new SelfMetrics();
    const seen: string[] = [];
    const handler = ringHandler('proc_events', m, (rec) => seen.push(`${rec.type}:${rec.pid}`));
    const exit = proc(T.RECORD_PROC_EXIT);
    handler(exit, 0, exit.length);
    handler(Buffer.alloc(0), 0, 0);
    const go = goServerRecord();
    handler(go, 0, go.length);
    expect(seen).toEqual(['proc_exit:99']);
    expect(m.total(RECORDS_INVALID)).toBe(2);
  });
});
