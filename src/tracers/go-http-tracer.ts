/**
 * The Go net/http tracer: owns bpf/go_http.bpf.o, attaches its uprobes to each selected Go
 * process (entry + every RET instruction; never a uretprobe), feeds the process's struct offsets
 * to the kernel side, and delivers raw records. Knows nothing of spans or export.
 */
import { BpfLoadError, NotSupportedError, SpanbridgeError } from '../errors';
import { DROP_REASON, GO_HTTP_OBJECT, GO_OFFSETS } from '../events/structs.generated';
import { writeUints } from '../events/struct-view';
import { readCounterMap } from './kernel-counters';
import { openTracerObject, pidKey } from './open-object';
import type { Tracer } from './tracer';
import type { BpfBackend, BpfLink, BpfObject, RecordHandler, RingBufferSource } from '../bpf/types';
import type { GoTlsResolution } from '../discovery/go/tls';
import { openConnections } from '../discovery/process-sockets';
import { GoClientAdoption, type AdoptionChange } from './go-client-adoption';

export const GO_FUNCS = {
  serveHttp: 'net/http.serverHandler.ServeHTTP',
  connServe: 'net/http.(*conn).serve',
  readContinuedLineSlice: 'net/textproto.(*Reader).readContinuedLineSlice',
  roundTrip: 'net/http.(*Transport).roundTrip',
  requestWrite: 'net/http.(*Request).write',
  writeSubset: 'net/http.Header.writeSubset',
  persistConnWriterWrite: 'net/http.persistConnWriter.Write',
  bodyEofSignalClose: 'net/http.(*bodyEOFSignal).Close',
  persistConnWriteLoop: 'net/http.(*persistConn).writeLoop',
  persistConnRoundTrip: 'net/http.(*persistConn).roundTrip',
  dialConn: 'net/http.(*Transport).dialConn',
  stripPassword: 'net/http.stripPassword',
  newproc1: 'runtime.newproc1',
  goexit1: 'runtime.goexit1',
} as const;

/** Go struct fields the kernel side reads, as `go_offsets` field <- `<struct>.<field>`. */
export const GO_OFFSET_FIELDS: Readonly<Record<string, { field: string; optional?: boolean }>> = {
  g_goid: { field: 'runtime.g.goid' },
  req_method: { field: 'net/http.Request.Method' },
  req_url: { field: 'net/http.Request.URL' },
  req_host: { field: 'net/http.Request.Host' },
  req_remote_addr: { field: 'net/http.Request.RemoteAddr' },
  req_pattern: { field: 'net/http.Request.Pattern', optional: true },
  req_content_length: { field: 'net/http.Request.ContentLength' },
  req_proto_major: { field: 'net/http.Request.ProtoMajor' },
  req_proto_minor: { field: 'net/http.Request.ProtoMinor' },
  url_path: { field: 'net/url.URL.Path' },
  url_raw_query: { field: 'net/url.URL.RawQuery' },
  resp_status: { field: 'net/http.response.status' },
  resp_written: { field: 'net/http.response.written' },
  url_scheme: { field: 'net/url.URL.Scheme' },
  url_host: { field: 'net/url.URL.Host' },
  response_status_code: { field: 'net/http.Response.StatusCode' },
  bufio_buf: { field: 'bufio.Writer.buf' },
  bufio_n: { field: 'bufio.Writer.n' },
  g_parent_goid: { field: 'runtime.g.parentGoid', optional: true },
  req_header: { field: 'net/http.Request.Header' },
  response_body: { field: 'net/http.Response.Body', optional: true },
  response_content_length: { field: 'net/http.Response.ContentLength' },
  response_uncompressed: { field: 'net/http.Response.Uncompressed', optional: true },
  response_proto_major: { field: 'net/http.Response.ProtoMajor', optional: true },
  gzip_reader_body: { field: 'net/http.gzipReader.body', optional: true },
  pconn_bw: { field: 'net/http.persistConn.bw', optional: true },
  pconn_reqch: { field: 'net/http.persistConn.reqch', optional: true },
  chan_qcount: { field: 'runtime.hchan.qcount', optional: true },
  chan_dataqsiz: { field: 'runtime.hchan.dataqsiz', optional: true },
  chan_buf: { field: 'runtime.hchan.buf', optional: true },
  chan_elemsize: { field: 'runtime.hchan.elemsize', optional: true },
  chan_recvx: { field: 'runtime.hchan.recvx', optional: true },
  chan_recvq: { field: 'runtime.hchan.recvq', optional: true },
  waitq_first: { field: 'runtime.waitq.first', optional: true },
  sudog_g: { field: 'runtime.sudog.g', optional: true },
  sudog_c: { field: 'runtime.sudog.c', optional: true },
  rac_ch: { field: 'net/http.requestAndChan.ch', optional: true },
  pconn_nwrite: { field: 'net/http.persistConn.nwrite', optional: true },
};

/**
 * The offsets the lean client path (go.client_path syscall) follows from a connection's write
 * buffer to the goroutine that asked for the call (bpf/common/go_client_ctx.h): without any of
 * them the process takes the uprobes client path.
 */
export const LEAN_CLIENT_FIELDS: readonly string[] = [
  'net/http.persistConn.bw',
  'bufio.Writer.buf',
  'net/http.persistConn.reqch',
  'runtime.hchan.qcount',
  'runtime.hchan.dataqsiz',
  'runtime.hchan.buf',
  'runtime.hchan.elemsize',
  'runtime.hchan.recvx',
  'runtime.hchan.recvq',
  'runtime.waitq.first',
  'runtime.sudog.g',
  'runtime.sudog.c',
  'net/http.requestAndChan.ch',
];

/**
 * How outgoing requests get a traceparent from this tracer: 'memory' writes it into the request's
 * bufio.Writer (bpf_probe_write_user); 'socket' hands the context to the sk_msg program
 * (src/tracers/sk-inject-tracer.ts) at the flush; 'none' leaves traffic alone.
 */
export type GoInjection = 'memory' | 'socket' | 'none';

export const OFFSET_ABSENT = 0xffffffff;

/** What the tracer needs to know about a Go binary (from src/discovery/go). */
export interface GoTarget {
  readonly goVersion: string;
  readonly functions: Readonly<Record<string, { entryOffset: number; retOffsets: readonly number[] } | undefined>>;
  readonly offsets: Readonly<Record<string, number | undefined>>;
  /** Where its threads keep g relative to fsbase (src/discovery/go/tls.ts); needed by go.server_path syscall. */
  readonly gTls?: GoTlsResolution;
}

export interface GoHttpTracerSettings {
  /** A header parsed longer ago than this is not attached to a request (default 10 s). */
  readonly headerMaxAgeMs?: number;
  readonly captureUserAgent?: boolean;
  /**
   * 'memory': write traceparent with bpf_probe_write_user (needs lockdown none); 'socket': leave it
   * for the sk_msg program (needs the sk_inject tracer started). Default none.
   */
  readonly injection?: GoInjection;
  /** Ancestor goroutines searched for the server span of a client call (default 4). */
  readonly maxGoroutineDepth?: number;
  /** Bytes of the span ring buffer (a power of two); undefined: the object's compiled-in size. */
  readonly ringSizeBytes?: number;
  /**
   * Wake the agent only once this many bytes of records wait in the ring (bpf/common/ring_wakeup.h);
   * below it records wait for the backend's periodic consume. Default 0: the kernel wakes us for
   * every record while we keep up (prompt, but each wakeup costs the traced process more than the
   * record itself: bpf/common/ring_wakeup.h).
   */
  readonly ringWakeupBytes?: number;
  /**
   * Client path 'syscall': calls a second up to which a process keeps the roundTrip probe that names
   * the caller of a request written ahead of it (src/tracers/go-client-adoption.ts; default 200).
   */
  readonly callerProbeMaxRate?: number;
}

/** The program that writes headers; loaded only when injection is 'memory'. */
export const INJECT_PROGRAM = GO_HTTP_OBJECT.programs.go_header_write_subset_ret_inject;
const READ_ONLY_WRITE_SUBSET_PROGRAM = GO_HTTP_OBJECT.programs.go_header_write_subset_ret;

/**
 * True when `err`, thrown by start() with injection 'memory', says the kernel refused the
 * header-writing program (bpf_probe_write_user forbidden, e.g. by lockdown): the tracer can start
 * again without it. Decided on the typed load error's failing program, never on message text.
 */
export function isMemoryInjectionRefused(err: unknown): boolean {
  return err instanceof BpfLoadError && err.program === INJECT_PROGRAM;
}

/**
 * Where a process's server spans come from: 'uprobes' (ServeHTTP entry/RETs and the header reader's
 * RETs: ~5 traps per request) or 'syscall' (the syscall tracer decides them, bpf/sys_http/sys_http_go_server.h;
 * this tracer then attaches only (*conn).serve entry, once per connection, for the route).
 */
export type GoServerPath = 'uprobes' | 'syscall';

/**
 * Where a process's client spans come from: 'uprobes' (roundTrip entry/RETs, the header writer's
 * probes, goroutine ancestry, the body's Close: ~7 traps per request) or 'syscall' (the syscall
 * tracer frames the request and response and decides the span, and finds the calling goroutine
 * from the write's buffer with no per-request trap; this tracer attaches only
 * (*persistConn).writeLoop entry, once per connection: bpf/common/go_client_ctx.h). 'syscall'
 * needs the server path 'syscall' (the syscall tracer traces the process) and no memory injection.
 */
export type GoClientPath = 'uprobes' | 'syscall';

export interface AttachResult {
  readonly links: number;
  /** Things that work less well for this process, for the attach table. */
  readonly notes: string[];
}

/** Encodes the go_offsets value for one process; throws when a required field is unknown. */
export function encodeGoOffsets(target: GoTarget): Buffer {
  const values: Record<string, number> = {};
  const missing: string[] = [];
  for (const [cField, { field, optional }] of Object.entries(GO_OFFSET_FIELDS)) {
    const v = target.offsets[field];
    if (v === undefined) {
      if (!optional) missing.push(field);
      values[cField] = OFFSET_ABSENT;
    } else {
      values[cField] = v;
    }
  }
  if (missing.length > 0) {
    throw new NotSupportedError(`Go HTTP tracing for ${target.goVersion}`, `struct offsets for ${missing.join(', ')}`);
  }
  return writeUints(GO_OFFSETS, values);
}

export class GoHttpTracer implements Tracer<[onRecord: RecordHandler], [binaryPath: string, target: GoTarget]> {
  readonly name = 'go_http';
  private obj: BpfObject | undefined;
  private ring: RingBufferSource | undefined;
  private readonly byPid = new Map<number, BpfLink[]>();
  private readonly adoption: GoClientAdoption;

  constructor(
    private readonly backend: BpfBackend,
    private readonly objectPath: string,
    private readonly settings: GoHttpTracerSettings = {},
  ) {
    this.adoption = new GoClientAdoption(
      {
        unknownWrites: (pid) => this.countOf(GO_HTTP_OBJECT.maps.spanbridge_go_client_unknown_v1, pid),
        adoptCalls: (pid) => this.countOf(GO_HTTP_OBJECT.maps.go_client_adopt_calls, pid),
      },
      Date.now,
      settings.callerProbeMaxRate,
    );
  }

  get injection(): GoInjection {
    return this.settings.injection ?? 'none';
  }

  /** Opens and loads the BPF object and starts delivering records. */
  async start(onRecord: RecordHandler): Promise<void> {
    const inject = this.injection === 'memory';
    const opened = await openTracerObject(
      this.backend,
      this.objectPath,
      {
        rodata: {
          header_max_age_ns: BigInt(this.settings.headerMaxAgeMs ?? 10_000) * 1_000_000n,
          capture_user_agent: this.settings.captureUserAgent ?? true,
          max_goroutine_depth: this.settings.maxGoroutineDepth ?? 4,
          socket_injection: this.injection === 'socket',
          memory_injection: inject,
          ring_wakeup_bytes: BigInt(this.settings.ringWakeupBytes ?? 0),
        },
        ...(this.settings.ringSizeBytes !== undefined ? { maxEntries: { go_http_events: this.settings.ringSizeBytes } } : {}),
        disablePrograms: [inject ? READ_ONLY_WRITE_SUBSET_PROGRAM : INJECT_PROGRAM],
      },
      // Uprobes are attached per process (attach); only the ring starts here.
      (obj) => {
        this.ring = obj.ringBuffer(GO_HTTP_OBJECT.maps.go_http_events, onRecord);
        this.ring.start();
      },
    );
    this.obj = opened.obj;
  }

  get attachedPids(): number[] {
    return [...this.byPid.keys()];
  }

  /** Uprobe links currently attached, over all processes. */
  get linkCount(): number {
    let n = 0;
    for (const links of this.byPid.values()) n += links.length;
    return n;
  }

  /**
   * Attaches to one process. `binaryPath` must open the process's executable (e.g.
   * /proc/<pid>/exe). On failure nothing stays attached.
   */
  attach(pid: number, binaryPath: string, target: GoTarget, serverPath: GoServerPath = 'uprobes', clientPath: GoClientPath = 'uprobes'): AttachResult {
    const obj = this.requireObject();
    if (this.byPid.has(pid)) return { links: this.byPid.get(pid)!.length, notes: ['already attached'] };
    const serve = target.functions[GO_FUNCS.serveHttp];
    if (!serve) {
      throw new NotSupportedError(`Go HTTP server tracing (pid ${pid})`, `${GO_FUNCS.serveHttp} in the binary (is net/http linked?)`);
    }
    if (serve.retOffsets.length === 0) {
      throw new SpanbridgeError('ERR_INSPECT', `no RET instruction found in ${GO_FUNCS.serveHttp}`);
    }
    const notes: string[] = [];
    const offsets = encodeGoOffsets(target);
    if (target.offsets['net/http.Request.Pattern'] === undefined) notes.push(`no ServeMux route (Request.Pattern needs Go >= 1.23; ${target.goVersion})`);

    const offsetsMap = obj.map(GO_HTTP_OBJECT.maps.go_offsets_by_pid);
    offsetsMap.update(pidKey(pid), offsets);
    const links: BpfLink[] = [];
    try {
      // 'syscall': requests, headers and responses are the syscall tracer's; here only the route.
      if (serverPath === 'syscall') notes.push(...this.attachConnServe(obj, pid, binaryPath, target, links));
      else notes.push(...this.attachServer(obj, pid, binaryPath, target, links));
      if (clientPath === 'syscall') notes.push(...this.attachLeanClient(obj, pid, binaryPath, target, links));
      else notes.push(...this.attachClient(obj, pid, binaryPath, target, links));
    } catch (err) {
      for (const l of links.reverse()) l.destroy();
      this.adoption.untrack(pid);
      offsetsMap.delete(pidKey(pid));
      throw err;
    }
    this.byPid.set(pid, links);
    return { links: links.length, notes };
  }

  /** Server path 'uprobes': ServeHTTP entry and RETs, and the header reader's RETs. */
  private attachServer(obj: BpfObject, pid: number, binaryPath: string, target: GoTarget, links: BpfLink[]): string[] {
    const serve = target.functions[GO_FUNCS.serveHttp]!;
    const entry = obj.program(GO_HTTP_OBJECT.programs.go_server_handler_serve_http);
    const ret = obj.program(GO_HTTP_OBJECT.programs.go_server_handler_serve_http_ret);
    links.push(entry.attachUprobe({ binaryPath, offset: serve.entryOffset, pid }));
    for (const off of serve.retOffsets) links.push(ret.attachUprobe({ binaryPath, offset: off, pid }));
    const readLine = target.functions[GO_FUNCS.readContinuedLineSlice];
    if (!readLine || readLine.retOffsets.length === 0) return ['incoming traceparent not readable (textproto reader not found)'];
    const prog = obj.program(GO_HTTP_OBJECT.programs.go_textproto_read_line_ret);
    for (const off of readLine.retOffsets) links.push(prog.attachUprobe({ binaryPath, offset: off, pid }));
    return [];
  }

  /** Server path 'syscall': (*conn).serve entry, so the response write can read the route. */
  private attachConnServe(obj: BpfObject, pid: number, binaryPath: string, target: GoTarget, links: BpfLink[]): string[] {
    const fn = target.functions[GO_FUNCS.connServe];
    const need = ['net/http.conn.curReq', 'net/http.response.req', 'net/http.Request.Pattern'];
    if (!fn || need.some((f) => target.offsets[f] === undefined)) return target.offsets['net/http.Request.Pattern'] === undefined ? [] : ['no ServeMux route ((*conn).serve or net/http.conn.curReq not found)'];
    links.push(obj.program(GO_HTTP_OBJECT.programs.go_server_conn_serve).attachUprobe({ binaryPath, offset: fn.entryOffset, pid }));
    return [];
  }

  /**
   * Client path 'syscall': (*persistConn).writeLoop entry, once per connection
   * (bpf/go_http/go_http_client_lean.h); the caller's checks (chooseGoClientPath) ensure it and
   * LEAN_CLIENT_FIELDS are known. No probe fires per request.
   */
  private attachLeanClient(obj: BpfObject, pid: number, binaryPath: string, target: GoTarget, links: BpfLink[]): string[] {
    const fn = target.functions[GO_FUNCS.persistConnWriteLoop]!;
    links.push(obj.program(GO_HTTP_OBJECT.programs.go_persist_conn_write_loop).attachUprobe({ binaryPath, offset: fn.entryOffset, pid }));
    // Connections opened before this attach, and callers a request is written ahead of: the
    // roundTrip probe (src/tracers/go-client-adoption.ts), attached from the start.
    const roundTrip = target.functions[GO_FUNCS.persistConnRoundTrip];
    this.obj?.map(GO_HTTP_OBJECT.maps.spanbridge_go_client_unknown_v1).delete(pidKey(pid));
    const notes: string[] = [];
    if (roundTrip) {
      const adopt = obj.program(GO_HTTP_OBJECT.programs.go_persist_conn_adopt);
      const c = this.adoption.track(pid, () => adopt.attachUprobe({ binaryPath, offset: roundTrip.entryOffset, pid }), () => holdsClientConnections(pid));
      if (c?.error) notes.push(`roundTrip probe (connections from before the attach, callers a request is written ahead of) not attached yet: ${c.error}`);
    }
    if (target.offsets['runtime.g.parentGoid'] === undefined) return [...notes, `client calls from spawned goroutines are not linked, calls that fail before writing have no span (needs Go >= 1.21; ${target.goVersion})`];
    // Calls that fail before their request is written: dialConn (per new connection) and
    // stripPassword (http.Client's error path), never per request (bpf/go_http/go_http_client_lean.h).
    const dial = target.functions[GO_FUNCS.dialConn];
    const failed = target.functions[GO_FUNCS.stripPassword];
    if (!dial || !failed) return [...notes, 'calls that fail before writing their request have no span (net/http dialConn or stripPassword not found)'];
    links.push(obj.program(GO_HTTP_OBJECT.programs.go_transport_dial_conn).attachUprobe({ binaryPath, offset: dial.entryOffset, pid }));
    links.push(obj.program(GO_HTTP_OBJECT.programs.go_client_call_failed).attachUprobe({ binaryPath, offset: failed.entryOffset, pid }));
    return notes;
  }

  /** Client spans, goroutine ancestry and header propagation; all optional per binary. */
  private attachClient(obj: BpfObject, pid: number, binaryPath: string, target: GoTarget, links: BpfLink[]): string[] {
    const notes: string[] = [];
    const fn = (name: string) => target.functions[name];
    const at = (prog: string, offsets: readonly number[]): void => {
      const p = obj.program(prog);
      for (const offset of offsets) links.push(p.attachUprobe({ binaryPath, offset, pid }));
    };
    const roundTrip = fn(GO_FUNCS.roundTrip);
    if (!roundTrip || roundTrip.retOffsets.length === 0) {
      notes.push('no client spans (net/http Transport not linked)');
      return notes;
    }
    at(GO_HTTP_OBJECT.programs.go_transport_round_trip, [roundTrip.entryOffset]);
    at(GO_HTTP_OBJECT.programs.go_transport_round_trip_ret, roundTrip.retOffsets);
    const newproc1 = fn(GO_FUNCS.newproc1);
    const goexit1 = fn(GO_FUNCS.goexit1);
    if (target.offsets['runtime.g.parentGoid'] !== undefined && newproc1 && newproc1.retOffsets.length > 0 && goexit1) {
      at(GO_HTTP_OBJECT.programs.go_runtime_newproc1_ret, newproc1.retOffsets);
      at(GO_HTTP_OBJECT.programs.go_runtime_goexit1, [goexit1.entryOffset]);
    } else {
      notes.push(`client calls from spawned goroutines are not linked (needs Go >= 1.21; ${target.goVersion})`);
    }
    const write = fn(GO_FUNCS.requestWrite);
    const subset = fn(GO_FUNCS.writeSubset);
    const flush = fn(GO_FUNCS.persistConnWriterWrite);
    if (write && subset && subset.retOffsets.length > 0 && flush) {
      at(GO_HTTP_OBJECT.programs.go_request_write, [write.entryOffset]);
      at(GO_HTTP_OBJECT.programs.go_header_write_subset, [subset.entryOffset]);
      at(GO_HTTP_OBJECT.programs.go_persist_conn_writer_write, [flush.entryOffset]);
      at(this.injection === 'memory' ? INJECT_PROGRAM : READ_ONLY_WRITE_SUBSET_PROGRAM, subset.retOffsets);
    } else {
      notes.push('outgoing headers not inspected (Request.write / Header.writeSubset / persistConnWriter.Write not found)');
    }
    // A client span with a response body ends when the body is closed (the whole exchange).
    const close = fn(GO_FUNCS.bodyEofSignalClose);
    const bodyOffsets = ['net/http.Response.Body', 'net/http.Response.Uncompressed', 'net/http.Response.ProtoMajor', 'net/http.gzipReader.body'];
    if (close && bodyOffsets.every((f) => target.offsets[f] !== undefined)) {
      at(GO_HTTP_OBJECT.programs.go_body_eof_signal_close, [close.entryOffset]);
    } else {
      notes.push('client spans end at the response head (bodyEOFSignal.Close or Response.Body offsets not found)');
    }
    return notes;
  }

  /**
   * Client path 'syscall': takes the roundTrip probe away from processes calling fast and gives it
   * back (src/tracers/go-client-adoption.ts). Called from the agent's periodic tick.
   */
  tickAdoption(): AdoptionChange[] {
    return this.adoption.tick();
  }

  /** Whether the roundTrip probe is attached to `pid` now. */
  adopting(pid: number): boolean {
    return this.adoption.adopting(pid);
  }

  /** A per-process count (u64 by tgid): writes from unknown connections, or roundTrip probe calls. */
  private countOf(map: string, pid: number): bigint {
    const v = this.obj?.map(map).lookup(pidKey(pid));
    return v ? v.readBigUInt64LE(0) : 0n;
  }

  /** Detaches from one process (it exited or no longer matches). Idempotent. */
  detach(pid: number): void {
    this.adoption.untrack(pid);
    const links = this.byPid.get(pid);
    if (!links) return;
    this.byPid.delete(pid);
    for (const l of [...links].reverse()) l.destroy();
    try {
      this.obj?.map(GO_HTTP_OBJECT.maps.go_offsets_by_pid).delete(pidKey(pid));
      this.obj?.map(GO_HTTP_OBJECT.maps.spanbridge_go_client_unknown_v1).delete(pidKey(pid));
    } catch {
      // the object may already be closing
    }
  }

  /** Kernel-side drop/skip counters summed over CPUs, by reason name (DROP_*, lower case). */
  kernelCounters(): Record<string, number> {
    return this.obj ? readCounterMap(this.obj.map(GO_HTTP_OBJECT.maps.go_http_drops), DROP_REASON, 'DROP_REASON_MAX') : {};
  }

  async close(): Promise<void> {
    // The object owns every link: closing it detaches them all, in reverse creation order; records
    // keep flowing meanwhile and what is left in the ring is delivered before it goes (drain).
    this.byPid.clear();
    const obj = this.obj;
    this.obj = undefined;
    this.ring = undefined;
    await obj?.close({ drain: true });
  }

  private requireObject(): BpfObject {
    if (!this.obj) throw new SpanbridgeError('ERR_BPF_LOAD', 'go http tracer not started');
    return this.obj;
  }
}

/** Whether `pid` holds established TCP connections it opened (false when that cannot be read). */
function holdsClientConnections(pid: number): boolean {
  try {
    return openConnections(pid).some((c) => c.role === 'client');
  } catch {
    return false;
  }
}
