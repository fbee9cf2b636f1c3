import { attributesKey } from '../../../../receiver/metrics/histogram-store';
import { prometheusName } from '../../../../receiver/prometheus/registry';
import type { Attributes } from '../../../../src/spans/span';

describe('attributesKey', () => {
  it('is the same for the same set in any key order', () => {
    expect(attributesKey({ b: 1, a: 'x', c: true })).toBe(attributesKey({ c: true, a: 'x', b: 1 }));
  });

  it('tells values of different types and different sets apart', () => {
    const sets: Attributes[] = [
      {},
      { s: '200' },
      { s: 200 },
      { s: 'true' },
      { s: true },
      { s: 'a,b' },
      { 's:"x"': 'y' },
      { s: 'x', t: 'y' },
      { s: 'x,"t":"y"' },
      { s: '' },
    ];
    const keys = sets.map(attributesKey);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('prometheusName', () => {
  it('maps OpenTelemetry names to Prometheus names, the same on every call', () => {
    for (let i = 0; i < 2; i++) {
      expect(prometheusName('http.response.status_code')).toBe('http_response_status_code');
      expect(prometheusName('9lives')).toBe('_9lives');
      expect(prometheusName('a-b:c')).toBe('a_b:c');
    }
  });
});
