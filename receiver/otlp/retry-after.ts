/**
 * The `Retry-After` response header (RFC 9110 §10.2.3): either a number of seconds or an
 * HTTP-date. The retry policy (a later stage) honours it for 429/502/503/504, as the OTLP/HTTP
 * specification asks; unusable values yield `undefined` so the policy falls back to its backoff.
 */

/** Delay in milliseconds (>= 0), or `undefined` when the header is absent or unusable. */
export function parseRetryAfterMs(value: string | string[] | undefined, nowMs: number = Date.now()): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!raw) return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  // An HTTP-date always names a weekday or month; requiring a letter keeps Date.parse from
  // accepting things like "-5" or "1.5" as dates.
  if (!/[A-Za-z]/.test(raw)) return undefined;
  const at = Date.parse(raw);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
