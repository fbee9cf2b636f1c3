/**
 * The head parser of the syscall path (src/spans/sys-http-parse.ts) walks lines in place; these
 * cases hold it to the line-array definition it replaced (split on CRLF, the last line of a cut
 * head dropped, a token before each colon, no control characters in values), on well-formed,
 * cut and malformed heads alike.
 */
import { findHeadEnd, KEPT_HEADERS, parseHead, responseBody, splitTarget, type ParsedHead } from '../../../src/spans/sys-http-parse';

/** The definition: what parseHead returned when it split the head into an array of lines. */
function reference(bytes: Buffer, complete: boolean): ParsedHead | null {
  const lines = bytes.toString('latin1').split('\r\n');
  if (!complete) lines.pop();
  if (lines.length === 0) return null;
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
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) return null;
    const value = line.slice(colon + 1).trim();
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) return null;
    const key = name.toLowerCase();
    if (!KEPT_HEADERS.has(key)) continue;
    const prev = headers.get(key);
    headers.set(key, prev === undefined ? value : `${prev}, ${value}`);
  }
  return { firstLine: lines[0], headers, complete };
}

const HEADS = [
  '',
  'GET / HTTP/1.1',
  'GET / HTTP/1.1\r\n',
  'GET /items/1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip',
  'GET / HTTP/1.1\r\nHOST: a\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nTraceState: a=1\r\ntracestate: b=2',
  'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Mon, 07 Dec 2026 05:00:00 GMT\r\nContent-Length: 5',
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length:  5 ',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked',
  'GET / HTTP/1.1\r\n\r\nHost: a', // an empty line inside the head
  'GET / HTTP/1.1\r\nHost: a\r\n', // a trailing CRLF
  'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET / HTTP/1.1\r\n: no name',
  'GET / HTTP/1.1\r\nno colon',
  'GET / HTTP/1.1\r\nBad Name: x',
  'GET / HTTP/1.1\r\nBad\x80Name: x',
  'GET / HTTP/1.1\r\nHost: a\x01b',
  'GET / HTTP/1.1\r\nHost: a\nb',
  'GET / HTTP/1.1\r\nHost:\x0b a \x0c',
  'GET / HTTP/1.1\r\nHost: \xa0a\xa0',
  'GET / HTTP/1.1\r\nX-Thing: a:b:c\r\nUser-Agent: curl/8',
  'GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nHost: b',
  'GET / HTTP/1.1\r\nHost: a\r\nUser-Ag', // cut inside a line
  'GET / HTTP/1.1\r\nHost: a\r\nUser-Agent', // cut before the colon
  'GET / HTTP/1.1\r\nHost: a\r', // cut inside the CRLF
  'GET / HTTP/1.1\rHost: a',
  "GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09AZaz: token chars",
  'GET / HTTP/1.1\r\ncontent-length:12\r\nTRANSFER-ENCODING: chunked\r\nhost:',
];

describe('parseHead', () => {
  it.each(HEADS.flatMap((h) => [[h, true] as const, [h, false] as const]))('%j (complete %s) as the line-array definition', (head, complete) => {
    const bytes = Buffer.from(head, 'latin1');
    expect(parseHead(bytes, complete)).toEqual(reference(bytes, complete));
  });

  it('keeps only the kept headers, repeated ones joined', () => {
    const p = parseHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nCookie: secret\r\ntracestate: x=1\r\nTraceState: y=2', 'latin1'), true);
    expect(p?.firstLine).toBe('GET / HTTP/1.1');
    expect([...(p?.headers ?? [])]).toEqual([
      ['host', 'a'],
      ['tracestate', 'x=1, y=2'],
    ]);
  });
});

describe('framing helpers', () => {
  it('finds the end of a head from an offset', () => {
    const b = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\nbody', 'latin1');
    expect(findHeadEnd(b)).toBe(27);
    expect(findHeadEnd(b, 23)).toBe(27);
    expect(findHeadEnd(b, 24)).toBe(-1);
    expect(findHeadEnd(Buffer.alloc(0))).toBe(-1);
  });

  it('reads Content-Length with and without repeated values', () => {
    const h = (cl: string) => new Map([['content-length', cl]]);
    expect(responseBody('GET', 200, h('5'))).toEqual({ kind: 'length', length: 5 });
    expect(responseBody('GET', 200, h('5, 5'))).toEqual({ kind: 'length', length: 5 });
    expect(responseBody('GET', 200, h('5, 6'))).toBeNull();
    expect(responseBody('GET', 200, h('0'))).toEqual({ kind: 'none', length: 0 });
    expect(responseBody('GET', 200, h('x'))).toBeNull();
  });

  it('splits origin-form and absolute-form targets', () => {
    expect(splitTarget('/a/b?x=1#f')).toEqual({ path: '/a/b', query: 'x=1', authority: undefined });
    expect(splitTarget('http://h:1/p?q')).toEqual({ path: '/p', query: 'q', authority: 'h:1' });
    expect(splitTarget('HTTPS://h')).toEqual({ path: '/', query: '', authority: 'h' });
    expect(splitTarget('*')).toEqual({ path: '*', query: '', authority: undefined });
  });
});
