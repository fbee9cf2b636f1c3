import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { version } from '../../../../package.json';
import {
  INSTRUMENTATION_SCOPE,
  toReadableSpan,
  unixNanosToHrTime,
} from '../../../../receiver/otlp/to-readable-span';
import { W3CTraceState } from '../../../../receiver/otlp/trace-state';
import type { Span } from '../../../../src/spans/span';
import { decodeTraceRequest, flattenSpans } from '../helpers/otlp-proto';
import { makeResource, makeSpan } from '../../../fixtures/spans';

const FLAG_HAS_IS_REMOTE = 0x100;
const FLAG_IS_REMOTE = 0x200;

function roundTrip(spans: Span[]) {
  const body = ProtobufTraceSerializer.serializeRequest(spans.map(toReadableSpan));
  if (!body) throw new Error('serializer returned nothing');
  return decodeTraceRequest(body);
}

describe('toReadableSpan', () => {
  const resource = makeResource('checkout', 4242);

  it('round-trips every field of a server span with a remote parent through OTLP protobuf', () => {
    // Every attribute value type: string, int, double, true and false.
    const attributes = {
      'http.request.method': 'POST',
      'http.response.status_code': 503,
      'server.port': 8080,
      'custom.ratio': 0.25,
      'custom.flag': true,
      'custom.false': false,
    };
    const span = makeSpan(resource, {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      parentSpanId: '00f067aa0ba902b7',
      traceFlags: 0x01,
      traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
      name: 'POST /orders',
      kind: 'SERVER',
      startTimeUnixNano: 1732500000123456789n,
      endTimeUnixNano: 1732500001987654321n,
      status: { code: 'ERROR', message: 'boom' },
      attributes,
    });
    const [rs] = roundTrip([span]);
    const [decoded] = flattenSpans([rs]);
    expect(decoded).toEqual({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      parentSpanId: '00f067aa0ba902b7',
      traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
      name: 'POST /orders',
      kind: 2, // SPAN_KIND_SERVER
      startTimeUnixNano: 1732500000123456789n,
      endTimeUnixNano: 1732500001987654321n,
      status: { code: 2, message: 'boom' },
      attributes,
      flags: 0x01 | FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE,
      events: 0,
      links: 0,
      resource: { 'service.name': 'checkout', 'process.pid': 4242, 'host.name': 'node-1' },
      scope: { name: 'spanbridge', version },
    });
  });

  it('round-trips a root client span: no parent, no tracestate, OK status, local context', () => {
    const span = makeSpan(resource, {
      kind: 'CLIENT',
      parentSpanId: '',
      traceFlags: 0x03,
      status: { code: 'OK' },
      startTimeUnixNano: 1n,
      endTimeUnixNano: 18446744073709551615n, // uint64 max: the top of the fixed64 range
    });
    const [decoded] = flattenSpans(roundTrip([span]));
    expect(decoded.parentSpanId).toBe('');
    expect(decoded.traceState).toBe('');
    expect(decoded.kind).toBe(3); // SPAN_KIND_CLIENT
    expect(decoded.status).toEqual({ code: 1, message: '' });
    expect(decoded.flags).toBe(0x03 | FLAG_HAS_IS_REMOTE);
    expect(decoded.startTimeUnixNano).toBe(1n);
    expect(decoded.endTimeUnixNano).toBe(18446744073709551615n);
  });

  it('marks a client span parent (the server span of the same process) as local', () => {
    const span = makeSpan(resource, { kind: 'CLIENT', parentSpanId: '1111111111111111' });
    const [decoded] = flattenSpans(roundTrip([span]));
    expect(decoded.parentSpanId).toBe('1111111111111111');
    expect(decoded.flags & FLAG_IS_REMOTE).toBe(0);
    expect(toReadableSpan(span).parentSpanContext).toMatchObject({
      traceId: span.traceId,
      spanId: '1111111111111111',
      isRemote: false,
    });
  });

  it('puts spans of two processes in two resourceSpans, each with one scopeSpans', () => {
    const other = makeResource('payments', 5151);
    const spans = [makeSpan(resource), makeSpan(other), makeSpan(resource), makeSpan(other), makeSpan(resource)];
    const request = roundTrip(spans);
    expect(request).toHaveLength(2);
    const byService = new Map(request.map((rs) => [rs.resource['service.name'], rs]));
    expect(byService.get('checkout')?.resource).toEqual(resource.attributes);
    expect(byService.get('payments')?.resource).toEqual(other.attributes);
    for (const rs of request) expect(rs.scopeSpans).toHaveLength(1);
    expect(byService.get('checkout')?.scopeSpans[0].spans.map((s) => s.spanId)).toEqual(
      [spans[0], spans[2], spans[4]].map((s) => s.spanId),
    );
    expect(byService.get('payments')?.scopeSpans[0].spans.map((s) => s.spanId)).toEqual(
      [spans[1], spans[3]].map((s) => s.spanId),
    );
  });

  it('shares one resource object per Resource and one scope object for everything', () => {
    const other = makeResource('payments', 5151);
    const a1 = toReadableSpan(makeSpan(resource));
    const a2 = toReadableSpan(makeSpan(resource));
    const b = toReadableSpan(makeSpan(other));
    expect(a1.resource).toBe(a2.resource);
    expect(a1.resource).not.toBe(b.resource);
    expect(a1.instrumentationScope).toBe(INSTRUMENTATION_SCOPE);
    expect(b.instrumentationScope).toBe(INSTRUMENTATION_SCOPE);
    expect(INSTRUMENTATION_SCOPE).toEqual({ name: 'spanbridge', version });
    expect(a1.resource.attributes).toEqual(resource.attributes);
    expect(a1.resource.asyncAttributesPending).toBe(false);
  });

  it('maps kind and status to the API enums', () => {
    const s = toReadableSpan(makeSpan(resource, { kind: 'CLIENT', status: { code: 'ERROR', message: 'x' } }));
    expect(s.kind).toBe(SpanKind.CLIENT);
    expect(s.status).toEqual({ code: SpanStatusCode.ERROR, message: 'x' });
    expect(toReadableSpan(makeSpan(resource)).kind).toBe(SpanKind.SERVER);
    expect(toReadableSpan(makeSpan(resource)).status).toEqual({ code: SpanStatusCode.UNSET });
    expect(toReadableSpan(makeSpan(resource)).spanContext().traceState).toBeUndefined();
  });

  it('gives the same exact timestamps through the JSON serializer', () => {
    const span = makeSpan(resource, { startTimeUnixNano: 1732500000123456789n, endTimeUnixNano: 1732500000999999999n });
    const json = JSON.parse(Buffer.from(JsonTraceSerializer.serializeRequest([toReadableSpan(span)])!).toString());
    const out = json.resourceSpans[0].scopeSpans[0].spans[0];
    expect(out.startTimeUnixNano).toBe('1732500000123456789');
    expect(out.endTimeUnixNano).toBe('1732500000999999999');
    expect(out.traceId).toBe(span.traceId);
  });
});

describe('unixNanosToHrTime', () => {
  it('splits without precision loss', () => {
    expect(unixNanosToHrTime(1732500000123456789n)).toEqual([1732500000, 123456789]);
    expect(unixNanosToHrTime(0n)).toEqual([0, 0]);
    expect(unixNanosToHrTime(999_999_999n)).toEqual([0, 999999999]);
    expect(unixNanosToHrTime(18446744073709551615n)).toEqual([18446744073, 709551615]);
  });
});

describe('W3CTraceState', () => {
  it('serializes exactly what it was given, and follows W3C rules when modified', () => {
    const ts = new W3CTraceState('congo=t61rcWkgMzE, rojo=00f067aa0ba902b7');
    expect(ts.serialize()).toBe('congo=t61rcWkgMzE, rojo=00f067aa0ba902b7');
    expect(ts.get('rojo')).toBe('00f067aa0ba902b7');
    expect(ts.get('nope')).toBeUndefined();
    expect(ts.set('rojo', 'x').serialize()).toBe('rojo=x,congo=t61rcWkgMzE');
    expect(ts.unset('congo').serialize()).toBe('rojo=00f067aa0ba902b7');
  });
});
