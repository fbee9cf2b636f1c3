/**
 * A lean HTTP/1.1 client for OTLP/HTTP: one POST at a time per connection over node:net (or
 * node:tls for https), kept alive and reused. It does what an OTLP exporter needs and no more:
 * a head written once per exporter (only content-length changes), head and body in one writev,
 * and a response parsed for its status, its headers and a bounded body (content-length, chunked,
 * or up to the close).
 *
 * Why not undici (the exporter's client before): its request machinery (dispatchers, the llhttp
 * WebAssembly parser, web streams for the body) costs ~0.4-0.5 ms of CPU per 230 KB export on this
 * machine, ~3x this client, and the agent's user space shares the load generator's CPU in
 * `make bench`: every microsecond per span it spends is taken from the traced service's clients.
 *
 * Errors carry Node's network codes (ECONNREFUSED, ECONNRESET, ...) or one of this file's own:
 * ERR_HTTP_SOCKET_CLOSED (the server closed the connection before the response ended: retryable)
 * and ERR_HTTP_PARSE (a response that is not HTTP/1.x: not retryable).
 */
import net from 'node:net';
import tls from 'node:tls';

export interface Http1Response {
  readonly statusCode: number;
  /** Header names lower-cased; a repeated header's values joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** The body, up to the request's `bodyLimit` bytes. */
  readonly body: Buffer;
}

export interface Http1RequestOptions {
  /** Everything of the request head but content-length and the final CRLF. */
  readonly head: Buffer;
  readonly body: Uint8Array;
  /** Body bytes kept; a longer body ends the connection instead of being read on (default 64 KiB). */
  readonly bodyLimit?: number;
  /** Aborting destroys the connection; the promise then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

export class Http1Error extends Error {
  constructor(
    message: string,
    readonly code: 'ERR_HTTP_SOCKET_CLOSED' | 'ERR_HTTP_PARSE',
  ) {
    super(message);
    this.name = 'Http1Error';
  }
}

/** Longest response head accepted (status line + headers). */
const MAX_HEAD_BYTES = 64 * 1024;
const CRLF2 = Buffer.from('\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');

/** Connections to one origin, at most `maxIdle` kept open between requests. */
export class Http1Client {
  private readonly idle: Http1Connection[] = [];
  private closed = false;

  constructor(
    private readonly origin: URL,
    private readonly maxIdle = 2,
    /** Extra TLS settings for https (tests: a private CA); the system's trust store by default. */
    private readonly tlsOptions: tls.ConnectionOptions = {},
  ) {}

  /** Sends one request on an idle connection or a new one. Rejects on network, parse and abort errors. */
  async request(o: Http1RequestOptions): Promise<Http1Response> {
    if (this.closed) throw new Http1Error('client closed', 'ERR_HTTP_SOCKET_CLOSED');
    let conn = this.idle.pop();
    while (conn && !conn.reusable) {
      conn.destroy();
      conn = this.idle.pop();
    }
    conn ??= this.connect();
    try {
      const res = await conn.request(o);
      if (conn.reusable && !this.closed && this.idle.length < this.maxIdle) this.idle.push(conn);
      else conn.destroy();
      return res;
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  /** Closes idle connections now; a busy one closes when its request ends. */
  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.destroy();
  }

  private connect(): Http1Connection {
    const { hostname, protocol } = this.origin;
    const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
    const secure = protocol === 'https:';
    const port = Number(this.origin.port) || (secure ? 443 : 80);
    const socket = secure
      ? tls.connect({ ...this.tlsOptions, host, port, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'] })
      : net.connect({ host, port });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    return new Http1Connection(socket);
  }
}

interface Pending {
  resolve(r: Http1Response): void;
  reject(err: unknown): void;
  bodyLimit: number;
}

/** One socket, one request at a time; parses the response as bytes arrive. */
class Http1Connection {
  reusable = false;
  destroyed = false;
  private pending: Pending | undefined;
  /** Bytes of the response head not yet complete. */
  private headBuf: Buffer | undefined;
  private status = 0;
  private headers: Record<string, string> = {};
  /** Body framing: content-length bytes left, or chunked, or until the close. */
  private mode: 'length' | 'chunked' | 'close' = 'length';
  private left = 0;
  private chunks: Buffer[] = [];
  private kept = 0;
  /** Chunked framing: the bytes of an incomplete chunk-size line or trailer section. */
  private chunkBuf: Buffer | undefined;
  private chunkState: 'size' | 'data' | 'data-crlf' | 'trailer' = 'size';
  private keepAlive = true;
  private error: unknown;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('end', () => this.onClose());
    socket.on('close', () => this.onClose());
    socket.on('error', (err) => {
      this.error ??= err;
      this.onClose();
    });
  }

  request(o: Http1RequestOptions): Promise<Http1Response> {
    return new Promise<Http1Response>((resolve, reject) => {
      if (this.destroyed) {
        reject(this.error ?? new Http1Error('connection closed', 'ERR_HTTP_SOCKET_CLOSED'));
        return;
      }
      const signal = o.signal;
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        this.fail(signal!.reason);
        this.destroy();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      this.reusable = false;
      this.socket.ref();
      this.headBuf = undefined;
      this.status = 0;
      this.keepAlive = true;
      this.pending = {
        resolve: (r) => {
          done();
          resolve(r);
        },
        reject: (e) => {
          done();
          reject(e);
        },
        bodyLimit: o.bodyLimit ?? 64 * 1024,
      };
      const socket = this.socket;
      socket.cork();
      socket.write(Buffer.concat([o.head, Buffer.from(`content-length: ${o.body.length}\r\n\r\n`, 'latin1')]));
      if (o.body.length > 0) socket.write(o.body);
      socket.uncork();
    });
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.reusable = false;
    this.socket.destroy();
    this.onClose();
  }

  private onData(d: Buffer): void {
    if (!this.pending) {
      // Bytes nobody asked for: the connection is out of step; never reuse it.
      this.destroy();
      return;
    }
    try {
      this.consume(d);
    } catch (err) {
      this.fail(err);
      this.destroy();
    }
  }

  private consume(d: Buffer): void {
    let data = d;
    while (this.status === 0 || this.status < 200) {
      const buf = this.headBuf ? Buffer.concat([this.headBuf, data]) : data;
      const end = buf.indexOf(CRLF2);
      if (end < 0) {
        if (buf.length > MAX_HEAD_BYTES) throw new Http1Error(`response head over ${MAX_HEAD_BYTES} bytes`, 'ERR_HTTP_PARSE');
        this.headBuf = buf;
        return;
      }
      this.headBuf = undefined;
      this.parseHead(buf.toString('latin1', 0, end));
      data = buf.subarray(end + 4);
      if (this.status < 200) {
        this.status = 0; // 1xx: an interim response; the final one follows
        continue;
      }
      if (this.status === 204 || this.status === 304) {
        this.mode = 'length';
        this.left = 0;
      }
    }
    this.body(data);
  }

  private parseHead(head: string): void {
    const lines = head.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0]);
    if (!m) throw new Http1Error(`not an HTTP/1.x response: ${JSON.stringify(lines[0].slice(0, 80))}`, 'ERR_HTTP_PARSE');
    this.status = Number(m[2]);
    const headers: Record<string, string> = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Http1Error(`malformed response header line: ${JSON.stringify(line.slice(0, 80))}`, 'ERR_HTTP_PARSE');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    this.headers = headers;
    if (this.status < 200) return;
    const connection = (headers.connection ?? '').toLowerCase();
    this.keepAlive = m[1] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
    this.chunks = [];
    this.kept = 0;
    const te = (headers['transfer-encoding'] ?? '').toLowerCase();
    if (te !== '') {
      if (!/(^|,)\s*chunked\s*$/.test(te)) throw new Http1Error(`unsupported transfer-encoding: ${te}`, 'ERR_HTTP_PARSE');
      this.mode = 'chunked';
      this.chunkState = 'size';
      this.chunkBuf = undefined;
    } else if (headers['content-length'] !== undefined) {
      const cl = headers['content-length'];
      if (!/^\d+$/.test(cl)) throw new Http1Error(`bad content-length: ${cl}`, 'ERR_HTTP_PARSE');
      this.mode = 'length';
      this.left = Number(cl);
    } else {
      this.mode = 'close';
      this.keepAlive = false;
    }
  }

  /** Body bytes: kept up to the limit; past it, the response ends there and the connection goes. */
  private body(data: Buffer): void {
    if (this.mode === 'length') {
      const take = Math.min(this.left, data.length);
      this.left -= take;
      this.keep(data.subarray(0, take));
      if (this.left === 0) this.complete(data.length === take);
      else this.truncateIfOver();
    } else if (this.mode === 'chunked') {
      this.chunked(data);
    } else {
      this.keep(data);
      this.truncateIfOver();
    }
  }

  private chunked(input: Buffer): void {
    let data = input;
    while (data.length > 0 && this.pending) {
      if (this.chunkState === 'data') {
        const take = Math.min(this.left, data.length);
        this.keep(data.subarray(0, take));
        this.left -= take;
        data = data.subarray(take);
        if (this.left === 0) this.chunkState = 'data-crlf';
        if (this.truncateIfOver()) return;
        continue;
      }
      const buf = this.chunkBuf ? Buffer.concat([this.chunkBuf, data]) : data;
      this.chunkBuf = undefined;
      if (this.chunkState === 'trailer') {
        // Trailer fields (ignored) until an empty line.
        const eol = buf.indexOf(CRLF);
        if (eol < 0) return this.holdChunkLine(buf);
        data = buf.subarray(eol + 2);
        if (eol === 0) return this.complete(data.length === 0);
        continue;
      }
      const eol = buf.indexOf(CRLF);
      if (eol < 0) return this.holdChunkLine(buf);
      const line = buf.toString('latin1', 0, eol);
      data = buf.subarray(eol + 2);
      if (this.chunkState === 'data-crlf') {
        if (eol !== 0) throw new Http1Error('chunk data longer than its size', 'ERR_HTTP_PARSE');
        this.chunkState = 'size';
        continue;
      }
      const size = /^([0-9a-fA-F]{1,8})\s*(;.*)?$/.exec(line);
      if (!size) throw new Http1Error(`bad chunk size line: ${JSON.stringify(line.slice(0, 40))}`, 'ERR_HTTP_PARSE');
      this.left = parseInt(size[1], 16);
      this.chunkState = this.left === 0 ? 'trailer' : 'data';
    }
  }

  private holdChunkLine(buf: Buffer): void {
    if (buf.length > 4096) throw new Http1Error('chunk size line or trailer too long', 'ERR_HTTP_PARSE');
    this.chunkBuf = Buffer.from(buf);
  }

  private keep(b: Buffer): void {
    const limit = this.pending?.bodyLimit ?? 0;
    if (this.kept >= limit || b.length === 0) {
      this.kept += b.length;
      return;
    }
    const take = b.subarray(0, limit - this.kept);
    this.chunks.push(Buffer.from(take)); // a copy: `b` is a view of the socket's read buffer
    this.kept += b.length;
  }

  /** Past the body limit: the response ends with what was kept; the connection is not reused. */
  private truncateIfOver(): boolean {
    if (!this.pending || this.kept <= this.pending.bodyLimit) return false;
    this.keepAlive = false;
    this.complete(false);
    this.destroy();
    return true;
  }

  private complete(clean: boolean): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    this.reusable = clean && this.keepAlive && !this.destroyed;
    if (this.reusable) this.socket.unref(); // an idle connection never keeps the agent alive
    p.resolve({ statusCode: this.status, headers: this.headers, body: Buffer.concat(this.chunks) });
    this.chunks = [];
  }

  private fail(err: unknown): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    this.reusable = false;
    p.reject(err);
  }

  private onClose(): void {
    this.reusable = false;
    if (!this.destroyed) {
      this.destroyed = true;
      this.socket.destroy();
    }
    if (!this.pending) return;
    if (this.mode === 'close' && this.status >= 200 && this.error === undefined) {
      this.complete(false); // a body delimited by the connection's end
      return;
    }
    this.fail(this.error ?? new Http1Error('the server closed the connection before the response ended', 'ERR_HTTP_SOCKET_CLOSED'));
  }
}
