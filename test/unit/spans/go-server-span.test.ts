import { goServerSpan } from '../../../src/spans/go-server-span';
import { httpSpanName, routeFromGoPattern, splitHostPort, methodAttributes } from '../../../src/spans/http-semconv';
import { FixedClock } from '../../../src/time/clock';
import { urlRedaction } from '../../../src/spans/url-redaction';
import { goServerFields } from '../../fixtures/records';

const resource = { attributes: { 'service.name': 'svc' } };
const clock = new FixedClock(1_700_000_000_000_000_000n);

const rec = goServerFields;

describe('Go server record -> SERVER span', () => {
  it('redacts query values (configured keys too) and drops Host userinfo', () => {
    const s = goServerSpan(rec({ query: 'api_key=k&ApiKey=k2&session=s&x=1', host: 'u:p@example.com:8080' }), resource, clock);
    expect(s.attributes['url.query']).toBe('api_key=REDACTED&ApiKey=REDACTED&session=s&x=1');
    expect(s.attributes['server.address']).toBe('example.com');
    expect(s.attributes['server.port']).toBe(8080);
    const custom = goServerSpan(rec({ query: 'session=s&sig=1' }), resource, clock, urlRedaction({ queryKeys: ['session'] }));
    expect(custom.attributes['url.query']).toBe('session=REDACTED&sig=1');
  });

  it('maps to semconv attributes, names by route, converts time in one place', () => {
    const s = goServerSpan(rec(), resource, clock);
    expect(s.name).toBe('GET /items/{id}');
    expect(s.kind).toBe('SERVER');
    expect(s.startTimeUnixNano).toBe(1_700_000_000_000_001_000n);
    expect(s.endTimeUnixNano).toBe(1_700_000_000_000_002_500n);
    expect(s.resource).toBe(resource);
    expect(s.status).toEqual({ code: 'UNSET' });
    expect(s.attributes).toEqual({
      'http.request.method': 'GET',
      'url.path': '/items/42',
      'url.query': 'x=1',
      'url.scheme': 'http',
      'http.route': '/items/{id}',
      'http.response.status_code': 200,
      'server.address': 'example.com',
      'server.port': 8080,
      'client.address': '::1',
      'network.peer.address': '::1',
      'network.peer.port': 5555,
      'network.protocol.version': '1.1',
      'user_agent.original': 'curl/8',
      'http.response.body.size': 12,
    });
  });

  it('never names a span by its raw path', () => {
    const s = goServerSpan(rec({ pattern: '' }), resource, clock);
    expect(s.name).toBe('GET');
    expect(s.attributes['http.route']).toBeUndefined();
  });

  it('5xx is an error with error.type; 4xx is not an error on the server', () => {
    expect(goServerSpan(rec({ status: 503 }), resource, clock)).toMatchObject({ status: { code: 'ERROR' }, attributes: { 'error.type': '503' } });
    const notFound = goServerSpan(rec({ status: 404 }), resource, clock);
    expect(notFound.status.code).toBe('UNSET');
    expect(notFound.attributes['error.type']).toBeUndefined();
  });

  it('unknown methods become _OTHER and name the span HTTP', () => {
    const s = goServerSpan(rec({ method: 'PURGE', pattern: '' }), resource, clock);
    expect(s.attributes['http.request.method']).toBe('_OTHER');
    expect(s.attributes['http.request.method_original']).toBe('PURGE');
    expect(s.name).toBe('HTTP');
  });

  it('keeps the kernel-decided ids and remote parent', () => {
    const s = goServerSpan(rec({ parentSpanId: 'c'.repeat(16), remoteParent: true, tracestate: 'k=v' }), resource, clock);
    expect(s).toMatchObject({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), parentSpanId: 'c'.repeat(16), traceState: 'k=v' });
  });

  it('an end before the start (clock oddity) yields a zero-length span, not a negative one', () => {
    const s = goServerSpan(rec({ endNs: 10n }), resource, clock);
    expect(s.endTimeUnixNano).toBe(s.startTimeUnixNano);
  });
});

describe('http semconv helpers', () => {
  it.each([
    ['GET /items/{id}', '/items/{id}'],
    ['/static/', '/static/'],
    ['example.com/a', '/a'],
    ['POST example.com/b/{x...}', '/b/{x...}'],
    ['', ''],
  ])('route of pattern %p is %p', (pattern, route) => expect(routeFromGoPattern(pattern)).toBe(route));

  it.each([
    ['host:80', { host: 'host', port: 80 }],
    ['[2001:db8::1]:443', { host: '2001:db8::1', port: 443 }],
    ['host', { host: 'host' }],
    ['2001:db8::1', { host: '2001:db8::1' }],
    ['host:99999', { host: 'host' }],
    ['', { host: '' }],
  ])('splitHostPort(%p)', (input, out) => expect(splitHostPort(input)).toEqual(out));

  it('names', () => {
    expect(httpSpanName('GET', '')).toBe('GET');
    expect(httpSpanName('FOO', '/x')).toBe('HTTP /x');
    expect(methodAttributes('QUERY')).toEqual({ 'http.request.method': 'QUERY' });
  });
});
