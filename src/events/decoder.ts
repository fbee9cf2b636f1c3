/**
 * The one decoder: switches on the record's first byte. Never throws on the hot path: a record
 * that is too short or of an unknown type is counted and returned as null.
 */
import type { SelfMetrics } from '../metrics/counters';
import {
  decodeGoHttpClient,
  decodeGoHttpClientEnd,
  GO_HTTP_CLIENT_END_RECORD_SIZE,
  GO_HTTP_CLIENT_RECORD_SIZE,
  type GoHttpClientEndRecord,
  type GoHttpClientRecord,
} from './go-http-client';
import { decodeGoHttpServer, GO_HTTP_SERVER_RECORD_SIZE, type GoHttpServerRecord } from './go-http-server';
import { decodeProcLifecycle, PROC_LIFECYCLE_RECORD_SIZE, type ProcLifecycleRecord } from './proc-lifecycle';
import {
  decodeSysHttpConn,
  decodeSysHttpData,
  decodeSysHttpRoute,
  SYS_HTTP_CONN_RECORD_SIZE,
  SYS_HTTP_DATA_RECORD_SIZE,
  SYS_HTTP_ROUTE_RECORD_SIZE,
  type SysHttpConnRecord,
  type SysHttpDataRecord,
  type SysHttpRouteRecord,
} from './sys-http';
import { RECORD_TYPE } from './structs.generated';
import { recordsInvalid } from '../metrics/catalogue';

export type DecodedRecord =
  | GoHttpServerRecord
  | GoHttpClientRecord
  | GoHttpClientEndRecord
  | ProcLifecycleRecord
  | SysHttpConnRecord
  | SysHttpDataRecord
  | SysHttpRouteRecord;

const SIZES: Record<number, number> = {
  [RECORD_TYPE.RECORD_PROC_EXEC]: PROC_LIFECYCLE_RECORD_SIZE,
  [RECORD_TYPE.RECORD_PROC_EXIT]: PROC_LIFECYCLE_RECORD_SIZE,
  [RECORD_TYPE.RECORD_PROC_FORK]: PROC_LIFECYCLE_RECORD_SIZE,
  [RECORD_TYPE.RECORD_GO_HTTP_SERVER]: GO_HTTP_SERVER_RECORD_SIZE,
  [RECORD_TYPE.RECORD_GO_HTTP_CLIENT]: GO_HTTP_CLIENT_RECORD_SIZE,
  [RECORD_TYPE.RECORD_GO_HTTP_CLIENT_END]: GO_HTTP_CLIENT_END_RECORD_SIZE,
  [RECORD_TYPE.RECORD_SYS_HTTP_CONN_OPEN]: SYS_HTTP_CONN_RECORD_SIZE,
  [RECORD_TYPE.RECORD_SYS_HTTP_CONN_CLOSE]: SYS_HTTP_CONN_RECORD_SIZE,
  [RECORD_TYPE.RECORD_SYS_HTTP_DATA]: SYS_HTTP_DATA_RECORD_SIZE,
  [RECORD_TYPE.RECORD_SYS_HTTP_ROUTE]: SYS_HTTP_ROUTE_RECORD_SIZE,
};

export const RECORDS_INVALID = recordsInvalid.name;

export function decodeRecord(buf: Buffer, metrics: SelfMetrics): DecodedRecord | null {
  if (buf.length === 0) {
    recordsInvalid.add(metrics, { reason: 'empty' });
    return null;
  }
  const type = buf[0];
  const size = SIZES[type];
  if (size === undefined) {
    recordsInvalid.add(metrics, { reason: 'unknown_type' });
    return null;
  }
  if (buf.length < size) {
    recordsInvalid.add(metrics, { reason: 'short' });
    return null;
  }
  switch (type) {
    case RECORD_TYPE.RECORD_GO_HTTP_SERVER:
      return decodeGoHttpServer(buf);
    case RECORD_TYPE.RECORD_GO_HTTP_CLIENT:
      return decodeGoHttpClient(buf);
    case RECORD_TYPE.RECORD_GO_HTTP_CLIENT_END:
      return decodeGoHttpClientEnd(buf);
    case RECORD_TYPE.RECORD_SYS_HTTP_CONN_OPEN:
      return decodeSysHttpConn(buf, 'sys_http_conn_open');
    case RECORD_TYPE.RECORD_SYS_HTTP_CONN_CLOSE:
      return decodeSysHttpConn(buf, 'sys_http_conn_close');
    case RECORD_TYPE.RECORD_SYS_HTTP_DATA:
      return decodeSysHttpData(buf);
    case RECORD_TYPE.RECORD_SYS_HTTP_ROUTE:
      return decodeSysHttpRoute(buf);
    default:
      return decodeProcLifecycle(buf);
  }
}
