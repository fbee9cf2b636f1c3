import { GO_HTTP_SERVER_EVENT as L, RECORD_TYPE } from '../../../src/events/structs.generated';
import { RECORDS_INVALID } from '../../../src/events/decoder';
import { SelfMetrics } from '../../../src/metrics/counters';
import { GoHttpStage } from '../../../src/spans/go-http-stage';
import type { Resource, Span } from '../../../src/spans/span';
import { SystemClock } from '../../../src/time/clock';

/** A Go server record with the fields a span needs; everything else zero. */
function serverRecord(pid: number): Buffer {
  const buf = Buffer.alloc(L.size);
  const f = L.fields;
  buf.writeUInt8(RECORD_TYPE.RECORD_GO_HTTP_SERVER, f.type.offset);
  buf.writeUInt8(1, f.trace_flags.offset);
  buf.writeUInt32LE(pid, f.pid.offset);
  buf.writeUInt16LE(200, f.status.offset);
  buf.writeBigUInt64LE(1_000_000n, f.start_ns.offset);
  buf.writeBigUInt64LE(2_000_000n, f.end_ns.offset);
  Buffer.from('0af7651916cd43dd8448eb211c80319c', 'hex').copy(buf, f.trace_id.offset);
  Buffer.from('00f067aa0ba902b7', 'hex').copy(buf, f.span_id.offset);
  buf.writeUInt8(3, f.method_len.offset);
  buf.write('GET', f.method.offset, 'latin1');
  buf.writeUInt16LE(6, f.path_len.offset);
  buf.write('/items', f.path.offset, 'latin1');
  return buf;
}

describe('GoHttpStage', () => {
  const resource: Resource = { attributes: { 'service.name': 'api' } };

  function stage(): { metrics: SelfMetrics; spans: Span[]; s: GoHttpStage } {
    const metrics = new SelfMetrics();
    const spans: Span[] = [];
    const s = new GoHttpStage({
      clock: new SystemClock(),
      metrics,
      resourceOf: (pid) => (pid === 42 ? resource : undefined),
      deliver: (span) => spans.push(span),
    });
    return { metrics, spans, s };
  }

  it('turns a server record of a known process into a span with the kernel ids and its resource', () => {
    const { metrics, spans, s } = stage();
    s.onRecord(serverRecord(42));
    expect(spans).toHaveLength(1);
    expect(spans[0]).toMatchObject({ kind: 'SERVER', traceId: '0af7651916cd43dd8448eb211c80319c', spanId: '00f067aa0ba902b7', resource });
    expect(metrics.get('spanbridge_records_total', { type: 'go_http_server' })).toBe(1);
  });

  it('counts instead of delivering: an unknown process, an undecodable record; ignores other records', () => {
    const { metrics, spans, s } = stage();
    s.onRecord(serverRecord(7));
    expect(metrics.get('spanbridge_spans_dropped_total', { reason: 'unknown_process' })).toBe(1);
    s.onRecord(Buffer.alloc(0));
    expect(metrics.total(RECORDS_INVALID)).toBe(1);
    const exec = Buffer.alloc(64);
    exec.writeUInt8(RECORD_TYPE.RECORD_PROC_EXEC, 0);
    s.onRecord(exec);
    expect(spans).toHaveLength(0);
    s.tick();
    s.release(42);
    s.flush();
    expect(spans).toHaveLength(0);
  });
});
