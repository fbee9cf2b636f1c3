import { RECORD_TYPE } from '../../../src/events/structs.generated';
import { RECORDS_INVALID } from '../../../src/events/decoder';
import { SelfMetrics } from '../../../src/metrics/counters';
import { GoHttpStage } from '../../../src/spans/go-http-stage';
import type { Resource, Span } from '../../../src/spans/span';
import { SystemClock } from '../../../src/time/clock';
import { minimalGoServerRecord } from '../../fixtures/records';

/** A whole buffer as a ring's record (bytes, offset, length). */
const whole = (b: Buffer): [Buffer, number, number] => [b, 0, b.length];

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
    s.onRecord(...whole(minimalGoServerRecord(42)));
    expect(spans).toHaveLength(1);
    expect(spans[0]).toMatchObject({ kind: 'SERVER', traceId: '0af7651916cd43dd8448eb211c80319c', spanId: '00f067aa0ba902b7', resource });
    expect(metrics.get('spanbridge_records_total', { type: 'go_http_server' })).toBe(1);
  });

  it('counts instead of delivering: an unknown process, an undecodable record; ignores other records', () => {
    const { metrics, spans, s } = stage();
    s.onRecord(...whole(minimalGoServerRecord(7)));
    expect(metrics.get('spanbridge_spans_dropped_total', { reason: 'unknown_process' })).toBe(1);
    s.onRecord(Buffer.alloc(0), 0, 0);
    expect(metrics.total(RECORDS_INVALID)).toBe(1);
    const exec = Buffer.alloc(64);
    exec.writeUInt8(RECORD_TYPE.RECORD_PROC_EXEC, 0);
    s.onRecord(exec, 0, exec.length);
    expect(spans).toHaveLength(0);
    s.tick();
    s.release(42);
    s.flush();
    expect(spans).toHaveLength(0);
  });
});
