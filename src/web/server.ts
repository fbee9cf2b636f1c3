/**
 * `--web-port P`: a small page on http://127.0.0.1:P/ showing recent traces as a waterfall, and
 * its JSON API. Opt-in, loopback only, read-only, no framework: plain HTML + JS served from
 * memory (page.ts).
 *
 *   GET /              the page
 *   GET /api/traces    {"traces": [WebTrace, ...]} newest first (?limit=N, default 50)
 *   GET /api/processes {"processes": [...]} what is traced, with tracer and probe counts
 *   GET /api/status    {"agentVersion", "openTraces", "evictions", "droppedSpans"}
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanbridgeError } from '../errors';
import type { TraceBuffer } from '../spans/trace-tree-buffer';
import { AGENT_VERSION } from '../version';
import { PAGE_HTML } from './page';
import { toWebTrace } from './traces-json';

export interface WebServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export async function startWebServer(
  buffer: TraceBuffer,
  port: number,
  host = '127.0.0.1',
  processes: () => unknown[] = () => [],
): Promise<WebServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    if (url.pathname === '/') return send(200, 'text/html; charset=utf-8', PAGE_HTML);
    if (url.pathname === '/api/traces') {
      const limit = Math.min(500, Math.max(1, Number(url.searchParams.get('limit')) || 50));
      const traces = buffer.recent().slice(0, limit).map(toWebTrace);
      return send(200, 'application/json', JSON.stringify({ traces }));
    }
    if (url.pathname === '/api/processes') return send(200, 'application/json', JSON.stringify({ processes: processes() }));
    if (url.pathname === '/api/status') {
      return send(
        200,
        'application/json',
        JSON.stringify({ agentVersion: AGENT_VERSION, openTraces: buffer.openTraces, evictions: buffer.evictions, droppedSpans: buffer.droppedSpans }),
      );
    }
    send(404, 'text/plain', 'not found\n');
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new SpanbridgeError('ERR_CONFIG', `web.port: cannot listen on ${host}:${port}: ${err.code ?? err.message}`, { cause: err })),
    );
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    port: actual,
    url: `http://${host}:${actual}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
