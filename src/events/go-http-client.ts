/** Decoders for RECORD_GO_HTTP_CLIENT and RECORD_GO_HTTP_CLIENT_END (bpf/go_http_client.h). */
import { GO_HTTP_CLIENT_END_EVENT as E, GO_HTTP_CLIENT_EVENT as L } from './structs.generated';
import type { GoSpanRecordFields } from './go-span-record';
import { capturedStringReader, readBig, readHex, readUint } from './struct-view';

export const CLIENT_F_LOCAL_PARENT = 1 << 0;
export const CLIENT_F_ERROR = 1 << 1;
export const CLIENT_F_INJECTED = 1 << 2;
export const CLIENT_F_APP_TRACEPARENT = 1 << 3;
export const CLIENT_F_APP_TP_INVALID = 1 << 4;
export const CLIENT_F_INJECT_SKIPPED = 1 << 5;
export const CLIENT_F_HAS_STATUS = 1 << 6;
/** traceparent inserted at the socket by the sk_msg program (bpf/sk_inject.bpf.c). */
export const CLIENT_F_INJECTED_SOCKET = 1 << 7;
/** flags2: the app forwarded its incoming traceparent (a proxy); the value was replaced by ours. */
export const CLIENT_F2_FORWARDED = 1 << 0;
/** flags2: the response has a body; a RECORD_GO_HTTP_CLIENT_END ends the span when it is closed. */
export const CLIENT_F2_BODY_OPEN = 1 << 2;

export interface GoHttpClientRecord extends GoSpanRecordFields {
  readonly type: 'go_http_client';
  /** '' when the call was not made under a traced server request (a root client span). */
  readonly parentSpanId: string;
  /** 0 when there was no response (transport error). */
  readonly status: number;
  readonly transportError: boolean;
  /**
   * How the outgoing traceparent came about: written into the request (memory) or inserted at the
   * socket; 'replaced'/'replaced-socket': the application forwarded the traceparent its server
   * request came in with and its value was replaced by this span's; the application's own header
   * ('app', 'app-invalid'); wanted but not sent ('skipped'); injection off ('none').
   */
  readonly propagation: 'injected' | 'injected-socket' | 'replaced' | 'replaced-socket' | 'app' | 'app-invalid' | 'skipped' | 'none';
  /** The response has a body still open: the span ends with a GoHttpClientEndRecord. */
  readonly bodyOpen: boolean;
  readonly method: string;
  readonly scheme: string;
  readonly host: string;
  readonly path: string;
  readonly query: string;
  readonly truncated: readonly string[];
}

export const GO_HTTP_CLIENT_RECORD_SIZE = L.size;

function propagation(flags: number, flags2: number): GoHttpClientRecord['propagation'] {
  if (flags & CLIENT_F_APP_TRACEPARENT) return 'app';
  if (flags & CLIENT_F_APP_TP_INVALID) return 'app-invalid';
  const forwarded = (flags2 & CLIENT_F2_FORWARDED) !== 0;
  if (flags & CLIENT_F_INJECTED) return forwarded ? 'replaced' : 'injected';
  if (flags & CLIENT_F_INJECTED_SOCKET) return forwarded ? 'replaced-socket' : 'injected-socket';
  if (flags & CLIENT_F_INJECT_SKIPPED) return 'skipped';
  return 'none';
}

export function decodeGoHttpClient(buf: Buffer): GoHttpClientRecord {
  const { str, truncated } = capturedStringReader(buf, L);
  const flags = readUint(buf, L, 'flags');
  const flags2 = readUint(buf, L, 'flags2');
  // An application-provided traceparent carries its own parent, which is not ours to report:
  // the span then has the app's ids (so the next hop links to it) and the local parent if any.
  return {
    type: 'go_http_client',
    pid: readUint(buf, L, 'pid'),
    tid: readUint(buf, L, 'tid'),
    goid: readBig(buf, L, 'goid'),
    startNs: readBig(buf, L, 'start_ns'),
    endNs: readBig(buf, L, 'end_ns'),
    traceId: readHex(buf, L, 'trace_id'),
    spanId: readHex(buf, L, 'span_id'),
    parentSpanId: flags & CLIENT_F_LOCAL_PARENT && !(flags & CLIENT_F_APP_TRACEPARENT) ? readHex(buf, L, 'parent_span_id') : '',
    traceFlags: readUint(buf, L, 'trace_flags'),
    status: flags & CLIENT_F_HAS_STATUS ? readUint(buf, L, 'status') : 0,
    transportError: (flags & CLIENT_F_ERROR) !== 0,
    propagation: propagation(flags, flags2),
    bodyOpen: (flags2 & CLIENT_F2_BODY_OPEN) !== 0,
    method: str('method', 'method_len'),
    scheme: str('scheme', 'scheme_len'),
    host: str('host', 'host_len'),
    path: str('path', 'path_len'),
    query: str('query', 'query_len'),
    truncated,
  };
}

export interface GoHttpClientEndRecord {
  readonly type: 'go_http_client_end';
  readonly pid: number;
  readonly spanId: string;
  readonly endNs: bigint;
}

export const GO_HTTP_CLIENT_END_RECORD_SIZE = E.size;

export function decodeGoHttpClientEnd(buf: Buffer): GoHttpClientEndRecord {
  return { type: 'go_http_client_end', pid: readUint(buf, E, 'pid'), spanId: readHex(buf, E, 'span_id'), endNs: readBig(buf, E, 'end_ns') };
}
