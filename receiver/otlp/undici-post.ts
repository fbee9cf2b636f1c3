/**
 * One POST through undici's dispatcher API: the request goes to a Pool with a handler that keeps
 * the status, the headers and at most `bodyLimit` bytes of the answer. The exporter sends large
 * bodies and reads answers of a few bytes, so it skips undici's `request` layer (a Readable for
 * every response body, a promise chain around it): 230 KB exports cost the agent ~410-460 us of
 * CPU each this way against ~560-630 through `request` (alternating runs, the Collector's side in
 * another process; bench/results/2026-12-07-user-space-cpu.md for where export time goes).
 *
 * undici by its parts: its index also loads fetch, WebSocket, caches, mocks and more, ~300 ms of
 * the agent's start-up on our VMs; the exporter needs only a Pool.
 */
import type { Dispatcher, Pool as PoolType } from 'undici';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const Pool = require('undici/lib/dispatcher/pool') as typeof PoolType;

export interface PostResponse {
  readonly statusCode: number;
  /** Header names lower-cased; a repeated header's values joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** The body, up to the request's `bodyLimit` bytes (the rest is read and dropped). */
  readonly body: Buffer;
}

export class UndiciPost {
  private readonly pool: PoolType;
  private readonly path: string;

  constructor(
    url: URL,
    /** Request headers as name, value, name, value, ... (undici's flat form, validated by it). */
    private readonly headers: string[],
    connections: number,
  ) {
    this.path = `${url.pathname}${url.search}`;
    this.pool = new Pool(url.origin, { connections });
  }

  /** Rejects on network errors (undici's codes: UND_ERR_SOCKET, ...; Node's: ECONNREFUSED, ...) and on abort. */
  post(body: Uint8Array, signal: AbortSignal, bodyLimit: number): Promise<PostResponse> {
    return new Promise((resolve, reject) => {
      const handler = new PostHandler(bodyLimit, signal, resolve, reject);
      this.pool.dispatch({ path: this.path, method: 'POST', headers: this.headers, body }, handler);
    });
  }

  /** Closes the pool; posts in flight finish first. */
  async close(): Promise<void> {
    await this.pool.close();
  }
}

class PostHandler implements Dispatcher.DispatchHandler {
  private statusCode = 0;
  private headers: Record<string, string> = {};
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private controller: Dispatcher.DispatchController | undefined;
  private readonly onAbort = (): void => this.controller?.abort(abortReason(this.signal));

  constructor(
    private readonly bodyLimit: number,
    private readonly signal: AbortSignal,
    private readonly resolve: (r: PostResponse) => void,
    private readonly reject: (err: Error) => void,
  ) {
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.signal.aborted) controller.abort(abortReason(this.signal));
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // 1xx answers come before the final one; only the final one is kept.
    this.statusCode = statusCode;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    this.headers = out;
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.size >= this.bodyLimit) return;
    const keep = chunk.length <= this.bodyLimit - this.size ? chunk : chunk.subarray(0, this.bodyLimit - this.size);
    this.chunks.push(keep);
    this.size += keep.length;
  }

  onResponseEnd(): void {
    this.signal.removeEventListener('abort', this.onAbort);
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.resolve({ statusCode: this.statusCode, headers: this.headers, body });
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.signal.removeEventListener('abort', this.onAbort);
    this.reject(err);
  }
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}
