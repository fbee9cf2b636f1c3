/**
 * HTTP/1.x message framing over the bounded captures of the syscall tracer. The kernel copies only
 * the first bytes of each read/write (plus its last bytes and its true length), so framing works
 * on byte COUNTS for bodies and on the captured bytes for heads. Pure and strict: anything that is
 * not a well-formed HTTP/1.x head is rejected, never guessed at.
 */

export const MAX_HEAD_BYTES = 16 * 1024;

const REQUEST_LINE = /^([A-Z]{3,12}) ([^\s\x00-\x1f\x7f]+) HTTP\/1\.([01])$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-5]\d\d)(?: [^\x00-\x08\x0a-\x1f\x7f]*)?$/;

export interface RequestLine {
  readonly method: string;
  readonly target: string;
  readonly minor: number;
}

export interface StatusLine {
  readonly minor: number;
  readonly status: number;
}

export function parseRequestLine(line: string): RequestLine | null {
  const m = REQUEST_LINE.exec(line);
  if (!m) return null;
  return { method: m[1], target: m[2], minor: Number(m[3]) };
}

export function parseStatusLine(line: string): StatusLine | null {
  const m = STATUS_LINE.exec(line);
  if (!m) return null;
  return { minor: Number(m[1]), status: Number(m[2]) };
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

/** TOKEN's characters by char code (tchar, RFC 9110 5.6.2): the header-name check without a regex per line. */
const TOKEN_CHARS = new Uint8Array(128);
for (const ch of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TOKEN_CHARS[ch.charCodeAt(0)] = 1;
/** Control characters a header value must not hold (after trimming). */
const VALUE_CTL = /[\x00-\x08\x0a-\x1f\x7f]/;
/** Lengths of KEPT_HEADERS' names: any other name is validated, never lower-cased or looked up. */
const KEPT_LENGTHS = new Set([...KEPT_HEADERS].map((h) => h.length));

function isToken(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || TOKEN_CHARS[c] === 0) return false;
  }
  return end > start;
}

/**
 * Parses a head (without the final CRLF CRLF). `complete` false: the head was cut; the last
 * (possibly partial) line is ignored. Returns null on anything malformed.
 *
 * Lines are the CRLF-separated parts of the head, walked in place (no array of lines, no regex per
 * header name): this runs for every request and response the syscall tracer sees.
 */
export function parseHead(bytes: Buffer, complete: boolean): ParsedHead | null {
  const text = bytes.toString('latin1');
  const firstEnd = text.indexOf('\r\n');
  // A cut head without one whole line says nothing.
  if (firstEnd < 0 && !complete) return null;
  const firstLine = firstEnd < 0 ? text : text.slice(0, firstEnd);
  const headers = new Map<string, string>();
  let start = firstEnd + 2;
  while (firstEnd >= 0) {
    let end = text.indexOf('\r\n', start);
    const last = end < 0;
    if (last) {
      if (!complete) break; // the partial last line of a cut head
      end = text.length;
    }
    if (end === start) {
      // An empty line: the head's own end (complete heads only), else malformed.
      if (complete && last) break;
      return null;
    }
    const colon = text.indexOf(':', start);
    if (colon <= start || colon >= end) return null;
    if (!isToken(text, start, colon)) return null;
    const value = text.slice(colon + 1, end).trim();
    if (VALUE_CTL.test(value)) return null;
    if (KEPT_LENGTHS.has(colon - start)) {
      const key = text.slice(start, colon).toLowerCase();
      if (KEPT_HEADERS.has(key)) {
        const prev = headers.get(key);
        headers.set(key, prev === undefined ? value : `${prev}, ${value}`);
      }
    }
    if (last) break;
    start = end + 2;
  }
  return { firstLine, headers, complete };
}

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

/** Where the head ends (index just past CRLF CRLF) in `buf`, searching from `from`; -1 if not yet. */
export function findHeadEnd(buf: Buffer, from = 0): number {
  const i = buf.indexOf(HEAD_END, Math.max(0, from));
  return i < 0 ? -1 : i + 4;
}

/** Body framing of a request (RFC 9112 6.3): chunked, Content-Length, else none. */
export function requestBody(headers: ReadonlyMap<string, string>): { kind: BodyKind; length: number } | null {
  const te = headers.get('transfer-encoding');
  if (te !== undefined) return /(^|,)\s*chunked\s*$/i.test(te) ? { kind: 'chunked', length: 0 } : null;
  const cl = headers.get('content-length');
  if (cl !== undefined) {
    if (!/^\d{1,15}$/.test(cl)) return null;
    const n = Number(cl);
    return n === 0 ? { kind: 'none', length: 0 } : { kind: 'length', length: n };
  }
  return { kind: 'none', length: 0 };
}

/** Body framing of a response to `method` with `status`. */
export function responseBody(method: string, status: number, headers: ReadonlyMap<string, string>): { kind: BodyKind; length: number } | null {
  if (method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304) return { kind: 'none', length: 0 };
  const te = headers.get('transfer-encoding');
  if (te !== undefined) return /(^|,)\s*chunked\s*$/i.test(te) ? { kind: 'chunked', length: 0 } : { kind: 'until-close', length: 0 };
  const cl = headers.get('content-length');
  if (cl !== undefined) {
    // Repeated identical values ("5, 5") are allowed by RFC 9110.
    const values = cl.includes(',') ? new Set(cl.split(',').map((v) => v.trim())) : new Set([cl]);
    if (values.size !== 1) return null;
    const v = [...values][0];
    if (!/^\d{1,15}$/.test(v)) return null;
    const n = Number(v);
    return n === 0 ? { kind: 'none', length: 0 } : { kind: 'length', length: n };
  }
  return { kind: 'until-close', length: 0 };
}

const CHUNKED_END = Buffer.from('0\r\n\r\n', 'latin1');

/** Whether a message's last bytes end a chunked body (last chunk, no trailers). */
export function endsChunked(last: Buffer): boolean {
  return last.length >= CHUNKED_END.length && last.subarray(last.length - CHUNKED_END.length).equals(CHUNKED_END);
}

/** Splits a request target into path and query (absolute-form: scheme and authority dropped). */
export function splitTarget(target: string): { path: string; query: string; authority?: string } {
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
