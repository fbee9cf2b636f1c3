/**
 * An HTTP/1.x exchange seen through syscalls -> a SERVER or CLIENT span. Pure: ids and times come
 * from the kernel's records, the resource from the process, Unix time from the one clock.
 */
import {
  SYS_F2_DOWNSTREAM_PARENT,
  SYS_F2_NODE_PARENT,
  SYS_F2_TASK_PARENT,
  SYS_F_APP_TRACEPARENT,
  SYS_F_BLACKBOX_PARENT,
  SYS_F_REMOTE_PARENT,
  SYS_F_THREAD_PARENT,
} from '../events/sys-http';
import type { Clock } from '../time/clock';
import { httpSpanName, httpStatus, setMethodAttributes, splitHostPort } from './http-semconv';
import { IdsSpan } from './ids-span';
import type { Attributes, Resource, Span } from './span';
import type { SpanIds } from './span-ids';
import { splitTarget, type RequestLine } from './sys-http-parse';
import { DEFAULT_URL_REDACTION, hostOfAuthority, redactQuery, redactUserinfo, type UrlRedaction } from './url-redaction';
import { normalizeTracestate } from './w3c-tracestate';

export interface ExchangeView {
  readonly role: 'server' | 'client';
  /** The trace id, span id and parent span id (none: a root), decided in the kernel, as bytes. */
  readonly ids: SpanIds;
  readonly traceFlags: number;
  /**
   * How the parent was found: incoming traceparent, same-node client (black-box), same thread;
   * 'application': a client request that carried the application's own traceparent (its ids).
   */
  readonly link: 'traceparent' | 'blackbox' | 'thread' | 'asyncio_task' | 'proxy_downstream' | 'node_async' | 'application' | 'none';
  /** Client spans linked to their thread's server request: that request's tracestate (W3C), else ''. */
  readonly inheritedTraceState: string;
  readonly request: RequestLine;
  readonly requestHeaders: ReadonlyMap<string, string>;
  readonly requestHeadComplete: boolean;
  /** 0 when no response was seen. */
  readonly status: number;
  readonly responseComplete: boolean;
  readonly endReason: 'complete' | 'closed' | 'superseded' | 'idle';
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly tid: number;
  /** The framework's route (Go Request.Pattern, read by the kernel), '' when none. */
  readonly route?: string;
  /** Client: the header could not be inserted into the request (Go calls: sk_msg said so). */
  readonly propagationSkipped?: boolean;
  /** Client: the Host header may name another destination than the connection's (Go). */
  readonly hostMayDiffer?: boolean;
}

const MAX_VALUE = 1024;

/** Span statuses are read only: one object each, shared by every span. */
const STATUS_UNSET: Span['status'] = Object.freeze({ code: 'UNSET' });
const STATUS_ERROR: Span['status'] = Object.freeze({ code: 'ERROR' });

function cut(s: string): string {
  return s.length > MAX_VALUE ? s.slice(0, MAX_VALUE) : s;
}

interface HostParts {
  /** The authority as an attribute may show it (userinfo redacted). */
  readonly host: string;
  readonly hp: { readonly host: string; readonly port?: number };
}

/** Authorities seen -> their parts: a service is called by few names, each on every request. */
const hosts = new Map<string, HostParts>();
const HOSTS_MAX = 1024;

function hostOf(authority: string): HostParts {
  let parts = hosts.get(authority);
  if (parts === undefined) {
    const host = redactUserinfo(authority);
    parts = { host, hp: splitHostPort(hostOfAuthority(host)) };
    if (hosts.size >= HOSTS_MAX) hosts.clear();
    hosts.set(authority, parts);
  }
  return parts;
}

/** The last span name and what made it: consecutive spans of a service mostly share theirs. */
let lastName = { method: '', route: '', name: '' };

function spanName(method: string, route: string): string {
  const last = lastName;
  if (last.method === method && last.route === route && last.name !== '') return last.name;
  const name = httpSpanName(method, route);
  lastName = { method, route, name };
  return name;
}

export function sysHttpSpan(x: ExchangeView, resource: Resource, clock: Clock, redaction: UrlRedaction = DEFAULT_URL_REDACTION): Span {
  const { method, target, minor } = x.request;
  const t = splitTarget(target);
  // Userinfo in a Host header or an absolute-form target never reaches an attribute as sent.
  const { host, hp } = hostOf(x.requestHeaders.get('host') ?? t.authority ?? '');
  // Redacted before the length cut, so a cut can never expose part of a value.
  const query = t.query ? redactQuery(t.query, redaction) : '';
  // Built by assignment on a fresh literal: an object made by spread and then extended key by key
  // falls into V8's slow dictionary path (http-semconv.ts setMethodAttributes).
  const attributes: Attributes = setMethodAttributes({}, method);
  attributes['network.protocol.version'] = minor === 1 ? '1.1' : minor === 0 ? '1.0' : `1.${minor}`;
  const ua = x.requestHeaders.get('user-agent');
  if (ua) attributes['user_agent.original'] = cut(ua);
  if (x.role === 'server') {
    attributes['url.path'] = cut(t.path);
    if (query) attributes['url.query'] = cut(query);
    attributes['url.scheme'] = 'http';
    if (x.route) attributes['http.route'] = x.route;
    attributes['server.address'] = hp.host || x.localAddress;
    attributes['server.port'] = hp.port ?? x.localPort;
    attributes['client.address'] = x.remoteAddress;
    attributes['network.peer.address'] = x.remoteAddress;
    attributes['network.peer.port'] = x.remotePort;
  } else {
    // A Host header naming another port than the connection's peer was set by the application
    // (a reverse proxy keeping the incoming Host): the request went to the peer.
    const peer = !host || (x.hostMayDiffer === true && (hp.port ?? 80) !== x.remotePort);
    const serverHost = peer ? x.remoteAddress : hp.host || x.remoteAddress;
    const serverPort = peer ? x.remotePort : (hp.port ?? x.remotePort);
    const authority = peer ? `${x.remoteAddress.includes(':') ? `[${x.remoteAddress}]` : x.remoteAddress}:${x.remotePort}` : host;
    attributes['server.address'] = serverHost;
    attributes['server.port'] = serverPort;
    attributes['url.full'] = cut(`http://${authority}${t.path}${query ? `?${query}` : ''}`);
    attributes['network.peer.address'] = x.remoteAddress;
    attributes['network.peer.port'] = x.remotePort;
  }
  if (x.status) attributes['http.response.status_code'] = x.status;
  attributes['thread.id'] = x.tid;
  if (x.link !== 'none') attributes['spanbridge.parent.source'] = x.link;
  if (!x.requestHeadComplete) attributes['spanbridge.request.head_truncated'] = true;
  // As on the Go uprobe path (src/spans/go-client-span.ts): the downstream did not get this context.
  if (x.propagationSkipped) attributes['spanbridge.propagation'] = 'skipped';

  const status = x.status ? httpStatus(x.role === 'server' ? 'SERVER' : 'CLIENT', x.status) : { code: 'ERROR' as const, errorType: x.endReason === 'closed' ? 'connection_closed' : 'no_response' };
  if (status.errorType) attributes['error.type'] = status.errorType;

  const start = clock.toUnixNano(x.startNs);
  const end = x.endNs >= x.startNs ? clock.toUnixNano(x.endNs) : start;
  return new IdsSpan(
    x.ids,
    x.traceFlags,
    x.role === 'server' ? (x.link === 'traceparent' ? normalizeTracestate(x.requestHeaders.get('tracestate') ?? '') : '') : x.inheritedTraceState,
    spanName(method, x.route ?? ''),
    x.role === 'server' ? 'SERVER' : 'CLIENT',
    start,
    end,
    status.code === 'ERROR' ? STATUS_ERROR : status.code === 'UNSET' ? STATUS_UNSET : { code: status.code },
    attributes,
    resource,
  );
}

/** Links to a server request of the same process: the client span carries that request's
 * tracestate (the kernel sends it on; nginx forwards the header itself). */
export const IN_PROCESS_LINKS: ReadonlySet<ExchangeView['link']> = new Set(['thread', 'asyncio_task', 'proxy_downstream', 'node_async']);

export function linkOf(flags: number, flags2: number): ExchangeView['link'] {
  if (flags & SYS_F_REMOTE_PARENT) return 'traceparent';
  if (flags & SYS_F_BLACKBOX_PARENT) return 'blackbox';
  // The asyncio task's request (bpf/sys_http/sys_http_asyncio.h): its tracestate is not sent on.
  if (flags & SYS_F_THREAD_PARENT) return flags2 & SYS_F2_TASK_PARENT ? 'asyncio_task' : flags2 & SYS_F2_DOWNSTREAM_PARENT ? 'proxy_downstream' : flags2 & SYS_F2_NODE_PARENT ? 'node_async' : 'thread';
  if (flags & SYS_F_APP_TRACEPARENT) return 'application';
  return 'none';
}
