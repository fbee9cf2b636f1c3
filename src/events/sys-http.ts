/** Decoders for the syscall HTTP tracer's records (bpf/sys_http/sys_http.h). */
import { SYS_HTTP_CONN_EVENT as C, SYS_HTTP_DATA_EVENT as D, SYS_HTTP_DIRECTION, SYS_HTTP_FLAG, SYS_HTTP_FLAG2, SYS_HTTP_ROLE, SYS_HTTP_ROUTE_EVENT as R } from './structs.generated';
import { bigAt, hexAt, readBig, readBytes, readUint, safeNumberAt, uintAt } from './struct-view';

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
const route = { len: uintAt(R, 'route_len'), pid: uintAt(R, 'pid'), connId: bigAt(R, 'conn_id') };

/** A decoded route record: conn_id as two numbers, its bigint made only if asked for. */
class SysHttpRoute implements SysHttpRouteRecord {
  readonly type = 'sys_http_route' as const;
  readonly pid: number;
  readonly pattern: string;
  readonly connLo: number;
  readonly connHi: number;
  private id: bigint | undefined;

  constructor(private readonly raw: Buffer) {
    const n = Math.min(route.len(raw), ROUTE_CAPTURE);
    this.pid = route.pid(raw);
    this.connLo = raw.readUInt32LE(ROUTE_CONN_OFF);
    this.connHi = raw.readUInt32LE(ROUTE_CONN_OFF + 4);
    this.pattern = raw.toString('utf8', ROUTE_OFF, ROUTE_OFF + n);
    this.id = undefined;
  }

  get connId(): bigint {
    return (this.id ??= route.connId(this.raw));
  }
}

/** Once per Go server response (syscall path): fields at offsets resolved at load. */
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
   * record itself), read in place by the assembler without a view per record.
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

const data = {
  flags: uintAt(D, 'flags'),
  flags2: uintAt(D, 'flags2'),
  captureLen: uintAt(D, 'capture_len'),
  tailLen: uintAt(D, 'tail_len'),
  direction: uintAt(D, 'direction'),
  role: uintAt(D, 'role'),
  pid: uintAt(D, 'pid'),
  tid: uintAt(D, 'tid'),
  fd: uintAt(D, 'fd'),
  connId: bigAt(D, 'conn_id'),
  tsNs: bigAt(D, 'ts_ns'),
  len: safeNumberAt(D, 'len'),
  traceId: hexAt(D, 'trace_id'),
  spanId: hexAt(D, 'span_id'),
  parentSpanId: hexAt(D, 'parent_span_id'),
  traceFlags: uintAt(D, 'trace_flags'),
  routeLen: uintAt(D, 'route_len'),
};
const DATA_OFF = D.fields.data.offset;
const CONN_OFF = D.fields.conn_id.offset;
const TAIL_OFF = D.fields.tail.offset;

const NO_SPARES: readonly SpareIds[] = Object.freeze([]);

/**
 * A decoded data record. A class (one shape, `spareIds` on the prototype) rather than a literal
 * with a getter: no closure per record on the hot path.
 */
class SysHttpData implements SysHttpDataRecord {
  readonly type = 'sys_http_data' as const;
  readonly direction: 'ingress' | 'egress';
  readonly role: SysRole;
  readonly flags: number;
  readonly flags2: number;
  readonly pid: number;
  readonly tid: number;
  readonly fd: number;
  readonly tsNs: bigint;
  readonly len: number;
  readonly bytes: Buffer;
  readonly dataOffset = DATA_OFF;
  readonly captureLen: number;
  readonly connLo: number;
  readonly connHi: number;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly traceFlags: number;
  readonly route: string;
  private spares: readonly SpareIds[] | undefined;
  private tailView: Buffer | undefined;
  private dataView: Buffer | undefined;
  private id: bigint | undefined;

  constructor(private readonly raw: Buffer) {
    const flags = data.flags(raw);
    const capLen = Math.min(data.captureLen(raw), CAPTURE, raw.length - DATA_OFF);
    const hasParent = (flags & (SYS_F_REMOTE_PARENT | SYS_F_THREAD_PARENT | SYS_F_BLACKBOX_PARENT)) !== 0;
    this.flags2 = data.flags2(raw);
    const start = (flags & SYS_F_REQUEST_START) !== 0 || (this.flags2 & SYS_F2_CONTEXT) !== 0;
    this.direction = data.direction(raw) === SYS_HTTP_DIRECTION.SYS_DIR_EGRESS ? 'egress' : 'ingress';
    this.role = roleOf(data.role(raw));
    this.flags = flags;
    this.pid = data.pid(raw);
    this.tid = data.tid(raw);
    this.fd = data.fd(raw);
    this.connLo = raw.readUInt32LE(CONN_OFF);
    this.connHi = raw.readUInt32LE(CONN_OFF + 4);
    this.tsNs = data.tsNs(raw);
    this.len = data.len(raw);
    // Read in place: `raw` is already the record's own copy out of the ring (src/bpf), and the
    // assembler copies what it keeps (Buffer.concat of a message's head).
    this.bytes = raw;
    this.captureLen = capLen;
    // Ids matter only where a request starts (or its context was decided); hex is made only there.
    this.traceId = start ? data.traceId(raw) : '';
    this.spanId = start ? data.spanId(raw) : '';
    this.parentSpanId = start && hasParent ? data.parentSpanId(raw) : '';
    this.traceFlags = data.traceFlags(raw);
    // The route rides after the captured bytes (bpf/sys_http/sys_http_go_server.h).
    const routeLen = data.routeLen(raw);
    const routeEnd = Math.min(DATA_OFF + capLen + Math.min(routeLen, ROUTE_CAPTURE), raw.length);
    this.route = routeLen === 0 ? '' : raw.toString('utf8', DATA_OFF + capLen, routeEnd);
    this.spares = undefined;
    this.tailView = undefined;
    this.dataView = undefined;
    this.id = undefined;
  }

  /** The captured bytes as a view (the assembler reads `bytes` in place instead): made on first use. */
  get data(): Buffer {
    return (this.dataView ??= this.raw.subarray(DATA_OFF, DATA_OFF + this.captureLen));
  }

  /** Made on first use: the assembler compares connLo/connHi with its last connection first. */
  get connId(): bigint {
    return (this.id ??= data.connId(this.raw));
  }

  /** Read only for chunked bodies cut by the capture: made on first use. */
  get tail(): Buffer {
    if (this.tailView === undefined) this.tailView = this.raw.subarray(TAIL_OFF, TAIL_OFF + Math.min(data.tailLen(this.raw), TAIL));
    return this.tailView;
  }

  /** Rarely used (pipelining): decoded on first use. Sent behind the data, only with SYS_F2_SPARES. */
  get spareIds(): readonly SpareIds[] {
    if (this.spares === undefined) this.spares = this.flags2 & SYS_F2_SPARES && this.raw.length >= D.size ? spares(this.raw) : NO_SPARES;
    return this.spares;
  }
}

/** Once per data record (the syscall tracer's hot path): fields at offsets resolved at load. The
 * buffer must be the record's own copy (it is kept, not copied). */
export function decodeSysHttpData(buf: Buffer): SysHttpDataRecord {
  return new SysHttpData(buf);
}
