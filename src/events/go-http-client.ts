/** Decoders for RECORD_GO_HTTP_CLIENT and RECORD_GO_HTTP_CLIENT_END (bpf/go_http/go_http_client.h). */
import { GO_HTTP_CLIENT_END_EVENT as E, GO_HTTP_CLIENT_EVENT as L, GO_HTTP_CLIENT_FLAG, GO_HTTP_CLIENT_FLAG2 } from './structs.generated';
import type { GoSpanRecordFields } from './go-span-record';
import { capturedStringReader, readBig, readHex, readUint } from './struct-view';

/** go_http_client_event.flags (bpf enum go_http_client_flag; the bits and their meaning are the C header's). */
export const { CLIENT_F_LOCAL_PARENT, CLIENT_F_ERROR, CLIENT_F_INJECTED, CLIENT_F_APP_TRACEPARENT, CLIENT_F_APP_TP_INVALID, CLIENT_F_INJECT_SKIPPED, CLIENT_F_HAS_STATUS, CLIENT_F_INJECTED_SOCKET } = GO_HTTP_CLIENT_FLAG;
/** go_http_client_event.flags2 (bpf enum go_http_client_flag2; the bits and their meaning are the C header's). */
export const { CLIENT_F2_FORWARDED, CLIENT_F2_BODY_OPEN } = GO_HTTP_CLIENT_FLAG2;

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
