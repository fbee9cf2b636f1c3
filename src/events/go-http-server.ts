/** Decoder for RECORD_GO_HTTP_SERVER (bpf/go_http/go_http_server.h). */
import { GO_HTTP_SERVER_EVENT as L, GO_HTTP_SERVER_FLAG } from './structs.generated';
import type { GoSpanRecordFields } from './go-span-record';
import { capturedStringReader, readBig, readHex, readUint } from './struct-view';

/** go_http_server_event.flags (bpf enum go_http_server_flag; the bits and their meaning are the C header's). */
export const { SPAN_F_REMOTE_PARENT, SPAN_F_HAS_PATTERN, SPAN_F_STATUS_UNKNOWN } = GO_HTTP_SERVER_FLAG;

export interface GoHttpServerRecord extends GoSpanRecordFields {
  readonly type: 'go_http_server';
  /** '' when the request arrived without a valid traceparent. */
  readonly parentSpanId: string;
  readonly remoteParent: boolean;
  /** 0 when unknown (e.g. not an HTTP/1 response writer). */
  readonly status: number;
  readonly method: string;
  readonly path: string;
  readonly query: string;
  /** Request.Pattern (Go >= 1.23), '' when absent. */
  readonly pattern: string;
  readonly host: string;
  readonly remoteAddr: string;
  readonly tracestate: string;
  readonly userAgent: string;
  readonly protoMajor: number;
  readonly protoMinor: number;
  readonly requestContentLength: bigint;
  readonly responseSize: bigint;
  /** Names of fields whose captured value was cut to the buffer size. */
  readonly truncated: readonly string[];
}

export const GO_HTTP_SERVER_RECORD_SIZE = L.size;

export function decodeGoHttpServer(buf: Buffer): GoHttpServerRecord {
  const { str, truncated } = capturedStringReader(buf, L);
  const flags = readUint(buf, L, 'flags');
  const remoteParent = (flags & SPAN_F_REMOTE_PARENT) !== 0;
  return {
    type: 'go_http_server',
    pid: readUint(buf, L, 'pid'),
    tid: readUint(buf, L, 'tid'),
    goid: readBig(buf, L, 'goid'),
    startNs: readBig(buf, L, 'start_ns'),
    endNs: readBig(buf, L, 'end_ns'),
    traceId: readHex(buf, L, 'trace_id'),
    spanId: readHex(buf, L, 'span_id'),
    parentSpanId: remoteParent ? readHex(buf, L, 'parent_span_id') : '',
    traceFlags: readUint(buf, L, 'trace_flags'),
    remoteParent,
    status: flags & SPAN_F_STATUS_UNKNOWN ? 0 : readUint(buf, L, 'status'),
    method: str('method', 'method_len'),
    path: str('path', 'path_len'),
    query: str('query', 'query_len'),
    pattern: flags & SPAN_F_HAS_PATTERN ? str('pattern', 'pattern_len') : '',
    host: str('host', 'host_len'),
    remoteAddr: str('remote', 'remote_len'),
    tracestate: str('tracestate', 'tracestate_len'),
    userAgent: str('user_agent', 'user_agent_len'),
    protoMajor: readUint(buf, L, 'proto_major'),
    protoMinor: readUint(buf, L, 'proto_minor'),
    requestContentLength: readBig(buf, L, 'request_content_length'),
    responseSize: readBig(buf, L, 'response_size'),
    truncated,
  };
}
