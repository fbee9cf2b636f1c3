/**
 * Assembles HTTP/1.x exchanges from the syscall tracer's records (one connection at a time) and
 * turns finished ones into spans. Ids come from the records (decided in the kernel at each request
 * start); this module only frames messages, pairs requests with responses and picks attributes.
 *
 * Per connection: a FIFO of exchanges (pipelining), each with a request and a response message.
 * Heads are read from the captured bytes; bodies are skipped by byte count (Content-Length), by the
 * message's last bytes (chunked), or by the connection's end (no length). Everything is bounded:
 * connections (LRU), exchanges per connection, head bytes; every overflow is counted.
 * Records are read in place, valid during onRecord only (RecordHandler, src/bpf/types.ts): nothing
 * here keeps one or a view of its bytes (a head continued in a later read is copied).
 */
import type { SysHttpConnRecord, SysHttpDataRecord, SysHttpRouteRecord } from '../events/sys-http';
import { goRouteOf } from './http-semconv';
import { SYS_F2_CONTEXT, SYS_F2_CONTEXT_PENDING, SYS_F2_PIPELINED, SYS_F2_PROPAGATION_SKIPPED, SYS_F_REQUEST_START, SYS_F_SPARE_IDS } from '../events/sys-http';
import type { SelfMetrics } from '../metrics/counters';
import type { Clock } from '../time/clock';
import type { Resource, Span } from './span';
import {
  endsChunked,
  endsChunkedAt,
  findHeadEndIn,
  MAX_HEAD_BYTES,
  parseHead,
  parseHeadAt,
  parseRequestLine,
  parseStatusLine,
  requestBody,
  responseBody,
  type BodyKind,
  type ParsedHead,
} from './sys-http-parse';
import { ConnTable } from './sys-http-conns';
import { copyOf, newMessage, NO_HEAD, type Conn, type Exchange, type Message } from './sys-http-exchange';
import { IN_PROCESS_LINKS, linkOf, sysHttpSpan, type ExchangeView } from './sys-http-span';
import { SpanIds } from './span-ids';
import type { UrlRedaction } from './url-redaction';
import { normalizeTracestate } from './w3c-tracestate';
import { sysHttpConnectionsEvicted, sysHttpExchangesDropped } from '../metrics/catalogue';

export const SYS_SPANS_DROPPED = sysHttpExchangesDropped.name;

const NO_SPAN_ID = '0000000000000000';

export interface AssemblerOptions {
  readonly clock: Clock;
  readonly metrics: SelfMetrics;
  readonly resourceOf: (pid: number) => Resource | undefined;
  /** Each finished span, with the process it belongs to. */
  readonly onSpan: (span: Span, pid: number) => void;
  /** Query keys and credentials redacted from URL attributes (default: DEFAULT_URL_REDACTION). */
  readonly redaction?: UrlRedaction;
  /** Connections followed at once (default 4096); the least recently active is dropped. */
  readonly maxConnections?: number;
  /** Exchanges queued on one connection (pipelining; default 16). */
  readonly maxExchangesPerConnection?: number;
  /** An exchange without activity for this long is finished or dropped (default 120 s). */
  readonly idleTimeoutMs?: number;
  /**
   * Processes whose client requests go where their URL says, whatever their Host header names
   * (Go's Transport dials the request URL; an application-set Host, like httputil.ReverseProxy
   * keeping the incoming one, is not the destination): their client spans name the connection's
   * peer when the Host header names another port.
   */
  readonly hostMayDiffer?: (pid: number) => boolean;
}

export class SysHttpAssembler {
  private readonly conns = new ConnTable<bigint, Conn>();
  /** The connection of the last record: a request's records come together (its read, route and
   * response write), so most records find theirs here, compared by conn_id's halves. */
  private lastConn: Conn | null = null;
  /** By conn_id's low half (the last opened wins; the high half confirms): no bigint made per record. */
  private readonly byLo = new Map<number, Conn>();
  /**
   * Tracestate of open server requests that continued an incoming trace, by span id: a client call
   * linked to one (kernel thread link) carries it too, as the kernel sends it on (normalised and validated the same way,
   * src/spans/w3c-tracestate.ts).
   */
  private readonly serverTraceStates = new Map<string, string>();
  private readonly maxConns: number;
  private readonly maxExchanges: number;
  private readonly idleNs: bigint;
  /** Data records seen: names the record whose spare ids a connection hands out (not kept). */
  private records = 0;

  constructor(private readonly o: AssemblerOptions) {
    this.maxConns = o.maxConnections ?? 4096;
    this.maxExchanges = o.maxExchangesPerConnection ?? 16;
    this.idleNs = BigInt(o.idleTimeoutMs ?? 120_000) * 1_000_000n;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  private drop(reason: string, n = 1): void {
    sysHttpExchangesDropped.add(this.o.metrics, { reason }, n);
  }

  onRecord(rec: SysHttpConnRecord | SysHttpDataRecord | SysHttpRouteRecord): void {
    if (rec.type === 'sys_http_data') this.data(rec);
    else if (rec.type === 'sys_http_route') this.route(rec);
    else if (rec.type === 'sys_http_conn_open') this.open(rec);
    else this.close(rec.connId, rec.tsNs);
  }

  private open(rec: SysHttpConnRecord): void {
    if (this.conns.has(rec.connId)) return;
    const oldest = this.conns.oldest;
    if (this.conns.size >= this.maxConns && oldest !== null) {
      // The least recently active goes.
      this.close(oldest.id, oldest.lastNs);
      sysHttpConnectionsEvicted.add(this.o.metrics, {});
    }
    const c: Conn = {
      id: rec.connId,
      role: rec.role,
      pid: rec.pid,
      localAddress: rec.localAddress,
      localPort: rec.localPort,
      remoteAddress: rec.remoteAddress,
      remotePort: rec.remotePort,
      exchanges: [],
      dead: false,
      spareUsed: 0,
      lastNs: rec.tsNs,
      idLo: Number(rec.connId & 0xffff_ffffn),
      idHi: Number(rec.connId >> 32n),
      older: null,
      newer: null,
    };
    this.conns.add(c);
    this.byLo.set(c.idLo, c);
  }

  /** The record's connection: the last one when conn_id's halves match, else by id. */
  private connOf(rec: SysHttpDataRecord | SysHttpRouteRecord): Conn | undefined {
    const last = this.lastConn;
    if (rec.connLo !== undefined) {
      if (last !== null && last.idLo === rec.connLo && last.idHi === rec.connHi) return last;
      const byLo = this.byLo.get(rec.connLo);
      if (byLo !== undefined && byLo.idHi === rec.connHi) return (this.lastConn = byLo);
    }
    const c = this.conns.get(rec.connId);
    if (c !== undefined) this.lastConn = c;
    return c;
  }

  /** Forgets a connection (its exchanges are the caller's to finish). */
  private forget(c: Conn): void {
    this.conns.delete(c);
    if (this.byLo.get(c.idLo) === c) this.byLo.delete(c.idLo);
    if (this.lastConn === c) this.lastConn = null;
  }

  private touch(c: Conn, ts: bigint): void {
    c.lastNs = ts;
    this.conns.touch(c);
  }

  private data(rec: SysHttpDataRecord): void {
    this.records++;
    const c = this.connOf(rec);
    const route = rec.route; // read from the bytes on each access: once
    if (!c) {
      if (route) this.drop('route_without_request');
      this.drop('unknown_connection');
      return;
    }
    // A Go server's route rides its response's first write: it is the request's answered next.
    if (route) this.routeFor(c, route);
    this.touch(c, rec.tsNs);
    const requestSide = (c.role === 'server') === (rec.direction === 'ingress');
    if (rec.flags & SYS_F_REQUEST_START && requestSide) {
      // A new request: whatever is still open on this connection is finished now, except the
      // complete requests a pipelining client still awaits responses for (the kernel says so).
      if (c.role === 'client' && rec.flags2 & SYS_F2_PIPELINED) {
        for (const ex of [...c.exchanges]) if (!ex.req.complete) this.finish(c, ex, 'superseded');
      } else {
        this.finishAll(c, 'superseded');
      }
      c.dead = false;
      const ex = this.startExchange(c, rec, {
        ids: idsOf(rec),
        traceFlags: rec.traceFlags,
        link: linkOf(rec.flags, rec.flags2),
      });
      ex.pending = (rec.flags2 & SYS_F2_CONTEXT_PENDING) !== 0;
      this.feedRequest(c, ex, rec, 0);
      return;
    }
    if (rec.flags2 & SYS_F2_CONTEXT && c.role === 'server') this.decided(c, rec);
    if (c.dead) return;
    if (requestSide) {
      const ex = c.exchanges[c.exchanges.length - 1];
      if (!ex || ex.req.complete) {
        // A request pipelined behind one still open, in a later read: kernel spare ids.
        if (c.role === 'server' && rec.flags & SYS_F_SPARE_IDS && parseRequestLine(firstLineOf(rec.data))) {
          this.startPipelined(c, rec, 0);
          return;
        }
        this.drop('unexpected_request_bytes');
        return;
      }
      this.feedRequest(c, ex, rec, 0);
    } else {
      this.feedResponse(c, rec, 0);
    }
  }

  /**
   * A Go server's route for the request answered next, as a record of its own (the programs now
   * send it in the response's first data record, SysHttpDataRecord.route): the oldest request
   * still without a response.
   */
  private route(rec: SysHttpRouteRecord): void {
    this.routeFor(this.connOf(rec), rec.pattern);
  }

  private routeFor(c: Conn | undefined, pattern: string): void {
    let ex: Exchange | undefined;
    if (c?.role === 'server') {
      for (const e of c.exchanges) {
        if (!e.resp) {
          ex = e;
          break;
        }
      }
    }
    if (!ex) {
      this.drop('route_without_request');
      return;
    }
    ex.route = goRouteOf(pattern);
  }

  /** The context of the request whose head ended in `rec`, decided by the kernel at that read. */
  private decided(c: Conn, rec: SysHttpDataRecord): void {
    let ex: Exchange | undefined;
    for (const e of c.exchanges) {
      if (e.pending) {
        ex = e;
        break;
      }
    }
    if (!ex) {
      this.drop('context_without_request');
      return;
    }
    ex.pending = false;
    ex.ids = idsOf(rec);
    ex.traceFlags = rec.traceFlags;
    ex.link = linkOf(rec.flags, rec.flags2);
  }

  private startExchange(c: Conn, rec: SysHttpDataRecord, ids: Pick<Exchange, 'ids' | 'traceFlags' | 'link'>): Exchange {
    // A literal, not a spread: objects made by spread hit V8's slow path (see sys-http-span.ts).
    const ex: Exchange = {
      ids: ids.ids,
      traceFlags: ids.traceFlags,
      link: ids.link,
      pending: false,
      tid: rec.tid,
      // The parent's hex is made only when some server request's tracestate is held.
      inheritedTraceState:
        c.role === 'client' && this.serverTraceStates.size > 0 && IN_PROCESS_LINKS.has(ids.link) ? (this.serverTraceStates.get(ids.ids.parentSpanId) ?? '') : '',
      req: newMessage(rec.tsNs),
      resp: null,
      requestLine: null,
      invalid: false,
      status: 0,
      route: '',
      propagationSkipped: false,
    };
    if (c.exchanges.length >= this.maxExchanges) {
      c.exchanges.shift();
      this.drop('too_many_pipelined');
    }
    c.exchanges.push(ex);
    return ex;
  }

  /** Feeds request-side bytes starting at captured offset `off`. */
  private feedRequest(c: Conn, ex: Exchange, rec: SysHttpDataRecord, off: number): void {
    const next = this.feed(c, ex, ex.req, true, rec, off);
    if (ex.req.parsed === null && (ex.req.headDone || ex.req.gap)) {
      this.invalidate(c, ex);
      return;
    }
    if (next === null) return;
    // More requests pipelined in the same read or write: each needs kernel-made ids.
    if (c.role === 'client' && !(rec.flags & SYS_F_SPARE_IDS)) {
      this.drop('client_pipelining');
      return;
    }
    this.startPipelined(c, rec, next);
  }

  /** A pipelined request at captured offset `off`: the record's next spare context (decided in the kernel). */
  private startPipelined(c: Conn, rec: SysHttpDataRecord, off: number): void {
    if (c.spareRecord !== this.records) {
      c.spareRecord = this.records;
      c.spareUsed = 0;
    }
    const spare = rec.spareIds[c.spareUsed++];
    if (!spare || spare.spanId === NO_SPAN_ID) {
      this.drop('pipelined_beyond_spare_ids');
      return;
    }
    // Server: its own incoming traceparent's child, or a new root. Client: the same trace and
    // parent as the write's first request (the ids the sk_msg program wrote into those requests).
    const ex =
      c.role === 'server'
        ? this.startExchange(c, rec, {
            ids: SpanIds.fromHex(spare.traceId, spare.spanId, spare.parentSpanId),
            traceFlags: spare.traceFlags,
            link: spare.parentSpanId ? 'traceparent' : 'none',
          })
        : this.startExchange(c, rec, { ids: SpanIds.fromHex(spare.traceId, spare.spanId, rec.parentSpanId), traceFlags: rec.traceFlags, link: linkOf(rec.flags, rec.flags2) });
    this.feedRequest(c, ex, rec, off);
  }

  private feedResponse(c: Conn, rec: SysHttpDataRecord, off: number): void {
    let ex: Exchange | undefined;
    for (const e of c.exchanges) {
      if (!e.resp || !e.resp.complete) {
        ex = e;
        break;
      }
    }
    if (!ex) {
      this.drop('unexpected_response_bytes');
      return;
    }
    if (!ex.resp) {
      if (!startsWithHttp1(rec, off)) {
        this.drop('not_a_response');
        c.dead = true;
        return;
      }
      ex.resp = newMessage(rec.tsNs);
      if (rec.flags2 & SYS_F2_PROPAGATION_SKIPPED) ex.propagationSkipped = true;
    }
    const resp = ex.resp;
    const next = this.feed(c, ex, resp, false, rec, off);
    if (resp.parsed === null && (resp.headDone || resp.gap)) {
      this.invalidate(c, ex);
      return;
    }
    if (resp.complete && ex.status >= 100 && ex.status < 200 && ex.status !== 101) {
      // Interim response (100 Continue): the final one follows.
      ex.resp = null;
      ex.status = 0;
      if (next !== null) this.feedResponse(c, rec, next);
      return;
    }
    if (resp.complete) {
      this.finish(c, ex);
      if (ex.status === 101) c.dead = true;
      else if (next !== null) this.feedResponse(c, rec, next);
    }
  }

  /**
   * A message's head, read: validates it and returns its body framing (null = malformed). The
   * request's (`isRequest`) or the response's of `ex`.
   */
  private onHead(c: Conn, ex: Exchange, isRequest: boolean, head: ParsedHead): { kind: BodyKind | 'unknown'; length: number } | null {
    if (isRequest) {
      const line = parseRequestLine(head.firstLine);
      if (!line) return null;
      ex.requestLine = line;
      if (c.role === 'server' && ex.link === 'traceparent') {
        const ts = normalizeTracestate(head.headers.get('tracestate') ?? '');
        if (ts) this.serverTraceStates.set(ex.ids.spanId, ts);
      }
      return head.complete ? requestBody(head.headers) : UNKNOWN_BODY;
    }
    const sl = parseStatusLine(head.firstLine);
    if (!sl) return null;
    ex.status = sl.status;
    if (!head.complete) return UNKNOWN_BODY;
    return responseBody(ex.requestLine?.method ?? '', sl.status, head.headers);
  }

  /**
   * Feeds one record's bytes (from captured offset `off`) into a message of `ex` (its request or
   * its response). Returns the captured offset where the next message starts when this one
   * completed with captured bytes left, else null.
   */
  private feed(c: Conn, ex: Exchange, m: Message, isRequest: boolean, rec: SysHttpDataRecord, off: number): number | null {
    m.lastNs = rec.tsNs;
    // The captured bytes: [base, base + captured) of buf (a decoded record is read in place).
    const buf = rec.bytes ?? rec.data;
    const base = rec.bytes !== undefined ? (rec.dataOffset ?? 0) : 0;
    const captured = rec.bytes !== undefined ? (rec.captureLen ?? 0) : buf.length;
    const truncated = rec.len > captured;
    let bodyStart = off; // offset in this record's byte stream where body bytes begin
    if (!m.headDone) {
      if (m.gap) return null; // bytes were lost inside the head: wait for the response/close
      const prev = m.head.length;
      // The head so far is bytes [hs, he) of hb. One that starts in this record is read in place
      // (the ring's memory): bytes are copied only when a head continues over several reads.
      let hb = buf;
      let hs = base + off;
      let he = base + captured;
      if (prev > 0) {
        hb = Buffer.concat([m.head, buf.subarray(hs, he)]);
        hs = 0;
        he = hb.length;
      }
      const end = findHeadEndIn(hb, hs + Math.max(0, prev - 3), he);
      if (end < 0) {
        // Kept past this record: a copy (hb is the record's bytes when prev is 0).
        if (he - hs > MAX_HEAD_BYTES) {
          this.drop('head_too_large');
          m.head = prev > 0 ? hb.subarray(hs, hs + MAX_HEAD_BYTES) : copyOf(hb, hs, hs + MAX_HEAD_BYTES);
          m.gap = true;
        } else {
          m.head = prev > 0 ? (hs === 0 && he === hb.length ? hb : hb.subarray(hs, he)) : copyOf(hb, hs, he);
          if (truncated) m.gap = true;
        }
        if (m.gap) {
          // Only the start of the head is known: keep what the complete lines say.
          const parsed = parseHead(m.head, false, c.role);
          m.parsed = parsed;
          if (parsed) {
            const framing = this.onHead(c, ex, isRequest, parsed);
            if (!framing) m.parsed = null;
          }
          m.body = 'unknown';
        }
        return null;
      }
      m.head = NO_HEAD; // read: nothing keeps the record's bytes
      m.headDone = true;
      const parsed = parseHeadAt(hb, hs, end - 4, true, c.role);
      const framing = parsed ? this.onHead(c, ex, isRequest, parsed) : null;
      if (!parsed || !framing) {
        m.parsed = null;
        return null;
      }
      m.parsed = parsed;
      m.body = framing.kind;
      m.remaining = framing.length;
      bodyStart = off + (end - hs - prev);
    }
    const available = rec.len - bodyStart;
    switch (m.body) {
      case 'none':
        m.complete = true;
        return bodyStart < captured ? bodyStart : null;
      case 'length':
        if (available >= m.remaining) {
          const next = bodyStart + m.remaining;
          m.remaining = 0;
          m.complete = true;
          return next < captured ? next : null;
        }
        m.remaining -= Math.max(0, available);
        return null;
      case 'chunked': {
        if (available > 0 && (truncated ? endsChunked(rec.tail) : endsChunkedAt(buf, base, base + captured))) m.complete = true;
        return null;
      }
      default:
        return null; // until-close / unknown: the connection's end (or the next request) ends it
    }
  }

  private invalidate(c: Conn, ex: Exchange): void {
    ex.invalid = true;
    c.exchanges = c.exchanges.filter((e) => e !== ex);
    c.dead = true;
    this.drop('not_http');
  }

  /** Emits the exchange's span (when it has what a span needs) and forgets it. */
  private finish(c: Conn, ex: Exchange, reason: 'complete' | 'closed' | 'superseded' | 'idle' = 'complete'): void {
    // In place (callers that loop over exchanges loop over a copy); mostly the first: shift (splice makes an array).
    const at = c.exchanges[0] === ex ? 0 : c.exchanges.indexOf(ex);
    if (at === 0) c.exchanges.shift();
    else if (at > 0) c.exchanges.splice(at, 1);
    if (c.role === 'server' && this.serverTraceStates.size > 0) this.serverTraceStates.delete(ex.ids.spanId);
    if (ex.invalid || !ex.requestLine || !ex.req.parsed) {
      this.drop(ex.req.headDone || ex.req.gap ? 'not_http' : 'incomplete_request');
      return;
    }
    if (ex.pending) {
      // ids are never made up here: without the kernel's decision there is no span
      this.drop('context_not_decided');
      return;
    }
    const hasResponse = ex.resp !== null && ex.resp.parsed !== null && ex.status >= 100;
    if (!hasResponse && c.role === 'server') {
      this.drop(reason === 'closed' ? 'closed_before_response' : 'no_response');
      return;
    }
    if (!hasResponse && !ex.req.headDone) {
      this.drop('incomplete_request');
      return;
    }
    const resource = this.o.resourceOf(c.pid);
    if (!resource) {
      this.drop('unknown_process');
      return;
    }
    const view: ExchangeView = {
      role: c.role,
      ids: ex.ids,
      traceFlags: ex.traceFlags,
      link: ex.link,
      inheritedTraceState: ex.inheritedTraceState,
      request: ex.requestLine,
      requestHeaders: ex.req.parsed.headers,
      requestHeadComplete: ex.req.parsed.complete,
      status: hasResponse ? ex.status : 0,
      responseComplete: ex.resp?.complete ?? false,
      endReason: hasResponse ? (ex.resp!.complete ? 'complete' : reason) : reason,
      startNs: c.role === 'server' ? ex.req.startNs : ex.req.startNs,
      endNs: c.role === 'server' ? (ex.resp?.lastNs ?? ex.req.lastNs) : (ex.resp?.lastNs ?? ex.req.lastNs),
      localAddress: c.localAddress,
      localPort: c.localPort,
      remoteAddress: c.remoteAddress,
      remotePort: c.remotePort,
      tid: ex.tid,
      route: ex.route,
      propagationSkipped: ex.propagationSkipped,
      hostMayDiffer: c.role === 'client' && (this.o.hostMayDiffer?.(c.pid) ?? false),
    };
    this.o.onSpan(sysHttpSpan(view, resource, this.o.clock, this.o.redaction), c.pid);
  }

  private finishAll(c: Conn, reason: 'closed' | 'superseded' | 'idle'): void {
    // finish() removes each from c.exchanges: always the first left, in order.
    if (c.exchanges.length === 0) return;
    for (const ex of [...c.exchanges]) this.finish(c, ex, reason);
  }

  private close(connId: bigint, ts: bigint): void {
    const c = this.conns.get(connId);
    if (!c) return;
    this.forget(c);
    void ts;
    this.finishAll(c, 'closed');
  }

  /** Finishes connections idle for longer than the timeout (kernel monotonic `nowNs`). */
  sweep(nowNs: bigint): void {
    for (let c = this.conns.oldest; c !== null; ) {
      if (nowNs - c.lastNs < this.idleNs) break; // LRU order: the rest are newer
      const next = c.newer;
      this.forget(c);
      this.finishAll(c, 'idle');
      c = next;
    }
  }

  /** A process is gone: finish what its connections can still report (least recently active first). */
  dropPid(pid: number): void {
    for (let c = this.conns.oldest; c !== null; ) {
      const next = c.newer;
      if (c.pid === pid) {
        this.forget(c);
        this.finishAll(c, 'closed');
      }
      c = next;
    }
  }
}

const HTTP1 = Buffer.from('HTTP/1.', 'latin1');

/** A record's ids as bytes (decoded records carry them; a record made otherwise, from its hex). */
function idsOf(rec: SysHttpDataRecord): SpanIds {
  return rec.ids ?? SpanIds.fromHex(rec.traceId, rec.spanId, rec.parentSpanId);
}

/** A head cut before its end: its body is not known yet. Shared (read only). */
const UNKNOWN_BODY: { kind: 'unknown'; length: number } = Object.freeze({ kind: 'unknown', length: 0 });

/** Whether the record's captured bytes at `off` start with "HTTP/1." (a response's status line). */
function startsWithHttp1(rec: SysHttpDataRecord, off: number): boolean {
  const buf = rec.bytes ?? rec.data;
  const at = (rec.bytes !== undefined ? (rec.dataOffset ?? 0) : 0) + off;
  const captured = rec.bytes !== undefined ? (rec.captureLen ?? 0) : buf.length;
  if (captured - off < HTTP1.length) return false;
  for (let i = 0; i < HTTP1.length; i++) if (buf[at + i] !== HTTP1[i]) return false;
  return true;
}

function firstLineOf(data: Buffer): string {
  const end = data.indexOf('\r\n', 0, 'latin1');
  return end < 0 ? '' : data.toString('latin1', 0, end);
}
