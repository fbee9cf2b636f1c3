/**
 * A Go net/http server record -> a SERVER span. Pure: ids and times come from the record (decided
 * in the kernel), the resource from the process, Unix time from the one clock.
 */
import type { GoHttpServerRecord } from '../events/go-http-server';
import type { Clock } from '../time/clock';
import { httpSpanName, httpStatus, routeFromGoPattern, setMethodAttributes, splitHostPort } from './http-semconv';
import { kernelSpan } from './kernel-span';
import type { Attributes, Resource, Span } from './span';
import { DEFAULT_URL_REDACTION, hostOfAuthority, redactQuery, type UrlRedaction } from './url-redaction';

export function goServerSpan(rec: GoHttpServerRecord, resource: Resource, clock: Clock, redaction: UrlRedaction = DEFAULT_URL_REDACTION): Span {
  const route = rec.pattern ? routeFromGoPattern(rec.pattern) : '';
  const attributes: Attributes = setMethodAttributes({}, rec.method);
  attributes['url.path'] = rec.path;
  attributes['url.scheme'] = 'http';
  if (rec.query) attributes['url.query'] = redactQuery(rec.query, redaction);
  if (route) attributes['http.route'] = route;
  if (rec.status) attributes['http.response.status_code'] = rec.status;
  const server = splitHostPort(hostOfAuthority(rec.host));
  if (server.host) attributes['server.address'] = server.host;
  if (server.port !== undefined) attributes['server.port'] = server.port;
  const peer = splitHostPort(rec.remoteAddr);
  if (peer.host) {
    attributes['client.address'] = peer.host;
    attributes['network.peer.address'] = peer.host;
  }
  if (peer.port !== undefined) attributes['network.peer.port'] = peer.port;
  if (rec.protoMajor) {
    attributes['network.protocol.version'] = rec.protoMajor === 1 ? `1.${rec.protoMinor}` : String(rec.protoMajor);
  }
  if (rec.userAgent) attributes['user_agent.original'] = rec.userAgent;
  if (rec.requestContentLength > 0n) attributes['http.request.body.size'] = Number(rec.requestContentLength);
  if (rec.responseSize > 0n) attributes['http.response.body.size'] = Number(rec.responseSize);

  const status = httpStatus('SERVER', rec.status);
  if (status.errorType) attributes['error.type'] = status.errorType;

  return kernelSpan(
    rec,
    { traceState: rec.tracestate, name: httpSpanName(rec.method, route), kind: 'SERVER', status: { code: status.code }, attributes, resource },
    clock,
  );
}
