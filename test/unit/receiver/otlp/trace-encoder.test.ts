import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { toReadableSpanWithResource } from '../../../../receiver/otlp/to-readable-span';
import { encodeTraceRequest } from '../../../../receiver/otlp/trace-encoder';
import { ResourceMerger } from '../../../../receiver/resource-merge';
import type { Resource, Span } from '../../../../src/spans/span';
import { decodeTraceRequest, flattenSpans } from '../helpers/otlp-proto';
import { makeResource, makeSpan } from '../../../fixtures/spans';

/** What otlp-transformer's serializer produces for the same spans: the reference, byte for byte. */
function reference(spans: Span[], resourceOf: (s: Span) => Resource = (s) => s.resource): Buffer {
  const body = ProtobufTraceSerializer.serializeRequest(spans.map((s) => toReadableSpanWithResource(s, resourceOf(s))));
  if (!body) throw new Error('serializer returned nothing');
  return Buffer.from(body);
}

describe('encodeTraceRequest', () => {
  const a = makeResource('checkout', 4242);
  const b = makeResource('payments', 77);

  it('matches otlp-transformer byte for byte on every field and value type', () => {
    const spans = [
      makeSpan(a, {
        parentSpanId: '00f067aa0ba902b7',
        traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
        status: { code: 'ERROR', message: 'boom' },
        attributes: {
          'http.request.method': 'POST',
          'http.response.status_code': 503,
          'custom.negative': -42,
          'custom.big': 2 ** 40,
          'custom.ratio': 0.25,
          'custom.nan': Number.NaN,
          'custom.flag': true,
          'custom.false': false,
          'custom.empty': '',
          'ünïcödé.key': 'välue ✓ 𝄞',
        },
      }),
      makeSpan(b, { kind: 'CLIENT', parentSpanId: '1111111111111111', traceFlags: 0, status: { code: 'OK' } }),
      makeSpan(a, { name: 'x'.repeat(200), attributes: { 'url.full': 'y'.repeat(20_000) } }),
      makeSpan(a, { name: '', attributes: {}, endTimeUnixNano: 1n, startTimeUnixNano: 2n }),
      makeSpan(b, { traceId: '0AF7651916CD43DD8448EB211C80319C', attributes: { long: 'é'.repeat(70) } }),
    ];
    expect(Buffer.from(encodeTraceRequest(spans))).toEqual(reference(spans));
  });

  it('groups by the resource object resourceOf returns, in first-seen order', () => {
    const merger = new ResourceMerger({ 'deployment.environment': 'prod' });
    const spans = [makeSpan(a), makeSpan(b), makeSpan(a), makeSpan(b), makeSpan(a)];
    const resourceOf = (s: Span): Resource => merger.merge(s.resource);
    const body = encodeTraceRequest(spans, resourceOf);
    expect(Buffer.from(body)).toEqual(reference(spans, resourceOf));
    const decoded = decodeTraceRequest(body);
    expect(decoded).toHaveLength(2);
    expect(flattenSpans(decoded)).toHaveLength(5);
  });

  it('encodes large batches (buffer growth, multi-byte lengths at every level) identically', () => {
    const spans = Array.from({ length: 3000 }, (_, i) =>
      makeSpan(i % 3 === 0 ? a : b, { attributes: { 'url.path': `/items/${i}`, n: i, 'http.route': '/items/{id}' } }),
    );
    expect(Buffer.from(encodeTraceRequest(spans))).toEqual(reference(spans));
  });

  it('returns a copy that a later call does not overwrite', () => {
    const first = encodeTraceRequest([makeSpan(a)]);
    const saved = Buffer.from(first);
    encodeTraceRequest([makeSpan(b, { name: 'other' })]);
    expect(Buffer.from(first)).toEqual(saved);
  });
});
