import { goClientSpan } from '../../../src/spans/go-client-span';
import { FixedClock } from '../../../src/time/clock';
import { urlRedaction } from '../../../src/spans/url-redaction';
import { goClientFields } from '../../fixtures/records';

const rec = goClientFields;

describe('Go client record -> CLIENT span', () => {
  const clock = new FixedClock(0n);
  const resource = { attributes: {} };

  it('has the required client attributes and a low-cardinality name', () => {
    const s = goClientSpan(rec(), resource, clock);
    expect(s.kind).toBe('CLIENT');
    expect(s.name).toBe('GET');
    expect(s.attributes).toEqual({
      'http.request.method': 'GET',
      'url.full': 'http://backend:8081/price/apple?q=1',
      'url.scheme': 'http',
      'server.address': 'backend',
      'server.port': 8081,
      'http.response.status_code': 200,
      'spanbridge.propagation': 'injected',
    });
    expect(s.parentSpanId).toBe('c'.repeat(16));
  });

  it('says how (and whether) the context went downstream, and when the span ended at the head', () => {
    for (const p of ['injected-socket', 'replaced', 'replaced-socket', 'app', 'app-invalid', 'skipped'] as const) {
      expect(goClientSpan(rec({ propagation: p }), resource, clock).attributes['spanbridge.propagation']).toBe(p);
    }
    expect(goClientSpan(rec({ propagation: 'none' }), resource, clock).attributes['spanbridge.propagation']).toBeUndefined();
    expect(goClientSpan(rec(), resource, clock).attributes['spanbridge.response.body_closed']).toBeUndefined();
    expect(goClientSpan(rec(), resource, clock, undefined, false).attributes['spanbridge.response.body_closed']).toBe(false);
  });

  it('4xx and 5xx are errors on client spans; transport errors too; default ports filled', () => {
    expect(goClientSpan(rec({ status: 404 }), resource, clock).status.code).toBe('ERROR');
    const t = goClientSpan(rec({ status: 0, transportError: true, host: 'x', scheme: 'https' }), resource, clock);
    expect(t.status.code).toBe('ERROR');
    expect(t.attributes['error.type']).toBe('_OTHER');
    expect(t.attributes['server.port']).toBe(443);
    expect(t.attributes['http.response.status_code']).toBeUndefined();
  });

  it('redacts query values and never exports userinfo in url.full or server.address', () => {
    const s = goClientSpan(rec({ host: 'u:pw@backend:8081', query: 'Signature=abc&AWSAccessKeyId=AKIA&x=1' }), resource, clock);
    expect(s.attributes['url.full']).toBe('http://REDACTED:REDACTED@backend:8081/price/apple?Signature=REDACTED&AWSAccessKeyId=REDACTED&x=1');
    expect(s.attributes['server.address']).toBe('backend');
    expect(s.attributes['server.port']).toBe(8081);
    const all = goClientSpan(rec({ query: 'a=1' }), resource, clock, urlRedaction({ query: 'all' }));
    expect(all.attributes['url.full']).toBe('http://backend:8081/price/apple?a=REDACTED');
  });
});
