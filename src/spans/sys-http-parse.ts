/**
 * HTTP/1.x message framing over the bounded captures of the syscall tracer. The kernel copies only
 * the first bytes of each read/write (plus its last bytes and its true length), so framing works
 * on byte COUNTS for bodies and on the captured bytes for heads. Pure and strict: anything that is
 * not a well-formed HTTP/1.x head is rejected, never guessed at.
 */

import { addHeader, HeadMemory, type LineMemory } from './sys-http-head-memory';

export const MAX_HEAD_BYTES = 16 * 1024;

/** Method strings shared by every request (known methods: their Set lookups hash nothing). */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY'];

function methodOf(line: string, end: number): string {
  for (const m of METHODS) if (m.length === end && line.startsWith(m)) return m;
  return line.slice(0, end);
}

/** "HTTP/1." at `at` in `line`. */
function isHttp1At(line: string, at: number): boolean {
  return (
    line.charCodeAt(at) === 0x48 &&
    line.charCodeAt(at + 1) === 0x54 &&
    line.charCodeAt(at + 2) === 0x54 &&
    line.charCodeAt(at + 3) === 0x50 &&
    line.charCodeAt(at + 4) === 0x2f &&
    line.charCodeAt(at + 5) === 0x31 &&
    line.charCodeAt(at + 6) === 0x2e
  );
}

export interface RequestLine {
  readonly method: string;
  readonly target: string;
  readonly minor: number;
}

export interface StatusLine {
  readonly minor: number;
  readonly status: number;
}

/**
 * `METHOD SP target SP HTTP/1.x` exactly: a method of 3-12 upper-case letters, a target of one or
 * more characters that are neither white space (\s) nor controls (what
 * /^([A-Z]{3,12}) ([^\s\x00-\x1f\x7f]+) HTTP\/1\.([01])$/ accepts), by character codes: once per request.
 */
export const parseRequestLine: (line: string) => RequestLine | null = rememberLastTwo(parseRequestLineOnce);

/** Longer strings are computed each time (a comparison would cost what it saves). */
const MAX_REMEMBERED_LINE = 512;

/**
 * `compute` giving back the last two strings' results (read only): a service's requests mostly
 * repeat one or two lines and targets (a process that serves and calls alternates its incoming and
 * outgoing ones); the remembered results keep their strings, whose hashes then stay for the
 * lookups downstream.
 */
function rememberLastTwo<T>(compute: (s: string) => T): (s: string) => T {
  let key0: string | undefined;
  let key1: string | undefined;
  let value0: T;
  let value1: T;
  return (s: string): T => {
    if (s === key0) return value0;
    if (s === key1) return value1;
    const value = compute(s);
    if (s.length <= MAX_REMEMBERED_LINE) {
      key1 = key0;
      value1 = value0;
      key0 = s;
      value0 = value;
    }
    return value;
  };
}

function parseRequestLineOnce(line: string): RequestLine | null {
  const n = line.length;
  let i = 0;
  while (i < n) {
    const c = line.charCodeAt(i);
    if (c < 0x41 || c > 0x5a) break;
    i++;
  }
  if (i < 3 || i > 12 || line.charCodeAt(i) !== 0x20) return null;
  const methodEnd = i;
  const targetStart = ++i;
  while (i < n) {
    const c = line.charCodeAt(i);
    // \s (latin1 and beyond: tab..CR, space, NBSP, U+1680, U+2000-U+200A, U+2028/9, U+202F, U+205F, U+3000, U+FEFF), controls, DEL
    if (c <= 0x20 || c === 0x7f || c === 0xa0 || (c > 0xff && isUnicodeSpace(c))) break;
    i++;
  }
  if (i === targetStart || n - i !== 9 || line.charCodeAt(i) !== 0x20 || !isHttp1At(line, i + 1)) return null;
  const minor = line.charCodeAt(i + 8) - 0x30;
  if (minor !== 0 && minor !== 1) return null;
  return { method: methodOf(line, methodEnd), target: line.slice(targetStart, i), minor };
}

function isUnicodeSpace(c: number): boolean {
  return c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/**
 * `HTTP/1.x SP 1xx-5xx [SP reason]` (what /^HTTP\/1\.([01]) ([1-5]\d\d)(?: [^\x00-\x08\x0a-\x1f\x7f]*)?$/
 * accepts), by character codes: once per response.
 */
export function parseStatusLine(line: string): StatusLine | null {
  // Responses mostly repeat their status line (the same string: parseHeadAt's LastString).
  if (line === lastStatus.line) return lastStatus.parsed;
  const parsed = statusLineOf(line);
  lastStatus = { line, parsed };
  return parsed;
}

/** The last status line parsed and its result (read only, shared). */
let lastStatus: { readonly line: string; readonly parsed: StatusLine | null } = { line: '', parsed: null };

function statusLineOf(line: string): StatusLine | null {
  const n = line.length;
  if (n < 12 || !isHttp1At(line, 0) || line.charCodeAt(8) !== 0x20) return null;
  const minor = line.charCodeAt(7) - 0x30;
  const d0 = line.charCodeAt(9) - 0x30;
  const d1 = line.charCodeAt(10) - 0x30;
  const d2 = line.charCodeAt(11) - 0x30;
  if ((minor !== 0 && minor !== 1) || d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return null;
  if (n > 12) {
    if (line.charCodeAt(12) !== 0x20) return null;
    for (let i = 13; i < n; i++) {
      const c = line.charCodeAt(i);
      if (c <= 0x1f ? c !== 0x09 : c === 0x7f) return null;
    }
  }
  return { minor, status: d0 * 100 + d1 * 10 + d2 };
}

/**
 * The only header values a parsed head keeps (docs/data.md): trace context, the two attributes
 * taken from headers, and framing. Every other value (Authorization, Cookie, Set-Cookie, API keys)
 * is checked for well-formedness and then dropped, so nothing downstream can copy it into a span
 * or a log line.
 */
export const KEPT_HEADERS: ReadonlySet<string> = new Set(['traceparent', 'tracestate', 'user-agent', 'host', 'content-length', 'transfer-encoding']);

export type BodyKind = 'none' | 'length' | 'chunked' | 'until-close';

export interface ParsedHead {
  readonly firstLine: string;
  /** Lower-case names of KEPT_HEADERS only; repeated headers joined with ", " (tracestate, etc.). */
  readonly headers: ReadonlyMap<string, string>;
  /** False when the head was cut (bytes not captured): headers hold only complete lines. */
  readonly complete: boolean;
}

/** TOKEN's characters by byte (tchar, RFC 9110 5.6.2): the header-name check without a regex per line. */
const TOKEN_CHARS = new Uint8Array(256);
for (const ch of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TOKEN_CHARS[ch.charCodeAt(0)] = 1;
/**
 * Bytes of a header value by class: 1 white space String.prototype.trim removes (tab, LF, VT, FF,
 * CR, space, NBSP), 2 of those a control a value must not hold inside (LF, VT, FF, CR), 4 a control
 * never allowed (NUL..BS, SO..US, DEL). Tab is white space only; everything else is 0.
 */
const VALUE_CLASS = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) VALUE_CLASS[c] = 4;
VALUE_CLASS[0x7f] = 4;
VALUE_CLASS[0x09] = 1;
for (const c of [0x0a, 0x0b, 0x0c, 0x0d]) VALUE_CLASS[c] = 1 | 2;
VALUE_CLASS[0x20] = 1;
VALUE_CLASS[0xa0] = 1;

/** KEPT_HEADERS' names as bytes, lower case, by length: any other name is validated, never compared or copied. */
const KEPT_BY_LENGTH: readonly (readonly (readonly [string, Uint8Array])[])[] = (() => {
  const out: [string, Uint8Array][][] = [];
  for (const h of KEPT_HEADERS) (out[h.length] ??= []).push([h, Buffer.from(h, 'latin1')]);
  return out;
})();

/** The kept header named by bytes [start, end) of `b` (ASCII case-insensitive), else undefined. */
function keptName(b: Uint8Array, start: number, end: number): string | undefined {
  const candidates = KEPT_BY_LENGTH[end - start];
  if (candidates === undefined) return undefined;
  for (const [name, lower] of candidates) {
    let i = 0;
    for (; i < lower.length; i++) {
      const c = b[start + i];
      if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== lower[i]) break;
    }
    if (i === lower.length) return name;
  }
  return undefined;
}

/** The memories of the heads parsed on server and on client connections (sys-http-head-memory.ts). */
const serverHeads = new HeadMemory(KEPT_HEADERS);
const clientHeads = new HeadMemory(KEPT_HEADERS);

/**
 * Parses a head (without the final CRLF CRLF). `complete` false: the head was cut; the last
 * (possibly partial) line is ignored. Returns null on anything malformed. `side`: the role of the
 * connection the head was seen on (which memory of past heads it is compared with; the result is
 * the same either way).
 */
export function parseHead(bytes: Buffer, complete: boolean, side: 'server' | 'client' = 'server'): ParsedHead | null {
  return parseHeadAt(bytes, 0, bytes.length, complete, side);
}

/**
 * parseHead of bytes [start, end) of `b`, read in place: one pass over the bytes (line ends, name
 * tokens, value controls and trimming by byte class); strings are made only for the first line
 * and the kept headers' values. This runs for every request and response the syscall tracer sees.
 *
 * The definition it keeps (test/unit/spans/sys-http-parse.test.ts): lines are the CRLF-separated
 * parts of the head as latin1; every line after the first is `token ":" value` where the value,
 * trimmed as String.prototype.trim does, holds no control but tab; an empty line only at the end
 * of a complete head; a cut head's last line is ignored.
 */
export function parseHeadAt(b: Buffer, start: number, end: number, complete: boolean, side: 'server' | 'client' = 'server'): ParsedHead | null {
  const heads = side === 'client' ? clientHeads : serverHeads;
  const response = b[start] === 0x48;
  const whole = response ? heads.responseHead : heads.requestHead;
  const same = whole.same(b, start, end, complete);
  if (same !== null) return same;
  const memory = response ? heads.responseLines : heads.requestLines;
  const parsed = parseHeadLines(b, start, end, complete, memory, heads);
  if (parsed !== null) {
    memory.commit(b, parsed.headers as Map<string, string>);
    whole.remember(b, start, end, parsed);
  } else {
    memory.abandon();
  }
  return parsed;
}


function parseHeadLines(b: Buffer, start: number, end: number, complete: boolean, memory: LineMemory, heads: HeadMemory): ParsedHead | null {
  memory.begin();
  let firstEnd = -1;
  for (let i = start; i + 1 < end; i++) {
    if (b[i] === 0x0d && b[i + 1] === 0x0a) {
      firstEnd = i;
      break;
    }
  }
  // A cut head without one whole line says nothing.
  if (firstEnd < 0 && !complete) return null;
  const firstLine = (b[start] === 0x48 ? heads.statusLine : heads.requestLine).of(b, start, firstEnd < 0 ? end : firstEnd);
  // Made at the first line that differs from the remembered head's (until then its lines are
  // the same: the remembered Map is shared when they all are).
  let headers: Map<string, string> | null = null;
  let ls = firstEnd + 2;
  for (let k = 0; firstEnd >= 0; k++) {
    const same = memory.match(k, b, ls, end, complete);
    if (same > 0) {
      const key = memory.keyOf(k);
      if (key !== undefined && headers !== null) addHeader(headers, key, memory.valueOf(k));
      const le = ls + same;
      memory.note(ls, same, le === end, key, memory.valueOf(k), false);
      if (le === end) break;
      ls = le + 2;
      continue;
    }
    headers ??= memory.replay(k);
    // The name: token characters up to the first colon.
    let i = ls;
    while (i < end && TOKEN_CHARS[b[i]] === 1) i++;
    const colon = i < end && b[i] === 0x3a && i > ls ? i : -1;
    // The value: up to the line's CRLF, trimmed, controls checked (the verdict waits for the
    // line's end: a cut head's partial last line is ignored whatever it holds).
    let bad = colon < 0;
    let vs = -1; // first byte past leading white space
    let ve = -1; // just past the last byte that is not white space
    let ctlAfterContent = false;
    let le = -1;
    if (colon < 0) {
      for (; i + 1 < end; i++) {
        if (b[i] === 0x0d && b[i + 1] === 0x0a) {
          le = i;
          break;
        }
      }
    } else {
      for (i = colon + 1; i < end; i++) {
        const c = b[i];
        if (c === 0x0d && i + 1 < end && b[i + 1] === 0x0a) {
          le = i;
          break;
        }
        const k = VALUE_CLASS[c];
        if ((k & 1) === 0) {
          if (k === 4 || ctlAfterContent) bad = true;
          if (vs < 0) vs = i;
          ve = i + 1;
        } else if ((k & 2) !== 0 && vs >= 0) {
          ctlAfterContent = true;
        }
      }
    }
    const last = le < 0;
    if (last) {
      if (!complete) break; // the partial last line of a cut head
      le = end;
    }
    if (le === ls) {
      // An empty line: the head's own end (complete heads only), else malformed.
      if (complete && last) break;
      return null;
    }
    if (bad) return null;
    const key = keptName(b, ls, colon);
    let value = '';
    if (key !== undefined) {
      value = vs < 0 ? '' : heads.values.get(key)!.of(b, vs, ve);
      addHeader(headers, key, value);
    }
    memory.note(ls, le - ls, last, key, value, true);
    if (last) break;
    ls = le + 2;
  }
  // No line parsed: each was the remembered line at its position.
  headers ??= memory.sharedHeaders() ?? memory.replay(memory.noted);
  return { firstLine, headers, complete };
}

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

/** Where the head ends (index just past CRLF CRLF) in `buf`, searching from `from`; -1 if not yet. */
export function findHeadEnd(buf: Buffer, from = 0): number {
  const i = buf.indexOf(HEAD_END, Math.max(0, from));
  return i < 0 ? -1 : i + 4;
}

/**
 * findHeadEnd within bytes [from, end) of `buf` (an index into `buf`), -1 if not yet. By a loop
 * rather than Buffer.indexOf (a native call per record costs more than a head's scan): the byte 3
 * past a candidate start is looked at first, and a byte that is neither CR nor LF there rules out
 * four starts at once.
 */
export function findHeadEndIn(buf: Buffer, from: number, end: number): number {
  let i = from;
  while (i + 3 < end) {
    const c = buf[i + 3];
    if (c !== 0x0a && c !== 0x0d) {
      i += 4;
      continue;
    }
    if (c === 0x0a && buf[i + 2] === 0x0d && buf[i + 1] === 0x0a && buf[i] === 0x0d) return i + 4;
    i++;
  }
  return -1;
}

/** Body framings without a length: shared (callers only read them). */
const NO_BODY: { kind: BodyKind; length: number } = Object.freeze({ kind: 'none', length: 0 });
const CHUNKED: { kind: BodyKind; length: number } = Object.freeze({ kind: 'chunked', length: 0 });
const UNTIL_CLOSE: { kind: BodyKind; length: number } = Object.freeze({ kind: 'until-close', length: 0 });

/** The value of /^\d{1,15}$/ (a Content-Length), else -1: by character codes. */
function decimal(s: string): number {
  const n = s.length;
  if (n === 0 || n > 15) return -1;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
  }
  return Number(s);
}

function lengthBody(n: number): { kind: BodyKind; length: number } {
  return n === 0 ? NO_BODY : { kind: 'length', length: n };
}

/** Body framing of a request (RFC 9112 6.3): chunked, Content-Length, else none. */
export function requestBody(headers: ReadonlyMap<string, string>): { kind: BodyKind; length: number } | null {
  const te = headers.get('transfer-encoding');
  if (te !== undefined) return /(^|,)\s*chunked\s*$/i.test(te) ? CHUNKED : null;
  const cl = headers.get('content-length');
  if (cl !== undefined) {
    const n = decimal(cl);
    return n < 0 ? null : lengthBody(n);
  }
  return NO_BODY;
}

/** Body framing of a response to `method` with `status`. */
export function responseBody(method: string, status: number, headers: ReadonlyMap<string, string>): { kind: BodyKind; length: number } | null {
  if (method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304) return NO_BODY;
  const te = headers.get('transfer-encoding');
  if (te !== undefined) return /(^|,)\s*chunked\s*$/i.test(te) ? CHUNKED : UNTIL_CLOSE;
  const cl = headers.get('content-length');
  if (cl !== undefined) {
    if (!cl.includes(',')) {
      const n = decimal(cl);
      return n < 0 ? null : lengthBody(n);
    }
    // Repeated identical values ("5, 5") are allowed by RFC 9110.
    const values = new Set(cl.split(',').map((v) => v.trim()));
    if (values.size !== 1) return null;
    const n = decimal([...values][0]);
    return n < 0 ? null : lengthBody(n);
  }
  return UNTIL_CLOSE;
}

const CHUNKED_END = Buffer.from('0\r\n\r\n', 'latin1');

/** Whether a message's last bytes end a chunked body (last chunk, no trailers). */
export function endsChunked(last: Buffer): boolean {
  return last.length >= CHUNKED_END.length && last.subarray(last.length - CHUNKED_END.length).equals(CHUNKED_END);
}

/** endsChunked of bytes [start, end) of `buf`. */
export function endsChunkedAt(buf: Buffer, start: number, end: number): boolean {
  if (end - start < CHUNKED_END.length) return false;
  for (let i = 0; i < CHUNKED_END.length; i++) if (buf[end - CHUNKED_END.length + i] !== CHUNKED_END[i]) return false;
  return true;
}

/** Splits a request target into path and query (absolute-form: scheme and authority dropped). */
export const splitTarget: (target: string) => TargetParts = rememberLastTwo(splitTargetOnce);

export interface TargetParts {
  readonly path: string;
  readonly query: string;
  readonly authority?: string;
}

function splitTargetOnce(target: string): TargetParts {
  let t = target;
  let authority: string | undefined;
  // Origin-form (the usual "/path?query") cannot be absolute-form: no regex for it.
  const abs = t.charCodeAt(0) === 0x2f ? null : /^https?:\/\/([^/?#]*)(.*)$/i.exec(t);
  if (abs) {
    authority = abs[1];
    t = abs[2] || '/';
  }
  const hash = t.indexOf('#');
  if (hash >= 0) t = t.slice(0, hash);
  const q = t.indexOf('?');
  return q >= 0 ? { path: t.slice(0, q), query: t.slice(q + 1), authority } : { path: t, query: '', authority };
}
