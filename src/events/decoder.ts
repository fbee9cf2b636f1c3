/**
 * Record decoding, one decoder per ring buffer: each ring carries a known set of record types
 * (RING_RECORDS), and its handler is bound once, when the ring opens (`ringHandler`), to a
 * decoder that knows only those types — it switches on the record's first byte and hands the
 * consumer records already typed as that ring's. Never throws on the hot path: a record that is
 * empty, too short, or of a type its ring does not carry is counted and dropped.
 *
 * Records arrive in place (RecordHandler, src/bpf/types.ts: bytes[offset, offset + length), valid
 * during the handler's call only). Every decoder but the data record's reads its fields into
 * values of its own (numbers, bigints, strings) through a view of the record, which it does not
 * keep. The data record (src/events/sys-http.ts, one or more per request) reads its fields from
 * the ring's bytes as the assembler asks for them: it, too, is valid during the call only.
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
  /** The record `buf[off, off + len)`; what it returns is valid while those bytes are. */
  decode(buf: Buffer, off: number, len: number): DecodedRecord;
}

/** A decoder of a whole buffer, given a view of the record (one Buffer object, no copy). */
function viewed(decode: (buf: Buffer) => DecodedRecord): RecordCodec['decode'] {
  return (buf, off, len) => decode(off === 0 && len === buf.length ? buf : buf.subarray(off, off + len));
}

/** Every record type by its type byte (enum record_type, generated from BTF). */
const CODECS: Readonly<Record<number, RecordCodec>> = {
  [RECORD_TYPE.RECORD_PROC_EXEC]: { name: 'proc_exec', size: PROC_LIFECYCLE_RECORD_SIZE, decode: viewed(decodeProcLifecycle) },
  [RECORD_TYPE.RECORD_PROC_EXIT]: { name: 'proc_exit', size: PROC_LIFECYCLE_RECORD_SIZE, decode: viewed(decodeProcLifecycle) },
  [RECORD_TYPE.RECORD_PROC_FORK]: { name: 'proc_fork', size: PROC_LIFECYCLE_RECORD_SIZE, decode: viewed(decodeProcLifecycle) },
  [RECORD_TYPE.RECORD_GO_HTTP_SERVER]: { name: 'go_http_server', size: GO_HTTP_SERVER_RECORD_SIZE, decode: viewed(decodeGoHttpServer) },
  [RECORD_TYPE.RECORD_GO_HTTP_CLIENT]: { name: 'go_http_client', size: GO_HTTP_CLIENT_RECORD_SIZE, decode: viewed(decodeGoHttpClient) },
  [RECORD_TYPE.RECORD_GO_HTTP_CLIENT_END]: { name: 'go_http_client_end', size: GO_HTTP_CLIENT_END_RECORD_SIZE, decode: viewed(decodeGoHttpClientEnd) },
  [RECORD_TYPE.RECORD_SYS_HTTP_CONN_OPEN]: { name: 'sys_http_conn_open', size: SYS_HTTP_CONN_RECORD_SIZE, decode: viewed((b) => decodeSysHttpConn(b, 'sys_http_conn_open')) },
  [RECORD_TYPE.RECORD_SYS_HTTP_CONN_CLOSE]: { name: 'sys_http_conn_close', size: SYS_HTTP_CONN_RECORD_SIZE, decode: viewed((b) => decodeSysHttpConn(b, 'sys_http_conn_close')) },
  // In place: the hot record (fields read from the ring's bytes on demand).
  [RECORD_TYPE.RECORD_SYS_HTTP_DATA]: { name: 'sys_http_data', size: SYS_HTTP_DATA_RECORD_SIZE, decode: decodeSysHttpData },
  [RECORD_TYPE.RECORD_SYS_HTTP_ROUTE]: { name: 'sys_http_route', size: SYS_HTTP_ROUTE_RECORD_SIZE, decode: viewed(decodeSysHttpRoute) },
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

function decodeWith(codecs: Readonly<Record<number, RecordCodec>>, buf: Buffer, off: number, len: number, metrics: SelfMetrics): DecodedRecord | null {
  if (len === 0) {
    recordsInvalid.add(metrics, { reason: 'empty' });
    return null;
  }
  const codec = codecs[buf[off]];
  if (codec === undefined) {
    recordsInvalid.add(metrics, { reason: 'unknown_type' });
    return null;
  }
  if (len < codec.size) {
    recordsInvalid.add(metrics, { reason: 'short' });
    return null;
  }
  return codec.decode(buf, off, len);
}

/** The codecs of the record types `ring` carries. */
function codecsOf(ring: RingName): Readonly<Record<number, RecordCodec>> {
  const names: readonly RecordTypeName[] = RING_RECORDS[ring];
  const codecs: Record<number, RecordCodec> = {};
  for (const [type, codec] of Object.entries(CODECS)) if (names.includes(codec.name)) codecs[Number(type)] = codec;
  return codecs;
}

/**
 * The decoder of one ring: only the record types it carries (anything else counts as unknown_type).
 * The record is `buf[off, off + len)` (default: all of `buf`); a decoded record is valid while
 * those bytes are (the handler's call, for a record in the ring).
 */
export function ringDecoder<R extends RingName>(ring: R, metrics: SelfMetrics): (buf: Buffer, off?: number, len?: number) => RingRecord<R> | null {
  const codecs = codecsOf(ring);
  return (buf, off = 0, len = buf.length - off) => decodeWith(codecs, buf, off, len, metrics) as RingRecord<R> | null;
}

/**
 * A ring buffer's handler: the ring's decoder bound to `onRecord`, which sees only typed records,
 * in place (valid during the call only: `onRecord` copies what it keeps, RecordHandler).
 */
export function ringHandler<R extends RingName>(ring: R, metrics: SelfMetrics, onRecord: (rec: RingRecord<R>) => void): RecordHandler {
  const codecs = codecsOf(ring);
  return (buf, off, len) => {
    const rec = decodeWith(codecs, buf, off, len, metrics) as RingRecord<R> | null;
    if (rec) onRecord(rec);
  };
}

/**
 * Any record of any ring (tools and tests; the agent's rings use `ringHandler`): all of `buf`, or
 * `buf[off, off + len)`. The data record reads `buf` as asked: it is valid while `buf` is unchanged.
 */
export function decodeRecord(buf: Buffer, metrics: SelfMetrics, off = 0, len = buf.length - off): DecodedRecord | null {
  return decodeWith(CODECS, buf, off, len, metrics);
}
