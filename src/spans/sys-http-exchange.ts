/**
 * The syscall assembler's state: a connection, its exchanges (a request and its response) and
 * their messages as framing goes. Plain objects of one shape each, made once per connection,
 * exchange or message.
 */
import type { BodyKind, ParsedHead, RequestLine } from './sys-http-parse';
import type { ExchangeView } from './sys-http-span';
import type { LruEntry } from './sys-http-conns';
import type { SpanIds } from './span-ids';

export interface Message {
  /** Captured head bytes so far (bounded). */
  head: Buffer;
  headDone: boolean;
  /** Bytes of the head were not captured (message longer than the capture). */
  gap: boolean;
  parsed: ParsedHead | null;
  body: BodyKind | 'unknown';
  remaining: number;
  complete: boolean;
  startNs: bigint;
  lastNs: bigint;
}

export interface Exchange {
  /** The ids (and link) are set by the record that starts the request, or, when its head went on
   * in later reads (`pending`), by the record on which the kernel decided them. */
  ids: SpanIds;
  traceFlags: number;
  link: ExchangeView['link'];
  pending: boolean;
  readonly tid: number;
  /** Client linked in-process to a server request: that request's tracestate (what the kernel sends on). */
  readonly inheritedTraceState: string;
  readonly req: Message;
  resp: Message | null;
  requestLine: RequestLine | null;
  invalid: boolean;
  status: number;
  /** A framework's route for the request (Go Request.Pattern), '' when none. */
  route: string;
  /** A Go call's request left without the header by the sk_msg program (said on its response). */
  propagationSkipped: boolean;
}

export interface Conn extends LruEntry<bigint, Conn> {
  readonly id: bigint;
  readonly role: 'server' | 'client';
  readonly pid: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  exchanges: Exchange[];
  /** A protocol switch (101) or garbage: further bytes are not HTTP/1.x. */
  dead: boolean;
  /** The record whose spare ids are being handed out (the assembler's count of data records, not
   * the record: records are valid during their call only), and how many were used. */
  spareRecord?: number;
  spareUsed: number;
  lastNs: bigint;
  /** conn_id's low and high 32 bits (records are matched to the last connection by them). */
  readonly idLo: number;
  readonly idHi: number;
  /** Links of the connections' order of activity (ConnTable). */
  older: Conn | null;
  newer: Conn | null;
}

/** The head of a message before its first bytes: shared (heads are replaced, never written). */
export const NO_HEAD = Buffer.alloc(0);

export function newMessage(ts: bigint): Message {
  return { head: NO_HEAD, headDone: false, gap: false, parsed: null, body: 'unknown', remaining: 0, complete: false, startNs: ts, lastNs: ts };
}

/** Bytes [start, end) of `b` in a buffer of their own (a head kept past its record, whose bytes are the ring's). */
export function copyOf(b: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  b.copy(out, 0, start, end);
  return out;
}
