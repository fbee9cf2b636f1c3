/**
 * A Go net/http client record -> a CLIENT span (stable HTTP client semconv). Pure; ids decided in
 * the kernel (the same ids written into the outgoing traceparent).
 */
import type { GoHttpClientRecord } from '../events/go-http-client';
import type { Clock } from '../time/clock';
import { httpSpanName, httpStatus, setMethodAttributes, splitHostPort } from './http-semconv';
import { kernelSpan } from './kernel-span';
import type { Attributes, Resource, Span } from './span';
import { DEFAULT_URL_REDACTION, hostOfAuthority, redactQuery, redactUserinfo, type UrlRedaction } from './url-redaction';

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };

/**
 * `bodyClosed` false: the response had a body that was not closed in time, so the span ends at
 * the response head (src/spans/go-client-ends.ts) and says so.
 */
export function goClientSpan(
  rec: GoHttpClientRecord,
  resource: Resource,
  clock: Clock,
  redaction: UrlRedaction = DEFAULT_URL_REDACTION,
  bodyClosed = true,
): Span {
  const scheme = rec.scheme || 'http';
  const server = splitHostPort(hostOfAuthority(rec.host));
  const port = server.port ?? DEFAULT_PORTS[scheme];
  const attributes: Attributes = setMethodAttributes({}, rec.method);
  const query = rec.query ? redactQuery(rec.query, redaction) : '';
  attributes['url.full'] = `${scheme}://${redactUserinfo(rec.host)}${rec.path || '/'}${query ? `?${query}` : ''}`;
  attributes['url.scheme'] = scheme;
  if (server.host) attributes['server.address'] = server.host;
  if (port !== undefined) attributes['server.port'] = port;
  if (rec.status) attributes['http.response.status_code'] = rec.status;
  // Whether the downstream got this span's context, and how (docs/limits.md).
  if (rec.propagation !== 'none') attributes['spanbridge.propagation'] = rec.propagation;
  if (!bodyClosed) attributes['spanbridge.response.body_closed'] = false;
  let code: Span['status']['code'] = 'UNSET';
  if (rec.transportError) {
    code = 'ERROR';
    attributes['error.type'] = '_OTHER';
  } else {
    const st = httpStatus('CLIENT', rec.status);
    code = st.code;
    if (st.errorType) attributes['error.type'] = st.errorType;
  }
  return kernelSpan(rec, { traceState: '', name: httpSpanName(rec.method, ''), kind: 'CLIENT', status: { code }, attributes, resource }, clock);
}
