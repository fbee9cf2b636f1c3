/**
 * W3C tracestate as the kernel sends it on (bpf/common/trace_context.h, `ts_feed`): the values of all
 * `tracestate` headers combined in order, whitespace around members removed, empty members left
 * out, members joined by ','. Dropped as a whole ('') when any member is invalid, when there are
 * more than 32, or when the normalised list is longer than 512 characters, so a span never
 * reports a tracestate that was not propagated.
 */
export const TRACESTATE_MAX = 512;
const MEMBERS_MAX = 32;
const KEY = /^[a-z0-9][a-z0-9_\-*/@]{0,255}$/;
// 1..256 characters of 0x20-0x7e except ',' and '=', the last one not a space
const VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

export function normalizeTracestate(combined: string): string {
  const members: string[] = [];
  for (const raw of combined.split(',')) {
    const m = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (m === '') continue;
    const eq = m.indexOf('=');
    if (eq < 0) return '';
    const key = m.slice(0, eq);
    const value = m.slice(eq + 1);
    if (!KEY.test(key) || !VALUE.test(value)) return '';
    members.push(m);
    if (members.length > MEMBERS_MAX) return '';
  }
  const out = members.join(',');
  return out.length > TRACESTATE_MAX ? '' : out;
}
