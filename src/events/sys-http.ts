/** Decoders for the syscall HTTP tracer's records (bpf/sys_http/sys_http.h). */
import { SYS_HTTP_CONN_EVENT as C, SYS_HTTP_DATA_EVENT as D, SYS_HTTP_DIRECTION, SYS_HTTP_FLAG, SYS_HTTP_FLAG2, SYS_HTTP_ROLE, SYS_HTTP_ROUTE_EVENT as R } from './structs.generated';
import { readBig, readBytes, readUint, u64Of, uintAt } from './struct-view';
import { SpanIds } from '../spans/span-ids';

/** sys_http_data_event.flags (bpf enum sys_http_flag; the bits and their meaning are the C header's). */
export const { SYS_F_REQUEST_START, SYS_F_RESPONSE_START, SYS_F_REMOTE_PARENT, SYS_F_THREAD_PARENT, SYS_F_BLACKBOX_PARENT, SYS_F_TRUNCATED, SYS_F_SPARE_IDS, SYS_F_APP_TRACEPARENT } = SYS_HTTP_FLAG;
/** sys_http_data_event.flags2 (bpf enum sys_http_flag2; the bits and their meaning are the C header's). */
export const { SYS_F2_PIPELINED, SYS_F2_CONTEXT_PENDING, SYS_F2_CONTEXT, SYS_F2_TASK_PARENT, SYS_F2_DOWNSTREAM_PARENT, SYS_F2_NODE_PARENT, SYS_F2_PROPAGATION_SKIPPED, SYS_F2_SPARES } = SYS_HTTP_FLAG2;

export type SysRole = 'server' | 'client';

function roleOf(v: number): SysRole {
  return v === SYS_HTTP_ROLE.SYS_ROLE_CLIENT ? 'client' : 'server';
}

/** An IPv6 address (IPv4 as ::ffff:a.b.c.d) as text: dotted quad for mapped IPv4. */
export function formatAddress(b: Buffer): string {
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (mapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export interface SysHttpConnRecord {
  readonly type: 'sys_http_conn_open' | 'sys_http_conn_close';
  readonly role: SysRole;
  readonly pid: number;
  readonly tid: number;
  readonly fd: number;
  readonly connId: bigint;
  readonly tsNs: bigint;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

export const SYS_HTTP_CONN_RECORD_SIZE = C.size;

export function decodeSysHttpConn(buf: Buffer, type: SysHttpConnRecord['type']): SysHttpConnRecord {
  return {
    type,
    role: roleOf(readUint(buf, C, 'role')),
    pid: readUint(buf, C, 'pid'),
    tid: readUint(buf, C, 'tid'),
    fd: readUint(buf, C, 'fd'),
    connId: readBig(buf, C, 'conn_id'),
    tsNs: readBig(buf, C, 'ts_ns'),
    localAddress: formatAddress(readBytes(buf, C, 'local_addr')),
    localPort: readUint(buf, C, 'local_port'),
    remoteAddress: formatAddress(readBytes(buf, C, 'remote_addr')),
    remotePort: readUint(buf, C, 'remote_port'),
  };
}

/** RECORD_SYS_HTTP_ROUTE: the route (Go Request.Pattern) of the request a server connection answers next. */
export interface SysHttpRouteRecord {
  readonly type: 'sys_http_route';
  readonly pid: number;
  readonly connId: bigint;
  /** Decoded records only: conn_id's low and high 32 bits (compared without making the bigint). */
  readonly connLo?: number;
  readonly connHi?: number;
  /** As the application registered it (e.g. "GET /users/{id}"); cut at the capture size. */
  readonly pattern: string;
}

export const SYS_HTTP_ROUTE_RECORD_SIZE = R.size;
const ROUTE_CAPTURE = R.fields.route.size;
const ROUTE_OFF = R.fields.route.offset;
const ROUTE_CONN_OFF = R.fields.conn_id.offset;
const route = { len: uintAt(R, 'route_len'), pid: uintAt(R, 'pid') };

/**
 * A decoded route record: conn_id as two numbers, its bigint made only if asked for (from the
 * halves: the record keeps nothing of the ring's bytes).
 */
class SysHttpRoute implements SysHttpRouteRecord {
  readonly type = 'sys_http_route' as const;
  readonly pid: number;
  readonly pattern: string;
  readonly connLo: number;
  readonly connHi: number;
  private id: bigint | undefined;

  constructor(raw: Buffer) {
    const n = Math.min(route.len(raw), ROUTE_CAPTURE);
    this.pid = route.pid(raw);
    this.connLo = raw.readUInt32LE(ROUTE_CONN_OFF);
    this.connHi = raw.readUInt32LE(ROUTE_CONN_OFF + 4);
    this.pattern = raw.toString('utf8', ROUTE_OFF, ROUTE_OFF + n);
    this.id = undefined;
  }

  get connId(): bigint {
    return (this.id ??= u64Of(this.connLo, this.connHi));
  }
}

/** Once per Go server response (syscall path): fields at offsets resolved at load. Keeps nothing of `buf`. */
export function decodeSysHttpRoute(buf: Buffer): SysHttpRouteRecord {
  return new SysHttpRoute(buf);
}

export interface SysHttpDataRecord {
  readonly type: 'sys_http_data';
  readonly direction: 'ingress' | 'egress';
  readonly role: SysRole;
  readonly flags: number;
  /** SYS_F2_* */
  readonly flags2: number;
  readonly pid: number;
  readonly tid: number;
  readonly fd: number;
  readonly connId: bigint;
  readonly tsNs: bigint;
  /** Bytes the syscall transferred. */
  readonly len: number;
  /** The first min(len, capture) bytes (of the first segment for vectored I/O). */
  readonly data: Buffer;
  /** The last bytes of the message. */
  readonly tail: Buffer;
  /** With SYS_F_REQUEST_START: this request's context, decided in the kernel (else empty). */
  readonly traceId: string;
  readonly spanId: string;
  /** '' when the span is a root. */
  readonly parentSpanId: string;
  readonly traceFlags: number;
  /**
   * Decoded records only, with SYS_F_REQUEST_START or SYS_F2_CONTEXT: traceId, spanId and
   * parentSpanId as the bytes the kernel wrote (the strings above are made from them when read).
   */
  readonly ids?: SpanIds;
  /**
   * Server request starts (and server reads with SYS_F_SPARE_IDS): the contexts the kernel decided
   * for further requests pipelined in the same read, in order (each its own traceparent's child, or
   * a new root). Client request starts with SYS_F_SPARE_IDS: the ids of the requests the kernel
   * framed behind the first in the same write (and injected with them); an all-zero span id = none.
   */
  readonly spareIds: readonly SpareIds[];
  /**
   * A Go server response's first write (go.server_path syscall): the pattern of the route its
   * request matched (Request.Pattern, cut at the capture), read by the kernel; '' or absent: none.
   */
  readonly route?: string;
  /**
   * Decoded records only: `data` is bytes [dataOffset, dataOffset + captureLen) of `bytes` (the
   * buffer the record was decoded from: for a ring's record, the ring's memory, valid during the
   * handler's call only), read in place by the assembler without a view per record.
   */
  readonly bytes?: Buffer;
  readonly dataOffset?: number;
  readonly captureLen?: number;
  /** Decoded records only: conn_id's low and high 32 bits (compared without making the bigint). */
  readonly connLo?: number;
  readonly connHi?: number;
}

/** One pipelined request's kernel-decided ids. `parentSpanId` and `traceFlags` are the server's
 * (a client's pipelined requests share the record's parent and flags). */
export interface SpareIds {
  readonly traceId: string;
  readonly spanId: string;
  /** Server: the request's incoming traceparent's span ('' when a new root). */
  readonly parentSpanId: string;
  readonly traceFlags: number;
}

/** Data records are sent as header + captured bytes only: the minimum is the header. */
export const SYS_HTTP_DATA_RECORD_SIZE = D.fields.data.offset;
/** The capture: `data` also holds a Go server route after the captured bytes (route_len). */
const CAPTURE = D.fields.data.size - R.fields.route.size;
const TAIL = D.fields.tail.size;

/** The spare ids of a whole record `buf` (a view of it). */
function spares(buf: Buffer): SpareIds[] {
  const t = readBytes(buf, D, 'spare_trace_ids');
  const s = readBytes(buf, D, 'spare_span_ids');
  const p = readBytes(buf, D, 'spare_parent_span_ids');
  const f = readBytes(buf, D, 'spare_trace_flags');
  const remote = uintAt(D, 'spare_remote')(buf);
  const out: SpareIds[] = [];
  for (let i = 0; i * 8 < s.length; i++) {
    out.push({
      traceId: t.subarray(i * 16, i * 16 + 16).toString('hex'),
      spanId: s.subarray(i * 8, i * 8 + 8).toString('hex'),
      parentSpanId: remote & (1 << i) ? p.subarray(i * 8, i * 8 + 8).toString('hex') : '',
      traceFlags: f[i] ?? 1,
    });
  }
  return out;
}

const DATA_OFF = D.fields.data.offset;
const CONN_OFF = D.fields.conn_id.offset;
const TAIL_OFF = D.fields.tail.offset;

/** A field's offset, its size checked against what the reader below reads (a changed layout fails at load). */
function offsetOf(name: string, size: number): number {
  const f = D.fields[name];
  if (!f || f.size !== size) throw new Error(`sys_http_data_event.${name}: expected ${size} bytes, layout has ${f ? f.size : 'no such field'}`);
  return f.offset;
}

/*
 * The data record's fields, read at offsets resolved once (module constants) by the inlinable
 * readers below: no closure or Buffer method call per field, once per record on the hot path.
 */
const FLAGS = offsetOf('flags', 1);
const FLAGS2 = offsetOf('flags2', 2);
const CAPTURE_LEN = offsetOf('capture_len', 2);
const DIRECTION = offsetOf('direction', 1);
const ROLE = offsetOf('role', 1);
const PID = offsetOf('pid', 4);
const TID = offsetOf('tid', 4);
const FD = offsetOf('fd', 4);
const TS_NS = offsetOf('ts_ns', 8);
const LEN = offsetOf('len', 8);
const TRACE_ID = offsetOf('trace_id', 16);
// SpanIds.fromBytes reads the three ids as one run of 32 bytes.
if (offsetOf('span_id', 8) !== TRACE_ID + 16 || offsetOf('parent_span_id', 8) !== TRACE_ID + 24) throw new Error('sys_http_data_event: trace_id, span_id and parent_span_id are no longer adjacent');
const TRACE_FLAGS = offsetOf('trace_flags', 1);
const ROUTE_LEN = offsetOf('route_len', 2);
const TAIL_LEN = offsetOf('tail_len', 2);
const DIR_EGRESS = SYS_HTTP_DIRECTION.SYS_DIR_EGRESS;
const ROLE_CLIENT = SYS_HTTP_ROLE.SYS_ROLE_CLIENT;
const F_REQUEST_START = SYS_HTTP_FLAG.SYS_F_REQUEST_START;
const F_ANY_PARENT = SYS_HTTP_FLAG.SYS_F_REMOTE_PARENT | SYS_HTTP_FLAG.SYS_F_THREAD_PARENT | SYS_HTTP_FLAG.SYS_F_BLACKBOX_PARENT;
const F2_CONTEXT = SYS_HTTP_FLAG2.SYS_F2_CONTEXT;

function u16(b: Buffer, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

function u32(b: Buffer, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;
}

const NO_SPARES: readonly SpareIds[] = Object.freeze([]);

/**
 * The last route decoded and its bytes: a Go server answers most requests on few routes, so the
 * same bytes give back the same string (no decoding, and its hash stays for the route lookups).
 */
const lastRouteBytes = Buffer.alloc(ROUTE_CAPTURE);
let lastRouteLen = -1;
let lastRoute = '';

function routeAt(raw: Buffer, start: number, end: number): string {
  const n = end - start;
  if (n === lastRouteLen) {
    let i = 0;
    while (i < n && raw[start + i] === lastRouteBytes[i]) i++;
    if (i === n) return lastRoute;
  }
  const route = raw.toString('utf8', start, end);
  if (n <= lastRouteBytes.length) {
    raw.copy(lastRouteBytes, 0, start, end);
    lastRouteLen = n;
    lastRoute = route;
  }
  return route;
}

/**
 * A decoded data record, read in place: what the assembler reads on every record (flags, conn_id's
 * halves, the capture's bounds, the length) is read when it is made; the rest is read from the
 * bytes when asked for (direction, role, ids, the timestamp's bigint, the route, ...). So it is
 * valid only while its bytes are: for a ring's record, during the handler's call (RecordHandler,
 * src/bpf/types.ts). Nothing may keep it, or any view it hands out (`data`, `tail`, `bytes`),
 * past that call; strings, numbers, bigints and SpanIds read from it are copies.
 *
 * A class (one shape, the lazy fields on the prototype) rather than a literal with getters: no
 * closure per record. Its fields are `declare`d and all set in the constructor, in one order (no
 * class-field definitions run before it).
 */
class SysHttpData implements SysHttpDataRecord {
  declare readonly type: 'sys_http_data';
  declare readonly flags: number;
  declare readonly flags2: number;
  declare readonly len: number;
  declare readonly bytes: Buffer;
  declare readonly dataOffset: number;
  declare readonly captureLen: number;
  declare readonly connLo: number;
  declare readonly connHi: number;
  /** The record's offset in `bytes`, and its length. */
  declare private readonly at: number;
  declare private readonly size: number;
  declare private ts: bigint | undefined;
  declare private idsRead: SpanIds | null | undefined;
  declare private spares: readonly SpareIds[] | undefined;
  declare private tailView: Buffer | undefined;
  declare private dataView: Buffer | undefined;
  declare private id: bigint | undefined;

  constructor(raw: Buffer, at: number, size: number) {
    this.type = 'sys_http_data';
    this.bytes = raw;
    this.at = at;
    this.size = size;
    this.flags = raw[at + FLAGS];
    this.flags2 = u16(raw, at + FLAGS2);
    this.connLo = u32(raw, at + CONN_OFF);
    this.connHi = u32(raw, at + CONN_OFF + 4);
    const lenHi = u32(raw, at + LEN + 4);
    this.len = lenHi >= 0x200000 ? Number.MAX_SAFE_INTEGER : lenHi * 0x1_0000_0000 + u32(raw, at + LEN);
    this.dataOffset = at + DATA_OFF;
    this.captureLen = Math.min(u16(raw, at + CAPTURE_LEN), CAPTURE, size - DATA_OFF);
    this.ts = undefined;
    this.idsRead = undefined;
    this.spares = undefined;
    this.tailView = undefined;
    this.dataView = undefined;
    this.id = undefined;
  }

  get direction(): 'ingress' | 'egress' {
    return this.bytes[this.at + DIRECTION] === DIR_EGRESS ? 'egress' : 'ingress';
  }

  get role(): SysRole {
    return this.bytes[this.at + ROLE] === ROLE_CLIENT ? 'client' : 'server';
  }

  get pid(): number {
    return u32(this.bytes, this.at + PID);
  }

  get tid(): number {
    return u32(this.bytes, this.at + TID);
  }

  get fd(): number {
    return u32(this.bytes, this.at + FD);
  }

  get traceFlags(): number {
    return this.bytes[this.at + TRACE_FLAGS];
  }

  /** Made once, on first use. Timestamps are below 2^53: one exact double, one BigInt (the long way otherwise). */
  get tsNs(): bigint {
    if (this.ts === undefined) {
      const raw = this.bytes;
      const o = this.at + TS_NS;
      this.ts = u64Of(u32(raw, o), u32(raw, o + 4));
    }
    return this.ts;
  }

  /**
   * Ids matter only where a request starts (or its context was decided): copied out of the bytes
   * (SpanIds holds numbers) on first use; hex is made only if a string is asked for.
   */
  get ids(): SpanIds | undefined {
    if (this.idsRead === undefined) {
      const start = (this.flags & F_REQUEST_START) !== 0 || (this.flags2 & F2_CONTEXT) !== 0;
      this.idsRead = start ? SpanIds.fromBytes(this.bytes, this.at + TRACE_ID, (this.flags & F_ANY_PARENT) !== 0) : null;
    }
    return this.idsRead ?? undefined;
  }

  get traceId(): string {
    const ids = this.ids;
    return ids === undefined ? '' : ids.traceId;
  }

  get spanId(): string {
    const ids = this.ids;
    return ids === undefined ? '' : ids.spanId;
  }

  get parentSpanId(): string {
    const ids = this.ids;
    return ids === undefined ? '' : ids.parentSpanId;
  }

  /** A Go server response's route: it rides after the captured bytes (bpf/sys_http/sys_http_go_server.h). Read on each call. */
  get route(): string {
    const raw = this.bytes;
    const routeLen = u16(raw, this.at + ROUTE_LEN);
    if (routeLen === 0) return '';
    const start = this.dataOffset + this.captureLen;
    return routeAt(raw, start, Math.min(start + Math.min(routeLen, ROUTE_CAPTURE), this.at + this.size));
  }

  /** The captured bytes as a view (the assembler reads `bytes` in place instead): made on first use. */
  get data(): Buffer {
    return (this.dataView ??= this.bytes.subarray(this.dataOffset, this.dataOffset + this.captureLen));
  }

  /** Made on first use (from the halves): the assembler compares connLo/connHi with its last connection first. */
  get connId(): bigint {
    return (this.id ??= u64Of(this.connLo, this.connHi));
  }

  /** Read only for chunked bodies cut by the capture: made on first use. */
  get tail(): Buffer {
    if (this.tailView === undefined) {
      const o = this.at + TAIL_OFF;
      this.tailView = this.bytes.subarray(o, o + Math.min(u16(this.bytes, this.at + TAIL_LEN), TAIL));
    }
    return this.tailView;
  }

  /** Rarely used (pipelining): decoded on first use. Sent behind the data, only with SYS_F2_SPARES. */
  get spareIds(): readonly SpareIds[] {
    if (this.spares === undefined) this.spares = this.flags2 & SYS_F2_SPARES && this.size >= D.size ? spares(this.bytes.subarray(this.at, this.at + this.size)) : NO_SPARES;
    return this.spares;
  }
}

/**
 * Once per data record (the syscall tracer's hot path): the record `buf[off, off + len)` (default:
 * all of `buf`), fields at offsets resolved at load. The record reads `buf` in place: it is valid
 * while those bytes are unchanged (for a ring's record, the handler's call).
 */
export function decodeSysHttpData(buf: Buffer, off = 0, len = buf.length - off): SysHttpDataRecord {
  return new SysHttpData(buf, off, len);
}
