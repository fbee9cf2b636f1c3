import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { toReadableSpanWithResource } from '../../../../receiver/otlp/to-readable-span';
import { writerPoolState } from '../../../../receiver/otlp/proto-writer';
import { encodeTraceRequest, TraceBatch } from '../../../../receiver/otlp/trace-encoder';
import { ResourceMerger } from '../../../../receiver/resource-merge';
import { estimateSpanBytes } from '../../../../receiver/span-size';
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

  it('ids the native hex decoder stops on (not hex, odd length, non-ASCII) encode as the reference does', () => {
    const spans = [
      makeSpan(a, { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', parentSpanId: 'ABCDEF0123456789' }),
      makeSpan(a, { traceId: '4bf92f3577b34da6a3ce929d0e0e473g', spanId: 'zz', parentSpanId: '00f067aa0ba902b' }),
      makeSpan(b, { traceId: '4bf92f3577b34da6-3ce929d0e0e4736', spanId: '00f067aa0ba9 2b7', parentSpanId: 'é0f067aa0ba902b7' }),
      makeSpan(b, { traceId: '', spanId: 'G0f067aa0ba902b7', parentSpanId: '0' }),
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

describe('TraceBatch (spans encoded as they are pushed)', () => {
  const a = makeResource('checkout', 4242);
  const b = makeResource('payments', 77);

  /** Spans whose attributes repeat (cached attribute bytes) and do not (url.path, port: caching given up per key). */
  function traffic(n: number): Span[] {
    return Array.from({ length: n }, (_, i) =>
      makeSpan(i % 5 === 0 ? b : a, {
        kind: i % 7 === 0 ? 'CLIENT' : 'SERVER',
        parentSpanId: i % 3 === 0 ? '' : '00f067aa0ba902b7',
        traceState: i % 11 === 0 ? 'congo=t61rcWkgMzE' : '',
        status: i % 13 === 0 ? { code: 'ERROR', message: 'boom' } : { code: 'UNSET' },
        attributes: {
          'http.request.method': i % 4 === 0 ? 'POST' : 'GET',
          'url.path': `/items/${i}`,
          'url.scheme': 'http',
          'http.route': '/items/{id}',
          'server.address': '127.0.0.1',
          'server.port': 8080,
          'network.peer.port': 30000 + i,
          'http.response.status_code': i % 9 === 0 ? 503 : 200,
          'custom.number_or_string': i % 2 === 0 ? 200 : '200',
          'custom.zero': i % 2 === 0 ? 0 : -0,
          'custom.ratio': i % 3 === 0 ? Number.NaN : 0.25,
          'custom.flag': i % 2 === 0,
          'ünïcödé': 'välue ✓',
          'thread.id': 1000 + (i % 40),
        },
      }),
    );
  }

  it('matches otlp-transformer byte for byte over many batches (cached and uncached attributes, two resources)', () => {
    const merger = new ResourceMerger({ 'deployment.environment': 'prod' });
    const resourceOf = (s: Span): Resource => merger.merge(s.resource);
    const spans = traffic(2000);
    for (let from = 0; from < spans.length; from += 500) {
      const part = spans.slice(from, from + 500);
      const batch = new TraceBatch(resourceOf);
      for (const s of part) batch.push(s);
      expect(batch.length).toBe(part.length);
      expect(Buffer.from(batch.finish())).toEqual(reference(part, resourceOf));
    }
  });

  it('spans whose attribute keys change order, count and kind from one span to the next encode as the reference does', () => {
    const shapes: Array<Record<string, unknown>> = [
      { 'http.request.method': 'GET', 'url.path': '/a', 'http.response.status_code': 200 },
      { 'http.request.method': 'GET', 'http.response.status_code': 200 },
      { 'url.path': '/a', 'http.request.method': 'GET', 'http.response.status_code': 200 },
      { extra: 'x', 'http.request.method': 'GET', 'url.path': '/a', 'http.response.status_code': 200, nested: { 'http.request.method': 'GET', n: 1 } },
      { 'http.request.method': 'GET', 'url.path': '/a', 'http.response.status_code': '200', list: ['a', 1, true] },
      { 'http.request.method': 'GET', 'url.path': '/a', 'http.response.status_code': 200, ratio: Number.NaN },
      { 'http.request.method': 'GET', 'url.path': '/a', 'http.response.status_code': 200, ratio: Number.NaN },
      {},
      { 'http.request.method': 'GET', 'url.path': '/a', 'http.response.status_code': 200, 'url.full': 'z'.repeat(300) },
      { 'http.request.method': 'GET', 'url.path': '/a', 'http.response.status_code': 200, 'url.full': 'z'.repeat(300) },
    ];
    const spans: Span[] = [];
    for (let k = 0; k < 3; k++) for (const [i, attributes] of shapes.entries()) spans.push(makeSpan(i % 2 ? a : b, { attributes: { ...attributes } as Span['attributes'] }));
    const batch = new TraceBatch();
    for (const s of spans) batch.push(s);
    expect(Buffer.from(batch.finish())).toEqual(reference(spans));
  });

  it('a span that fails half-way through its attributes leaves nothing stale for the next one', () => {
    const attributes = { 'http.request.method': 'GET', 'url.path': '/same', 'http.response.status_code': 200 };
    const first = makeSpan(a, { attributes: { ...attributes } });
    const failing = { ...attributes, 'url.path': '/other' } as Record<string, unknown>;
    Object.defineProperty(failing, 'boom', { enumerable: true, get: () => { throw new Error('getter'); } });
    const bad = makeSpan(a, { attributes: failing as Span['attributes'] });
    const after = makeSpan(a, { attributes: { ...attributes, 'url.path': '/other' } });
    const last = makeSpan(a, { attributes: { ...attributes } });
    const batch = new TraceBatch();
    batch.push(first);
    expect(() => batch.push(bad)).toThrow('getter');
    batch.push(after);
    batch.push(last);
    expect(Buffer.from(batch.finish())).toEqual(reference([first, after, last]));
  });

  it('byteLength counts the spans\' encoded bytes; a span that fails adds none', () => {
    const batch = new TraceBatch();
    expect(batch.byteLength).toBe(0);
    batch.push(makeSpan(a));
    const one = batch.byteLength;
    expect(one).toBeGreaterThan(50);
    expect(() => batch.push({ ...makeSpan(a), startTimeUnixNano: 'not a bigint' } as unknown as Span)).toThrow();
    expect(batch.byteLength).toBe(one);
    batch.push(makeSpan(b));
    const body = batch.finish();
    // The request adds a resource and a scope per group, and the lengths framing them.
    expect(body.length).toBeGreaterThan(batch.byteLength);
    expect(batch.byteLength).toBeGreaterThan(one);
  });

  it('a span that cannot be encoded throws and leaves the batch as it was', () => {
    const good = [makeSpan(a), makeSpan(b), makeSpan(a)];
    const bad = { ...makeSpan(a), startTimeUnixNano: 'not a bigint' } as unknown as Span;
    const badNewResource = { ...makeSpan(makeResource('other', 1)), endTimeUnixNano: undefined } as unknown as Span;
    const batch = new TraceBatch();
    batch.push(good[0]);
    expect(() => batch.push(bad)).toThrow();
    batch.push(good[1]);
    expect(() => batch.push(badNewResource)).toThrow();
    batch.push(good[2]);
    expect(batch.length).toBe(3);
    const body = batch.finish();
    expect(Buffer.from(body)).toEqual(reference(good));
    expect(decodeTraceRequest(body)).toHaveLength(2);
  });

  describe('finishInPlace (the body a view of the writer until release)', () => {
    const oneResource = (n: number, from = 0): Span[] => traffic(n + from).slice(from).map((s) => ({ ...s, resource: a }));

    it('one resource: the reference bytes, framed in the writer; held until release while later batches copy runs from it', () => {
      const spans = oneResource(400);
      const first = new TraceBatch();
      for (const s of spans) first.push(s);
      const done = first.finishInPlace();
      const saved = Buffer.from(done.body);
      expect(saved).toEqual(reference(spans));
      // Not released: later batches take other writers (and copy runs from this one's bytes).
      const more = oneResource(300, 400);
      const second = new TraceBatch();
      for (const s of more) second.push(s);
      const third = new TraceBatch();
      for (const s of oneResource(50, 700)) third.push(s);
      expect(Buffer.from(done.body)).toEqual(saved);
      expect(Buffer.from(second.finish())).toEqual(reference(more));
      done.release();
      done.release(); // idempotent: the writer goes back once
      third.discard();
      // After the release, spans whose runs were remembered in that writer encode anew.
      const after = oneResource(40, 750);
      const fourth = new TraceBatch();
      for (const s of after) fourth.push(s);
      const body = fourth.finishInPlace();
      expect(Buffer.from(body.body)).toEqual(reference(after));
      body.release();
    });

    it('several resources: a copy (release does nothing), the reference bytes', () => {
      const spans = traffic(200);
      const batch = new TraceBatch();
      for (const s of spans) batch.push(s);
      const done = batch.finishInPlace();
      expect(Buffer.from(done.body)).toEqual(reference(spans));
      done.release();
      const again = new TraceBatch();
      for (const s of traffic(10)) again.push(s);
      again.discard();
      expect(Buffer.from(done.body)).toEqual(reference(spans));
    });

    it('a group left empty by a span that failed (a second resource) does not keep the request from the in-place path', () => {
      const good = oneResource(5);
      const batch = new TraceBatch();
      batch.push(good[0]!);
      expect(() => batch.push({ ...makeSpan(b), endTimeUnixNano: undefined } as unknown as Span)).toThrow();
      for (const s of good.slice(1)) batch.push(s);
      const done = batch.finishInPlace();
      expect(Buffer.from(done.body)).toEqual(reference(good));
      expect(() => batch.push(good[0]!)).toThrow(/after finish/);
      done.release();
    });

    it('a resource with many attributes (framing longer than one length byte) and an empty batch', () => {
      const big = makeResource('x'.repeat(300), 9);
      const spans = Array.from({ length: 3 }, () => makeSpan(big));
      const batch = new TraceBatch();
      for (const s of spans) batch.push(s);
      const done = batch.finishInPlace();
      expect(Buffer.from(done.body)).toEqual(reference(spans));
      done.release();
      const empty = new TraceBatch().finishInPlace();
      expect(empty.body.length).toBe(0);
      empty.release();
    });
  });

  it('the writer pool keeps at most 8 MiB of free buffers (a drained outage queue of ~1 MB batches gives most back)', () => {
    const batches = Array.from({ length: 14 }, (_, k) => {
      const batch = new TraceBatch();
      for (let i = 0; i < 50; i++) batch.push(makeSpan(a, { attributes: { 'url.full': `${k}/${i}/${'p'.repeat(20_000)}` } }));
      return batch;
    });
    const held = batches.map((b) => b.finishInPlace());
    for (const h of held) h.release();
    const state = writerPoolState();
    expect(state.bytes).toBeLessThanOrEqual(8 * 1024 * 1024);
    expect(state.writers).toBeGreaterThan(0);
    expect(state.writers).toBeLessThan(14);
    // Writers taken from the pool are accounted for when they leave it.
    const again = new TraceBatch();
    again.push(makeSpan(a));
    expect(writerPoolState().bytes).toBeLessThan(state.bytes);
    again.discard();
  });

  it('finished bodies are not overwritten by later batches reusing the pooled buffers', () => {
    const first = new TraceBatch();
    for (const s of traffic(300)) first.push(s);
    const body = first.finish();
    const saved = Buffer.from(body);
    for (let k = 0; k < 3; k++) {
      const next = new TraceBatch();
      for (const s of traffic(300)) next.push(s);
      if (k === 1) next.discard();
      else next.finish();
    }
    expect(Buffer.from(body)).toEqual(saved);
    expect(() => first.push(makeSpan(a))).toThrow(/after finish/);
  });

  it('runs copied from where the last span was written: two batches filled in turn, one finished (its writer pooled and taken again) and one discarded while the other goes on, buffers growing', () => {
    // The last span's attribute bytes are read where they were written (another resource's or
    // batch's writer, or a grown buffer), and never once that writer went back to the pool.
    const spans = traffic(1200).map((s, i) => (i % 17 === 0 ? { ...s, attributes: { ...s.attributes, 'url.full': `http://x/${'z'.repeat(200 + (i % 7))}` } } : s));
    let x = new TraceBatch();
    let y = new TraceBatch();
    let xs: Span[] = [];
    let ys: Span[] = [];
    for (const [i, span] of spans.entries()) {
      if (i % 3 === 0) {
        y.push(span);
        ys.push(span);
      } else {
        x.push(span);
        xs.push(span);
      }
      // Now and then batches of one or two spans: the next batch's writer is the same buffer, written over from its start.
      if (i % 250 === 249 || (i % 250 < 12 && i % 3 !== 0)) {
        expect(Buffer.from(x.finish())).toEqual(reference(xs));
        x = new TraceBatch();
        xs = [];
      }
      if (i % 400 === 399) {
        y.discard();
        y = new TraceBatch();
        ys = [];
      }
    }
    expect(Buffer.from(x.finish())).toEqual(reference(xs));
    expect(Buffer.from(y.finish())).toEqual(reference(ys));
  });

  it('server and client spans in turn (a service calling another): each kind copies its own last span\'s runs, byte for byte', () => {
    // One memory per kind: a client span's runs come from the last client span, wherever (which
    // batch, which writer) it was written, even with server spans (and a failing one) between.
    const server = (i: number): Span =>
      makeSpan(a, {
        attributes: { 'http.request.method': 'GET', 'network.protocol.version': '1.1', 'url.path': '/items/1', 'http.route': '/', 'network.peer.port': 40000 + (i % 4), 'http.response.status_code': i % 10 === 0 ? 500 : 200, 'thread.id': 7 },
      });
    const client = (i: number): Span =>
      makeSpan(i % 6 === 0 ? b : a, {
        kind: 'CLIENT',
        parentSpanId: '00f067aa0ba902b7',
        attributes: { 'http.request.method': 'GET', 'network.protocol.version': '1.1', 'server.address': '127.0.0.1', 'url.full': `http://127.0.0.1:9090/items/${i % 3}`, 'http.response.status_code': 200, 'spanbridge.parent.source': 'thread' },
      });
    let batch = new TraceBatch();
    let pushed: Span[] = [];
    for (let i = 0; i < 900; i++) {
      for (const span of [server(i), client(i)]) {
        batch.push(span);
        pushed.push(span);
      }
      if (i % 50 === 25) {
        const failing = { ...server(i).attributes } as Record<string, unknown>;
        Object.defineProperty(failing, 'boom', { enumerable: true, get: () => { throw new Error('getter'); } });
        expect(() => batch.push(makeSpan(a, { attributes: failing as Span['attributes'] }))).toThrow('getter');
      }
      if (i % 128 === 127) {
        expect(Buffer.from(batch.finish())).toEqual(reference(pushed));
        batch = new TraceBatch();
        pushed = [];
      }
    }
    expect(Buffer.from(batch.finish())).toEqual(reference(pushed));
  });

  it('values that change between spans to fields of the same length (written over the copied run) and of other lengths: the reference bytes', () => {
    // Cached values of one length (paths, ports, thread ids, NaN found in the map), uncached ones of
    // the same length (a key whose values stopped being cached), lengths that change, keys that come
    // and go; batches of varied sizes, so runs are copied from this writer and from others.
    const spans: Span[] = [];
    for (let i = 0; i < 1500; i++) {
      const attributes: Record<string, unknown> = {
        'http.request.method': i % 50 === 0 ? 'POST' : 'GET',
        'url.path': `/items/${i % 4}`,
        'network.peer.port': 40000 + (i % 16),
        'thread.id': 100 + (i % 16),
        'http.response.status_code': i % 9 === 0 ? 503 : 200,
        uncached: `u${String(i).padStart(5, '0')}`,
        ratio: i % 2 ? Number.NaN : 0.5,
        size: i % 7 === 0 ? 1000 + i : 100 + (i % 20),
        'url.scheme': 'http',
      };
      if (i % 3 === 0) attributes['spanbridge.parent.source'] = 'traceparent';
      spans.push(makeSpan(a, { kind: i % 11 === 0 ? 'CLIENT' : 'SERVER', attributes: attributes as Span['attributes'] }));
    }
    let from = 0;
    for (let k = 1; from < spans.length; k++) {
      const part = spans.slice(from, from + 7 * k);
      from += part.length;
      const batch = new TraceBatch();
      for (const s of part) batch.push(s);
      expect(Buffer.from(batch.finish())).toEqual(reference(part));
    }
  });

  it('lastEstimate is the queue estimate of the span just pushed (estimateSpanBytes), summed in the encoder\'s walk', () => {
    const batch = new TraceBatch();
    for (const s of traffic(300)) {
      batch.push(s);
      expect(batch.lastEstimate).toBe(estimateSpanBytes(s));
    }
    batch.discard();
  });

  it('undoLast takes the last span back out: the request is as if it had never been pushed, and the spans after it encode as the reference does', () => {
    const spans = traffic(400);
    const kept: Span[] = [];
    const batch = new TraceBatch();
    for (const [i, s] of spans.entries()) {
      batch.push(s);
      const length = batch.length;
      if (i % 4 === 1 || i % 29 === 0) {
        const bytes = batch.byteLength;
        batch.undoLast();
        expect(batch.length).toBe(length - 1);
        expect(batch.byteLength).toBeLessThan(bytes);
        expect(() => batch.undoLast()).toThrow(/nothing to undo/);
      } else {
        kept.push(s);
      }
    }
    // A span of a resource seen for the first time, undone: its group stays empty.
    batch.push(makeSpan(makeResource('once', 3)));
    batch.undoLast();
    expect(Buffer.from(batch.finish())).toEqual(reference(kept));
    expect(() => batch.undoLast()).toThrow(/nothing to undo/);
    // In place too (one resource), after an undo of the first span.
    const one = traffic(50).map((s) => ({ ...s, resource: a }));
    const inPlace = new TraceBatch();
    inPlace.push(one[0]!);
    inPlace.undoLast();
    for (const s of one.slice(1)) inPlace.push(s);
    const done = inPlace.finishInPlace();
    expect(Buffer.from(done.body)).toEqual(reference(one.slice(1)));
    done.release();
  });

  describe('spans with their ids as words (the fields around the attributes written after one ensure)', () => {
    /** `span` with `ids`: the words of its hex ids, as the syscall path's spans carry them. */
    function withWords(span: Span): Span {
      const b = Buffer.alloc(32);
      b.write(span.traceId, 0, 'hex');
      b.write(span.spanId, 16, 'hex');
      if (span.parentSpanId !== '') b.write(span.parentSpanId, 24, 'hex');
      const w = (i: number): number => b.readUInt32LE(4 * i);
      return { ...span, ids: { w0: w(0), w1: w(1), w2: w(2), w3: w(3), w4: w(4), w5: w(5), w6: w(6), w7: w(7), hasParent: span.parentSpanId !== '' } };
    }

    it('names (cached, unicode, long, empty, changing), tracestates, status messages, flags, kinds: the reference bytes', () => {
      const names = ['GET /items/{id}', 'GET', 'POST /ünï/{id}', 'x'.repeat(300), '', 'GET /items/{id}'];
      const spans: Span[] = [];
      for (let i = 0; i < 600; i++) {
        spans.push(
          withWords(
            makeSpan(i % 7 === 0 ? b : a, {
              name: names[i % names.length]!.slice(0),
              kind: i % 3 === 0 ? 'CLIENT' : 'SERVER',
              parentSpanId: i % 4 === 0 ? '' : `${(i % 10).toString(16)}0f067aa0ba902b7`.slice(0, 16),
              traceState: i % 11 === 0 ? 'congo=t61rcWkgMzE' : '',
              traceFlags: i % 5 === 0 ? 0 : 1,
              status: i % 13 === 0 ? { code: 'ERROR', message: 'boom ✓' } : i % 17 === 0 ? { code: 'OK' } : i % 19 === 0 ? { code: 'ERROR' } : { code: 'UNSET' },
              startTimeUnixNano: 1732500000123456789n + BigInt(i),
              endTimeUnixNano: i % 23 === 0 ? 1n : 1732500000223456789n + BigInt(i * 1000),
              attributes: {
                'http.request.method': i % 4 === 0 ? 'POST' : 'GET',
                'url.path': `/items/${i % 9}`,
                'server.port': i % 2 ? 8080 : 0,
                'network.peer.port': 30000 + (i % 40),
                big: i % 3 === 0 ? 2 ** 32 - 1 : 2 ** 32,
                neg: i % 2 ? -1 : -0,
                ratio: 0.5,
                long: i % 6 === 0 ? 'l'.repeat(120 + (i % 20)) : 'short',
                uni: i % 8 === 0 ? 'välue' : 'value',
              },
            }),
          ),
        );
      }
      for (let from = 0; from < spans.length; from += 150) {
        const part = spans.slice(from, from + 150);
        const batch = new TraceBatch();
        for (const s of part) batch.push(s);
        expect(Buffer.from(batch.finish())).toEqual(reference(part));
      }
    });

    it('more distinct names than the name cache holds still encode as the reference does', () => {
      const spans = Array.from({ length: 1500 }, (_, i) => withWords(makeSpan(a, { name: `GET /r${i}/{id}`, parentSpanId: '00f067aa0ba902b7' })));
      expect(Buffer.from(encodeTraceRequest(spans))).toEqual(reference(spans));
      const again = spans.slice(0, 40).map((_, i) => withWords(makeSpan(a, { name: `GET /r${i}/{id}` }))).concat(spans.slice(1400, 1440));
      expect(Buffer.from(encodeTraceRequest(again))).toEqual(reference(again));
    });

    it('a span with words whose times cannot be encoded throws and leaves the batch as it was', () => {
      const good = [withWords(makeSpan(a)), withWords(makeSpan(a, { kind: 'CLIENT' }))];
      const bad = { ...withWords(makeSpan(a)), endTimeUnixNano: undefined } as unknown as Span;
      const batch = new TraceBatch();
      batch.push(good[0]!);
      expect(() => batch.push(bad)).toThrow();
      batch.push(good[1]!);
      expect(Buffer.from(batch.finish())).toEqual(reference(good));
    });
  });

  it('an empty batch is an empty request', () => {
    expect(new TraceBatch().finish()).toHaveLength(0);
  });
});
