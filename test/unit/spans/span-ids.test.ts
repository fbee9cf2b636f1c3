import { randomBytes } from 'node:crypto';
import { encodeTraceRequest } from '../../../receiver/otlp/trace-encoder';
import { SelfMetrics } from '../../../src/metrics/counters';
import { IdsSpan, withName } from '../../../src/spans/ids-span';
import { DEFAULT_ROUTES } from '../../../src/spans/routes/route-policy';
import { RouteStage } from '../../../src/spans/routes/route-stage';
import type { Span } from '../../../src/spans/span';
import { SpanIds } from '../../../src/spans/span-ids';
import { makeResource, makeSpan } from '../../fixtures/spans';

/** A span whose ids are bytes, and the same span with plain hex fields (no `ids`). */
const RESOURCE = makeResource('svc', 42);

function pair(ids: SpanIds, over: Partial<Span> = {}): [IdsSpan, Span] {
  const base = makeSpan(over.resource ?? RESOURCE, { traceId: ids.traceId, spanId: ids.spanId, parentSpanId: ids.parentSpanId, ...over });
  const s = new IdsSpan(ids, base.traceFlags, base.traceState, base.name, base.kind, base.startTimeUnixNano, base.endTimeUnixNano, base.status, base.attributes, base.resource);
  return [s, base];
}

describe('SpanIds: ids as bytes, hex on demand', () => {
  it('reads the three ids from 32 adjacent bytes; hex equals the bytes', () => {
    for (let i = 0; i < 200; i++) {
      const b = randomBytes(40);
      const hasParent = i % 3 !== 0;
      const ids = SpanIds.fromBytes(b, 8, hasParent);
      expect(ids.traceId).toBe(b.toString('hex', 8, 24));
      expect(ids.spanId).toBe(b.toString('hex', 24, 32));
      expect(ids.parentSpanId).toBe(hasParent ? b.toString('hex', 32, 40) : '');
      expect(ids.hasParent).toBe(hasParent);
      const out = Buffer.alloc(32);
      ids.writeBytes(out, 0);
      expect(out.subarray(0, 24)).toEqual(b.subarray(8, 32));
      expect(out.subarray(24).equals(hasParent ? b.subarray(32, 40) : Buffer.alloc(8))).toBe(true);
      // From the hex back: the same words.
      expect(SpanIds.fromHex(ids.traceId, ids.spanId, ids.parentSpanId)).toMatchObject({ w0: ids.w0, w3: ids.w3, w5: ids.w5, w7: ids.w7, hasParent });
    }
  });

  it('the OTLP encoder writes the same bytes from the words as from the hex', () => {
    const resource = RESOURCE;
    const withIds: Span[] = [];
    const withHex: Span[] = [];
    for (let i = 0; i < 300; i++) {
      const ids = SpanIds.fromBytes(randomBytes(32), 0, i % 2 === 0);
      const [a, b] = pair(ids, { resource, kind: i % 5 === 0 ? 'CLIENT' : 'SERVER' });
      withIds.push(a);
      withHex.push(b);
    }
    expect(Buffer.from(encodeTraceRequest(withIds)).equals(Buffer.from(encodeTraceRequest(withHex)))).toBe(true);
  });

  it('a renamed span keeps its ids (withName, and the route stage naming a span)', () => {
    const ids = SpanIds.fromHex('0af7651916cd43dd8448eb211c80319c', '00f067aa0ba902b7', 'b7ad6b7169203331');
    const [s] = pair(ids, { kind: 'SERVER', name: 'GET', attributes: { 'http.request.method': 'GET', 'url.path': '/users/12345' } });
    const renamed = withName(s, 'GET /x');
    expect([renamed.name, renamed.traceId, renamed.spanId, renamed.parentSpanId, renamed.ids]).toEqual(['GET /x', ids.traceId, ids.spanId, ids.parentSpanId, ids]);
    const routed = new RouteStage(DEFAULT_ROUTES, new SelfMetrics()).apply(s);
    expect(routed.name).not.toBe('GET');
    expect([routed.traceId, routed.spanId, routed.parentSpanId]).toEqual(['0af7651916cd43dd8448eb211c80319c', '00f067aa0ba902b7', 'b7ad6b7169203331']);
  });
});
