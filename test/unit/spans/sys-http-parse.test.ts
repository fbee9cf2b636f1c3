/**
 * The head parser of the syscall path (src/spans/sys-http-parse.ts) walks lines in place; these
 * cases hold it to the line-array definition it replaced (split on CRLF, the last line of a cut
 * head dropped, a token before each colon, no control characters in values), on well-formed,
 * cut and malformed heads alike.
 */
import { findHeadEnd, findHeadEndIn, KEPT_HEADERS, parseHead, parseHeadAt, parseRequestLine, parseStatusLine, requestBody, responseBody, splitTarget, type ParsedHead } from '../../../src/spans/sys-http-parse';

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

/** A deterministic generator (xorshift32): the same cases on every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

/** Pieces heads are made of: names, separators, white space and controls that trim keeps or drops. */
const PIECES = [
  'GET / HTTP/1.1', 'HTTP/1.1 200 OK', '\r\n', '\r\n', '\r\n', '\r', '\n', ':', ': ', ' ', '\t', '\x0b', '\x0c', '\xa0', '\x00', '\x01', '\x7f', '\x80', '\xff',
  'Host', 'HOST', 'host', 'User-Agent', 'tracestate', 'TraceParent', 'Content-Length', 'transfer-encoding', 'Cookie', 'X-A', 'Bad Name', 'a', '5', 'chunked', '@', '"', '(',
];

describe('parseHead on generated heads', () => {
  it('agrees with the line-array definition on 20,000 generated heads, cut and complete', () => {
    const r = rng(15);
    const differing: unknown[] = [];
    const show = (p: ParsedHead | null) => JSON.stringify(p && { ...p, headers: [...p.headers] });
    for (let n = 0; n < 20_000; n++) {
      let head = PIECES[Math.floor(r() * 2)];
      const parts = Math.floor(r() * 14);
      for (let k = 0; k < parts; k++) head += PIECES[Math.floor(r() * PIECES.length)];
      const bytes = Buffer.from(head, 'latin1');
      for (const complete of [true, false]) {
        const got = show(parseHead(bytes, complete));
        if (got !== show(reference(bytes, complete))) differing.push({ head, complete, got });
      }
    }
    expect(differing).toEqual([]);
  });

  it('agrees with the definition on 20,000 heads that mostly repeat the last head\'s lines (remembered lines compared, not parsed)', () => {
    // Few lines, each with variants one byte apart, a bad one, one ending in CR, one holding a
    // line of another with more after it: a line remembered at a position must say exactly what
    // its parse would, at the end of a head or not, cut or complete.
    const LINES = [
      'Host: svc:8080', 'Host: svc:8081', 'Host: svc:808', 'User-Agent: t/1', 'User-Agent: t/1 x', 'Content-Length: 5', 'Content-Length: 15',
      'Date: Mon, 07 Dec 2026 05:00:00 GMT', 'Date: Mon, 07 Dec 2026 05:00:01 GMT', 'Bad Name: x', 'X-A: 1\r', 'X-A: 1', 'X-A: 1\rb', 'tracestate: a=1', 'TraceState: a=1', 'Host',
    ];
    const r = rng(21);
    const differing: unknown[] = [];
    const show = (p: ParsedHead | null) => JSON.stringify(p && { ...p, headers: [...p.headers] });
    let lines = ['Host: svc:8080', 'User-Agent: t/1'];
    for (let n = 0; n < 20_000; n++) {
      // Mostly the last head's lines, one changed, added or dropped at times.
      const x = r();
      if (x < 0.3) lines[Math.floor(r() * lines.length)] = LINES[Math.floor(r() * LINES.length)];
      else if (x < 0.4 && lines.length < 6) lines.push(LINES[Math.floor(r() * LINES.length)]);
      else if (x < 0.5 && lines.length > 1) lines = lines.slice(0, -1);
      const first = r() < 0.5 ? 'GET /a HTTP/1.1' : 'HTTP/1.1 200 OK';
      let head = [first, ...lines].join('\r\n');
      if (r() < 0.1) head = head.slice(0, Math.floor(r() * head.length));
      const bytes = Buffer.from(head, 'latin1');
      const complete = r() < 0.8;
      const got = show(parseHead(bytes, complete));
      if (got !== show(reference(bytes, complete))) differing.push({ head, complete, got });
    }
    expect(differing).toEqual([]);
  });

  it('gives back values and first lines that differ from the last head by one byte of the same length', () => {
    // The parser hands back the last string made from equal bytes (per kept header, per first line).
    const heads = ['GET /a HTTP/1.1\r\nHost: svc:8080\r\nUser-Agent: t/1', 'GET /b HTTP/1.1\r\nHost: svc:8081\r\nUser-Agent: t/2', 'GET /b HTTP/1.1\r\nHost: svc:8081\r\nUser-Agent: t/2'];
    for (const h of [...heads, ...heads.reverse()]) {
      const bytes = Buffer.from(h, 'latin1');
      expect(parseHead(bytes, true)).toEqual(reference(bytes, true));
    }
    for (const line of ['HTTP/1.1 200 OK', 'HTTP/1.1 201 OK', 'HTTP/1.1 201 OK', 'HTTP/1.0 201 OK']) {
      const bytes = Buffer.from(`${line}\r\nContent-Length: 1`, 'latin1');
      const p = parseHead(bytes, true);
      expect(p?.firstLine).toBe(line);
      expect(parseStatusLine(p!.firstLine)).toEqual({ minor: Number(line[7]), status: Number(line.slice(9, 12)) });
    }
  });

  it('a head equal to the last one, byte for byte, gives what its parse gives: other buffers and offsets, one byte changed, cut or complete, after a malformed one', () => {
    const show = (p: ParsedHead | null) => JSON.stringify(p && { ...p, headers: [...p.headers] });
    const head = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Mon, 07 Dec 2026 05:00:00 GMT\r\nContent-Length: 5';
    const cases: Array<[string, boolean]> = [
      [head, true],
      [head, true],
      [head.replace('Content-Type', 'Content-Typf'), true], // same length, one byte apart mid-head
      [head, true],
      [head, false], // the same bytes, cut: its last line is not read
      [head, false],
      [head, true],
      [head.replace('Date:', 'Da e:'), true], // malformed: null, and nothing remembered
      [head, true],
      [head.replace('Content-Length: 5', 'Content-Length: 6'), true], // differs in the last byte
      [head.replace('Content-Length: 5', 'Content-Length: 6'), true],
    ];
    for (const [i, [h, complete]] of cases.entries()) {
      const pad = 'x'.repeat(i % 3);
      const b = Buffer.from(`${pad}${h}\r\n\r\nbody`, 'latin1');
      const got = parseHeadAt(b, pad.length, pad.length + h.length, complete);
      expect([i, show(got)]).toEqual([i, show(reference(Buffer.from(h, 'latin1'), complete))]);
    }
  });

  it('remembers heads per side: a client head between two equal server heads leaves the server\'s remembered (the same parse back), and a head that differs still misses on either side', () => {
    const show = (p: ParsedHead | null) => JSON.stringify(p && { ...p, headers: [...p.headers] });
    const serverReq = Buffer.from('GET /items/1 HTTP/1.1\r\nHost: front:8080\r\nUser-Agent: loadgen', 'latin1');
    const clientReq = Buffer.from('GET / HTTP/1.1\r\nHost: down:9090\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip', 'latin1');
    const serverResp = Buffer.from('HTTP/1.1 200 OK\r\nDate: Mon, 07 Dec 2026 05:00:00 GMT\r\nContent-Length: 13', 'latin1');
    const clientResp = Buffer.from('HTTP/1.1 200 OK\r\nDate: Mon, 07 Dec 2026 05:00:00 GMT\r\nContent-Length: 5', 'latin1');
    const first = parseHead(serverReq, true, 'server');
    const firstResp = parseHead(serverResp, true, 'server');
    expect(show(parseHead(clientReq, true, 'client'))).toBe(show(reference(clientReq, true)));
    expect(show(parseHead(clientResp, true, 'client'))).toBe(show(reference(clientResp, true)));
    // Hits: the very objects parsed before the client's heads.
    expect(parseHead(serverReq, true, 'server')).toBe(first);
    expect(parseHead(serverResp, true, 'server')).toBe(firstResp);
    // The client's head seen on the server side is its own (a miss there), parsed as the definition says.
    const crossed = parseHead(clientReq, true, 'server');
    expect(crossed).not.toBe(first);
    expect(show(crossed)).toBe(show(reference(clientReq, true)));
    // One byte differs from the remembered server head: a miss, its own value.
    const other = Buffer.from(serverReq.toString('latin1').replace('front:8080', 'front:8081'), 'latin1');
    expect(parseHead(other, true, 'server')?.headers.get('host')).toBe('front:8081');
    expect(parseHead(clientResp, true, 'client')?.headers.get('content-length')).toBe('5');
    expect(parseHead(serverResp, true, 'server')?.headers.get('content-length')).toBe('13');
  });

  it('agrees with the definition on 20,000 heads alternating between the two sides, each side mostly repeating itself', () => {
    const show = (p: ParsedHead | null) => JSON.stringify(p && { ...p, headers: [...p.headers] });
    const r = rng(33);
    const differing: unknown[] = [];
    const variants = ['Host: a:1', 'Host: a:2', 'Host: b:1', 'User-Agent: x', 'Content-Length: 5', 'Content-Length: 15', 'Bad Name: 1'];
    const state = { server: ['Host: a:1', 'User-Agent: x'], client: ['Host: b:1', 'Content-Length: 5'] };
    for (let n = 0; n < 20_000; n++) {
      const side = r() < 0.5 ? 'server' : 'client';
      const lines = state[side];
      if (r() < 0.2) lines[Math.floor(r() * lines.length)] = variants[Math.floor(r() * variants.length)];
      const head = [r() < 0.5 ? 'GET /a HTTP/1.1' : 'HTTP/1.1 200 OK', ...lines].join('\r\n');
      const bytes = Buffer.from(head, 'latin1');
      const complete = r() < 0.9;
      const got = show(parseHead(bytes, complete, side));
      if (got !== show(reference(bytes, complete))) differing.push({ head, side, complete, got });
    }
    expect(differing).toEqual([]);
  });

  it('reads a head in place inside a larger buffer', () => {
    const b = Buffer.from('xxGET / HTTP/1.1\r\nHost: a\r\nUser-Agent: u\r\n\r\nbody', 'latin1');
    expect(parseHeadAt(b, 2, b.indexOf('\r\n\r\n'), true)).toEqual(reference(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: u', 'latin1'), true));
  });
});

/** The regular expressions the request and status line parsers are held to. */
const REQUEST_LINE = /^([A-Z]{3,12}) ([^\s\x00-\x1f\x7f]+) HTTP\/1\.([01])$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-5]\d\d)(?: [^\x00-\x08\x0a-\x1f\x7f]*)?$/;

describe('request and status lines', () => {
  const LINE_PIECES = ['GET', 'POST', 'M-SEARCH', 'PROPFIND', 'get', 'ABCDEFGHIJKLM', ' ', '  ', '/', '/a?b=1', '*', 'http://h:1/p', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/1.2', 'HTTP/2', '200', '099', '600', '404', 'OK', 'Not Found', '\t', '\x00', '\x7f', '\xa0', '\r', '\n', '\x85', '\u2028', '1'];
  it('parses request lines as the regular expression does (method strings shared)', () => {
    const r = rng(7);
    const cases = ['GET / HTTP/1.1', 'OPTIONS * HTTP/1.0', 'GET  / HTTP/1.1', 'GET / HTTP/1.1 ', 'GE / HTTP/1.1', 'ABCDEFGHIJKL / HTTP/1.1', 'ABCDEFGHIJKLM / HTTP/1.1', 'GET /\xa0 HTTP/1.1', 'GET /\u2028 HTTP/1.1', 'GET / HTTP/1.2'];
    for (let n = 0; n < 20_000; n++) {
      let line = '';
      const parts = 1 + Math.floor(r() * 6);
      for (let k = 0; k < parts; k++) line += LINE_PIECES[Math.floor(r() * LINE_PIECES.length)];
      cases.push(line, `${line} HTTP/1.1`);
    }
    const differing = cases.filter((line) => {
      const m = REQUEST_LINE.exec(line);
      return JSON.stringify(parseRequestLine(line)) !== JSON.stringify(m ? { method: m[1], target: m[2], minor: Number(m[3]) } : null);
    });
    expect(differing).toEqual([]);
    expect(parseRequestLine('GET /x HTTP/1.1')?.method).toBe('GET');
  });

  it('gives back the last two request lines\' parses (alternating lines hit), and parses any other line, one character apart included', () => {
    const a = parseRequestLine('GET /items/1 HTTP/1.1');
    const b = parseRequestLine('GET / HTTP/1.1');
    for (let i = 0; i < 3; i++) {
      expect(parseRequestLine('GET /items/1 HTTP/1.1')).toBe(a);
      expect(parseRequestLine('GET / HTTP/1.1')).toBe(b);
    }
    // Equal text in another string object: the same parse.
    expect(parseRequestLine(['GET', '/items/1', 'HTTP/1.1'].join(' '))).toBe(a);
    // Misses: one character apart, malformed, then a third line evicts the older of the two.
    expect(parseRequestLine('GET /items/2 HTTP/1.1')).toEqual({ method: 'GET', target: '/items/2', minor: 1 });
    expect(parseRequestLine('GET /items/1 HTTP/1.0')).toEqual({ method: 'GET', target: '/items/1', minor: 0 });
    expect(parseRequestLine('GET /items/1  HTTP/1.1')).toBeNull();
    expect(parseRequestLine('GET /items/1  HTTP/1.1')).toBeNull();
    expect(parseRequestLine('GET /items/1 HTTP/1.1')).not.toBe(a);
    expect(parseRequestLine('GET /items/1 HTTP/1.1')).toEqual(a);
  });

  it('splits targets with the last two targets\' parts given back, others split anew', () => {
    const p = splitTarget('/a?x=1');
    const q = splitTarget('http://h:1/b');
    expect(splitTarget('/a?x=1')).toBe(p);
    expect(splitTarget('http://h:1/b')).toBe(q);
    expect(splitTarget('/a?x=2')).toEqual({ path: '/a', query: 'x=2', authority: undefined });
    expect(splitTarget('http://h:2/b')).toEqual({ path: '/b', query: '', authority: 'h:2' });
    expect(splitTarget('/a?x=1')).toEqual({ path: '/a', query: 'x=1', authority: undefined });
  });

  it('parses status lines as the regular expression does', () => {
    const r = rng(9);
    const cases = ['HTTP/1.1 200', 'HTTP/1.1 200 ', 'HTTP/1.1 200 OK', 'HTTP/1.0 599 x\ty', 'HTTP/1.1 200OK', 'HTTP/1.1 20', 'HTTP/1.1 200 \x7f', 'HTTP/1.1 200 \x85\xff'];
    for (let n = 0; n < 20_000; n++) {
      let line = r() < 0.7 ? 'HTTP/1.' : '';
      const parts = 1 + Math.floor(r() * 5);
      for (let k = 0; k < parts; k++) line += LINE_PIECES[Math.floor(r() * LINE_PIECES.length)];
      cases.push(line);
    }
    const differing = cases.filter((line) => {
      const m = STATUS_LINE.exec(line);
      return JSON.stringify(parseStatusLine(line)) !== JSON.stringify(m ? { minor: Number(m[1]), status: Number(m[2]) } : null);
    });
    expect(differing).toEqual([]);
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

  it('finds the end of a head within a range as Buffer.indexOf does, on 20,000 generated buffers', () => {
    const r = rng(7);
    const bytes = [0x0d, 0x0a, 0x41, 0x20];
    const differing: unknown[] = [];
    for (let n = 0; n < 20_000; n++) {
      const b = Buffer.alloc(Math.floor(r() * 24));
      for (let i = 0; i < b.length; i++) b[i] = bytes[Math.floor(r() * (r() < 0.5 ? 2 : 4))];
      const from = Math.floor(r() * (b.length + 1));
      const end = from + Math.floor(r() * (b.length - from + 1));
      const i = b.indexOf('\r\n\r\n', from, 'latin1');
      const want = i < 0 || i + 4 > end ? -1 : i + 4;
      if (findHeadEndIn(b, from, end) !== want) differing.push({ b: b.toString('hex'), from, end, want });
    }
    expect(differing).toEqual([]);
  });

  it('reads Content-Length with and without repeated values', () => {
    const h = (cl: string) => new Map([['content-length', cl]]);
    expect(responseBody('GET', 200, h('5'))).toEqual({ kind: 'length', length: 5 });
    expect(responseBody('GET', 200, h('5, 5'))).toEqual({ kind: 'length', length: 5 });
    expect(responseBody('GET', 200, h('5, 6'))).toBeNull();
    expect(responseBody('GET', 200, h('0'))).toEqual({ kind: 'none', length: 0 });
    expect(responseBody('GET', 200, h('x'))).toBeNull();
  });

  it('frames request bodies: chunked, Content-Length of 1-15 digits, else none', () => {
    const h = (entries: [string, string][]) => new Map(entries);
    expect(requestBody(h([]))).toEqual({ kind: 'none', length: 0 });
    expect(requestBody(h([['content-length', '12']]))).toEqual({ kind: 'length', length: 12 });
    expect(requestBody(h([['content-length', '0']]))).toEqual({ kind: 'none', length: 0 });
    expect(requestBody(h([['content-length', '999999999999999']]))).toEqual({ kind: 'length', length: 999999999999999 });
    expect(requestBody(h([['content-length', '1000000000000000']]))).toBeNull();
    expect(requestBody(h([['content-length', '']]))).toBeNull();
    expect(requestBody(h([['content-length', '1 2']]))).toBeNull();
    expect(requestBody(h([['content-length', '5, 5']]))).toBeNull();
    expect(requestBody(h([['transfer-encoding', 'gzip, chunked']]))).toEqual({ kind: 'chunked', length: 0 });
    expect(requestBody(h([['transfer-encoding', 'gzip']]))).toBeNull();
    expect(responseBody('GET', 200, h([['transfer-encoding', 'gzip']]))).toEqual({ kind: 'until-close', length: 0 });
    expect(responseBody('HEAD', 200, h([['content-length', '5']]))).toEqual({ kind: 'none', length: 0 });
    expect(responseBody('GET', 200, h([]))).toEqual({ kind: 'until-close', length: 0 });
    expect(responseBody('GET', 200, h([['content-length', ' 5, 5 ,5']]))).toEqual({ kind: 'length', length: 5 });
  });

  it('splits origin-form and absolute-form targets', () => {
    expect(splitTarget('/a/b?x=1#f')).toEqual({ path: '/a/b', query: 'x=1', authority: undefined });
    expect(splitTarget('http://h:1/p?q')).toEqual({ path: '/p', query: 'q', authority: 'h:1' });
    expect(splitTarget('HTTPS://h')).toEqual({ path: '/', query: '', authority: 'h' });
    expect(splitTarget('*')).toEqual({ path: '*', query: '', authority: undefined });
  });
});
