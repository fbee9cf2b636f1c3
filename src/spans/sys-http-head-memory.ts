/**
 * What the syscall path's head parser (sys-http-parse.ts) remembers of the last heads it parsed, so
 * that a repeated head, line or value is compared instead of parsed and copied. Pure caches: the
 * parse of a head is a function of its bytes alone, and every hit is checked against the bytes.
 *
 * One HeadMemory per side of a connection (server, client): a process that both serves and calls
 * (a Go server calling a downstream, a proxy) parses an incoming request, an outgoing request, the
 * downstream's response and its own response per exchange. With one memory for both sides each
 * head replaced the other's (different Host, User-Agent, Server, Content-Length): every head was
 * a miss, parsed line by line and copied into the memory (gochain profile: parseHeadLines 5% of the
 * agent's CPU, plus the copies). Per side, each one meets the heads it saw last.
 */
import type { ParsedHead } from './sys-http-parse';

/** Buffer's own latin1 decoder (what toString('latin1', start, end) calls, without its dispatch). */
const latin1 = (b: Buffer, start: number, end: number): string => (b as Buffer & { latin1Slice(s: number, e: number): string }).latin1Slice(start, end);

/**
 * The last string made from a byte range, per slot (a kept header's name, a request's or a
 * response's first line): a service's requests repeat their Host, User-Agent, Content-Length and
 * status line, so the same bytes give back the same string instead of a fresh copy. Same text
 * either way; the repeated string also keeps its hash for the lookups downstream (hosts, series).
 */
export class LastString {
  private bytes = Buffer.allocUnsafe(0);
  private len = -1;
  private str = '';

  of(b: Buffer, start: number, end: number): string {
    const n = end - start;
    if (n === this.len) {
      const last = this.bytes;
      let i = 0;
      while (i < n && b[start + i] === last[i]) i++;
      if (i === n) return this.str;
    }
    const str = latin1(b, start, end);
    if (n <= MAX_REMEMBERED) {
      if (this.bytes.length < n) this.bytes = Buffer.allocUnsafe(Math.max(n, 64));
      b.copy(this.bytes, 0, start, end);
      this.len = n;
      this.str = str;
    }
    return str;
  }
}

/** Longer values are made anew each time (a comparison would cost what it saves). */
const MAX_REMEMBERED = 256;

/**
 * The last head of one kind parsed well, whole, and its parse. A client repeats its request head
 * (wrk, a Go client) and a server its response head within a second (Date), so one comparison of
 * the bytes (a request and its response: ~700 -> ~450 ns in process) replaces the first line's
 * scan and a comparison per line (LineMemory). The parse is a pure function of the bytes and
 * `complete`, and ParsedHead is read only: the same object is returned.
 */
export class WholeHead {
  private bytes = Buffer.allocUnsafe(256);
  private len = -1;
  private parsed: ParsedHead | null = null;

  same(b: Buffer, start: number, end: number, complete: boolean): ParsedHead | null {
    const n = end - start;
    const parsed = this.parsed;
    if (n !== this.len || parsed === null || parsed.complete !== complete) return null;
    // One native comparison (memcmp): 100-200 bytes compared byte by byte in JS cost more than the call.
    return b.compare(this.bytes, 0, n, start, end) === 0 ? parsed : null;
  }

  remember(b: Buffer, start: number, end: number, parsed: ParsedHead): void {
    const n = end - start;
    this.len = n > MAX_REMEMBERED_HEAD ? -1 : n;
    if (this.len < 0) return;
    if (this.bytes.length < n) this.bytes = Buffer.allocUnsafe(Math.max(n, this.bytes.length * 2));
    b.copy(this.bytes, 0, start, end);
    this.parsed = parsed;
  }
}

/**
 * The header lines of the last head of one kind (requests, or responses): their bytes and what
 * each said (its kept name and value; only lines found well-formed are remembered). A service's
 * heads mostly repeat most of their lines (Host, User-Agent, Content-Type, Server...): a line
 * whose bytes, and end, equal the remembered line at the same position says the same, so it is
 * compared instead of parsed. A line's verdict depends on its bytes alone (they hold no CRLF; the
 * head's last line of a complete head is compared as such: it has no CRLF after it).
 */
export class LineMemory {
  /** The remembered lines: [off, off + len) of `bytes`, `final`: it ended the head (no CRLF). */
  private bytes = Buffer.allocUnsafe(512);
  private count = 0;
  private off: number[] = [];
  private len: number[] = [];
  private final: boolean[] = [];
  private key: (string | undefined)[] = [];
  private value: string[] = [];
  /** The kept headers of the remembered lines (read only: a head whose lines are all the same shares it). */
  private headers: Map<string, string> | null = null;
  /** The head being parsed: its lines' positions in its own buffer, and whether one was new. */
  private nCount = 0;
  private nStart: number[] = [];
  private nLen: number[] = [];
  private nFinal: boolean[] = [];
  private nKey: (string | undefined)[] = [];
  private nValue: string[] = [];
  private changed = false;

  begin(): void {
    this.nCount = 0;
    this.changed = false;
  }

  /**
   * Line `k` of the head at `ls` (within [ls, end)): the remembered line's length when it is the
   * same line, else -1.
   */
  match(k: number, b: Buffer, ls: number, end: number, complete: boolean): number {
    if (k >= this.count) return -1;
    const n = this.len[k];
    if (this.final[k]) {
      if (!complete || ls + n !== end) return -1;
    } else if (ls + n + 1 >= end || b[ls + n] !== 0x0d || b[ls + n + 1] !== 0x0a) {
      return -1;
    }
    const from = this.off[k];
    const bytes = this.bytes;
    for (let i = 0; i < n; i++) if (b[ls + i] !== bytes[from + i]) return -1;
    return n;
  }

  keyOf(k: number): string | undefined {
    return this.key[k];
  }

  valueOf(k: number): string {
    return this.value[k];
  }

  /** Line `nCount` of the head being parsed: [ls, ls + len) of its buffer. */
  note(ls: number, len: number, final: boolean, key: string | undefined, value: string, isNew: boolean): void {
    const k = this.nCount++;
    this.nStart[k] = ls;
    this.nLen[k] = len;
    this.nFinal[k] = final;
    this.nKey[k] = key;
    this.nValue[k] = value;
    if (isNew) this.changed = true;
  }

  /** Lines of the head being parsed so far. */
  get noted(): number {
    return this.nCount;
  }

  /** The remembered Map when the head being parsed has exactly the remembered lines. */
  sharedHeaders(): Map<string, string> | null {
    return !this.changed && this.nCount === this.count ? this.headers : null;
  }

  /** The kept headers of the first `k` remembered lines, as a head's Map. */
  replay(k: number): Map<string, string> {
    const headers = new Map<string, string>();
    for (let i = 0; i < k; i++) {
      const key = this.key[i];
      if (key !== undefined) addHeader(headers, key, this.value[i]);
    }
    return headers;
  }

  /** The head parsed well: its lines are remembered (copied) when any differed. */
  commit(b: Buffer, headers: Map<string, string>): void {
    const n = this.nCount;
    if (!this.changed && n === this.count) return;
    this.headers = headers;
    let total = 0;
    for (let k = 0; k < n; k++) total += this.nLen[k];
    if (total > MAX_REMEMBERED_HEAD) {
      this.count = 0;
      this.headers = null;
      return;
    }
    if (this.bytes.length < total) this.bytes = Buffer.allocUnsafe(Math.max(total, this.bytes.length * 2));
    let at = 0;
    for (let k = 0; k < n; k++) {
      const len = this.nLen[k];
      b.copy(this.bytes, at, this.nStart[k], this.nStart[k] + len);
      this.off[k] = at;
      this.len[k] = len;
      this.final[k] = this.nFinal[k];
      this.key[k] = this.nKey[k];
      this.value[k] = this.nValue[k];
      at += len;
    }
    this.count = n;
  }

  abandon(): void {
    this.nCount = 0;
  }
}

/** Heads longer than this are parsed each time (not remembered). */
const MAX_REMEMBERED_HEAD = 4096;

/** A kept header's value into a head's Map: repeated headers joined with ", ". */
export function addHeader(headers: Map<string, string>, key: string, value: string): void {
  const prev = headers.get(key);
  headers.set(key, prev === undefined ? value : `${prev}, ${value}`);
}

/** Everything remembered for the heads of one side of connections (see the file's comment). */
export class HeadMemory {
  readonly requestLines = new LineMemory();
  readonly responseLines = new LineMemory();
  readonly requestHead = new WholeHead();
  readonly responseHead = new WholeHead();
  readonly requestLine = new LastString();
  readonly statusLine = new LastString();
  /** Per kept header name: its last value. */
  readonly values: ReadonlyMap<string, LastString>;

  constructor(keptHeaders: Iterable<string>) {
    this.values = new Map([...keptHeaders].map((h) => [h, new LastString()]));
  }
}
