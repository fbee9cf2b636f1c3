/**
 * The user-space twin of the kernel's tracestate reader (bpf/common/trace_context.h): what a span reports
 * must be what the agent sends on. Cases from the W3C trace-context test suite.
 */
import { normalizeTracestate } from '../../../src/spans/w3c-tracestate';

describe('normalizeTracestate (W3C list rules, as the kernel applies them)', () => {
  it('combines, trims whitespace around members, drops empty members', () => {
    expect(normalizeTracestate('foo=1 \t , \t bar=2, \t baz=3')).toBe('foo=1,bar=2,baz=3');
    expect(normalizeTracestate('\t foo=1 \t')).toBe('foo=1');
    expect(normalizeTracestate('foo=1, , ,bar=2,')).toBe('foo=1,bar=2');
    expect(normalizeTracestate('')).toBe('');
    expect(normalizeTracestate(' , ')).toBe('');
  });

  it('accepts every allowed character, multi-tenant keys and limits at their edge', () => {
    const value = Array.from({ length: 0x7e - 0x20 + 1 }, (_, i) => String.fromCharCode(0x20 + i)).filter((c) => c !== ',' && c !== '=').join('');
    const key = 'abcdefghijklmnopqrstuvwxyz0123456789_-*/@a-z0-9_-*/';
    expect(normalizeTracestate(`${key}=${value}`)).toBe(`${key}=${value}`);
    expect(normalizeTracestate(`foo@=1,foo@@bar=1,${'z'.repeat(256)}=1`)).toBe(`foo@=1,foo@@bar=1,${'z'.repeat(256)}=1`);
    expect(normalizeTracestate(`k=${'v'.repeat(256)}`)).toBe(`k=${'v'.repeat(256)}`);
    const m32 = Array.from({ length: 32 }, (_, i) => `b${i}=1`).join(',');
    expect(normalizeTracestate(m32)).toBe(m32);
  });

  it('drops the whole list when a member is invalid, there are more than 32, or it is longer than 512', () => {
    for (const bad of ['foo =1', 'FOO=1', 'foo.bar=1', '@foo=1,bar=2', 'foo=bar=baz', 'foo=,bar=3', 'foo', `${'z'.repeat(257)}=1`, `k=${'v'.repeat(257)}`, 'k=a\tb', 'k= ']) {
      expect([bad, normalizeTracestate(bad)]).toEqual([bad, '']);
    }
    expect(normalizeTracestate(Array.from({ length: 33 }, (_, i) => `b${i}=1`).join(','))).toBe('');
    expect(normalizeTracestate(Array.from({ length: 3 }, (_, i) => `k${i}=${'v'.repeat(200)}`).join(','))).toBe('');
  });
});
