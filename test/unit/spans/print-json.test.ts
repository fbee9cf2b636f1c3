import { spanToJsonLine } from '../../../src/spans/print-json';
import type { Span } from '../../../src/spans/span';

const resource = { attributes: { 'service.name': 'checkout', 'process.pid': 42 } };

const base: Span = {
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: 'b7ad6b7169203331',
  parentSpanId: '00f067aa0ba902b7',
  traceFlags: 1,
  traceState: 'rojo=00f067aa0ba902b7',
  name: 'GET /users/{id}',
  kind: 'SERVER',
  startTimeUnixNano: 1732500000123456789n,
  endTimeUnixNano: 1732500000223456789n,
  status: { code: 'ERROR', message: 'Internal Server Error\nline 2' },
  attributes: { 'http.request.method': 'GET', 'http.response.status_code': 500, 'custom.flag': true, 'x.ratio': 0.5 },
  resource,
};

describe('spanToJsonLine', () => {
  it('prints exactly the documented fields, in order, on one line', () => {
    const line = spanToJsonLine(base);
    expect(line).not.toContain('\n');
    const parsed = JSON.parse(line);
    expect(Object.keys(parsed)).toEqual([
      'traceId',
      'spanId',
      'parentSpanId',
      'name',
      'kind',
      'startTimeUnixNano',
      'endTimeUnixNano',
      'status',
      'attributes',
      'resource',
      'traceFlags',
      'traceState',
    ]);
    expect(parsed).toEqual({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      parentSpanId: '00f067aa0ba902b7',
      name: 'GET /users/{id}',
      kind: 'SERVER',
      startTimeUnixNano: '1732500000123456789',
      endTimeUnixNano: '1732500000223456789',
      status: { code: 'ERROR', message: 'Internal Server Error\nline 2' },
      attributes: { 'http.request.method': 'GET', 'http.response.status_code': 500, 'custom.flag': true, 'x.ratio': 0.5 },
      resource: { 'service.name': 'checkout', 'process.pid': 42 },
      traceFlags: 1,
      traceState: 'rojo=00f067aa0ba902b7',
    });
  });

  it('prints a root client span with an unset status without a message', () => {
    const parsed = JSON.parse(
      spanToJsonLine({ ...base, parentSpanId: '', kind: 'CLIENT', status: { code: 'UNSET' }, traceState: '' }),
    );
    expect(parsed.parentSpanId).toBe('');
    expect(parsed.kind).toBe('CLIENT');
    expect(parsed.status).toEqual({ code: 'UNSET' });
    expect(parsed.traceState).toBe('');
  });

  it('keeps uint64 timestamps exact as decimal strings', () => {
    const parsed = JSON.parse(spanToJsonLine({ ...base, startTimeUnixNano: 0n, endTimeUnixNano: 18446744073709551615n }));
    expect(parsed.startTimeUnixNano).toBe('0');
    expect(parsed.endTimeUnixNano).toBe('18446744073709551615');
  });
});
