/**
 * Record decoding, one decoder per ring buffer: each ring carries a known set of record types
 * (RING_RECORDS), and its handler is bound once, when the ring opens (`ringHandler`), to a
 * decoder that knows only those types — it switches on the record's first byte and hands the
 * consumer records already typed as that ring's. Never throws on the hot path: a record that is
 * empty, too short, or of a type its ring does not carry is counted and dropped.
 */
import type { RecordHandler } from '../bpf/types';
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
import { GO_HTTP_OBJECT, PROC_EVENTS_OBJECT, RECORD_TYPE, SYS_HTTP_OBJECT } from './structs.generated';
import { recordsInvalid } from '../metrics/catalogue';

export type DecodedRecord =
  | GoHttpServerRecord
  | GoHttpClientRecord
  | GoHttpClientEndRecord
  | ProcLifecycleRecord
  | SysHttpConnRecord
  | SysHttpDataRecord
  | SysHttpRouteRecord;
export type RecordTypeName = DecodedRecord['type'];

interface RecordCodec {
  readonly name: RecordTypeName;
  readonly size: number;
  decode(buf: Buffer): DecodedRecord;
}

/** Every record type by its type byte (enum record_type, generated from BTF). */
const CODECS: Readonly<Record<number, RecordCodec>> = {
  [RECORD_TYPE.RECORD_PROC_EXEC]: { name: 'proc_exec', size: PROC_LIFECYCLE_RECORD_SIZE, decode: decodeProcLifecycle },
  [RECORD_TYPE.RECORD_PROC_EXIT]: { name: 'proc_exit', size: PROC_LIFECYCLE_RECORD_SIZE, decode: decodeProcLifecycle },
  [RECORD_TYPE.RECORD_PROC_FORK]: { name: 'proc_fork', size: PROC_LIFECYCLE_RECORD_SIZE, decode: decodeProcLifecycle },
  [RECORD_TYPE.RECORD_GO_HTTP_SERVER]: { name: 'go_http_server', size: GO_HTTP_SERVER_RECORD_SIZE, decode: decodeGoHttpServer },
  [RECORD_TYPE.RECORD_GO_HTTP_CLIENT]: { name: 'go_http_client', size: GO_HTTP_CLIENT_RECORD_SIZE, decode: decodeGoHttpClient },
  [RECORD_TYPE.RECORD_GO_HTTP_CLIENT_END]: { name: 'go_http_client_end', size: GO_HTTP_CLIENT_END_RECORD_SIZE, decode: decodeGoHttpClientEnd },
  [RECORD_TYPE.RECORD_SYS_HTTP_CONN_OPEN]: { name: 'sys_http_conn_open', size: SYS_HTTP_CONN_RECORD_SIZE, decode: (b) => decodeSysHttpConn(b, 'sys_http_conn_open') },
  [RECORD_TYPE.RECORD_SYS_HTTP_CONN_CLOSE]: { name: 'sys_http_conn_close', size: SYS_HTTP_CONN_RECORD_SIZE, decode: (b) => decodeSysHttpConn(b, 'sys_http_conn_close') },
  [RECORD_TYPE.RECORD_SYS_HTTP_DATA]: { name: 'sys_http_data', size: SYS_HTTP_DATA_RECORD_SIZE, decode: decodeSysHttpData },
  [RECORD_TYPE.RECORD_SYS_HTTP_ROUTE]: { name: 'sys_http_route', size: SYS_HTTP_ROUTE_RECORD_SIZE, decode: decodeSysHttpRoute },
};

/** The record types each ring buffer carries (the programs of its object that submit to it). */
export const RING_RECORDS = {
  [GO_HTTP_OBJECT.maps.go_http_events]: ['go_http_server', 'go_http_client', 'go_http_client_end'],
  // Exec/exit/fork of traced processes ride the span ring, after the process's last records.
  [SYS_HTTP_OBJECT.maps.sys_http_events]: ['sys_http_conn_open', 'sys_http_conn_close', 'sys_http_data', 'sys_http_route', 'proc_fork', 'proc_exec', 'proc_exit'],
  [PROC_EVENTS_OBJECT.maps.proc_events]: ['proc_exec', 'proc_exit'],
} as const satisfies Record<string, readonly RecordTypeName[]>;

export type RingName = keyof typeof RING_RECORDS;
type RingTypes<R extends RingName> = (typeof RING_RECORDS)[R][number];
/** The decoded records of one ring: the record interfaces any of whose types the ring carries. */
export type RingRecord<R extends RingName> = DecodedRecord extends infer T
  ? T extends { readonly type: infer K }
    ? [Extract<K, RingTypes<R>>] extends [never]
      ? never
      : T
    : never
  : never;

export const RECORDS_INVALID = recordsInvalid.name;

function decodeWith(codecs: Readonly<Record<number, RecordCodec>>, buf: Buffer, metrics: SelfMetrics): DecodedRecord | null {
  if (buf.length === 0) {
    recordsInvalid.add(metrics, { reason: 'empty' });
    return null;
  }
  const codec = codecs[buf[0]];
  if (codec === undefined) {
    recordsInvalid.add(metrics, { reason: 'unknown_type' });
    return null;
  }
  if (buf.length < codec.size) {
    recordsInvalid.add(metrics, { reason: 'short' });
    return null;
  }
  return codec.decode(buf);
}

/** The decoder of one ring: only the record types it carries (anything else counts as unknown_type). */
export function ringDecoder<R extends RingName>(ring: R, metrics: SelfMetrics): (buf: Buffer) => RingRecord<R> | null {
  const names: readonly RecordTypeName[] = RING_RECORDS[ring];
  const codecs: Record<number, RecordCodec> = {};
  for (const [type, codec] of Object.entries(CODECS)) if (names.includes(codec.name)) codecs[Number(type)] = codec;
  return (buf) => decodeWith(codecs, buf, metrics) as RingRecord<R> | null;
}

/** A ring buffer's handler: the ring's decoder bound to `onRecord`, which sees only typed records. */
export function ringHandler<R extends RingName>(ring: R, metrics: SelfMetrics, onRecord: (rec: RingRecord<R>) => void): RecordHandler {
  const decode = ringDecoder(ring, metrics);
  return (buf) => {
    const rec = decode(buf);
    if (rec) onRecord(rec);
  };
}

/** Any record of any ring (tools and tests; the agent's rings use `ringHandler`). */
export function decodeRecord(buf: Buffer, metrics: SelfMetrics): DecodedRecord | null {
  return decodeWith(CODECS, buf, metrics);
}
