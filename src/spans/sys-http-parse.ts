/**
 * HTTP/1.x message framing over the bounded captures of the syscall tracer. The kernel copies only
 * the first bytes of each read/write (plus its last bytes and its true length), so framing works
 * on byte COUNTS for bodies and on the captured bytes for heads. Pure and strict: anything that is
 * not a well-formed HTTP/1.x head is rejected, never guessed at.
 */

export const MAX_HEAD_BYTES = 16 * 1024;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
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

/**
 * Parses a head (without the final CRLF CRLF). `complete` false: the head was cut; the last
 * (possibly partial) line is ignored. Returns null on anything malformed.
 */
export function parseHead(bytes: Buffer, complete: boolean): ParsedHead | null {
  const text = bytes.toString('latin1');
  const lines = text.split('\r\n');
  if (!complete) lines.pop();
  if (lines.length === 0) return null;
  const firstLine = lines[0];
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') {
      if (complete && i === lines.length - 1) break;
      return null;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return null;
    const value = line.slice(colon + 1).trim();
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) return null;
    const key = name.toLowerCase();
    if (!KEPT_HEADERS.has(key)) continue;
    const prev = headers.get(key);
    headers.set(key, prev === undefined ? value : `${prev}, ${value}`);
  }
  return { firstLine, headers, complete };
}

/** Where the head ends (index just past CRLF CRLF) in `buf`, searching from `from`; -1 if not yet. */
export function findHeadEnd(buf: Buffer, from = 0): number {
  const i = buf.indexOf('\r\n\r\n', Math.max(0, from), 'latin1');
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
    const values = new Set(cl.split(',').map((v) => v.trim()));
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
  const abs = /^https?:\/\/([^/?#]*)(.*)$/i.exec(t);
  if (abs) {
    authority = abs[1];
    t = abs[2] || '/';
  }
  const hash = t.indexOf('#');
  if (hash >= 0) t = t.slice(0, hash);
  const q = t.indexOf('?');
  return q >= 0 ? { path: t.slice(0, q), query: t.slice(q + 1), authority } : { path: t, query: '', authority };
}
