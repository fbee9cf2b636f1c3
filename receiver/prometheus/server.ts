/**
 * The Prometheus scrape endpoint: `GET /metrics` on a small node:http server, answering with what
 * `render` produces. Anything else is 404 (405 for other methods on /metrics). Listening failures
 * (port in use, address not available) reject `listen` with ERR_CONFIG naming the address and the
 * way to change or disable it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage, ReceiverError } from '../errors';

export interface Rendered {
  readonly contentType: string;
  readonly body: string;
}

export class PrometheusServer {
  private readonly server: http.Server;

  constructor(render: () => Promise<Rendered>, onError: (message: string) => void = () => {}) {
    this.server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; metrics are at /metrics\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
        return;
      }
      render().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'content-type': contentType });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        (err: unknown) => {
          onError(`prometheus: rendering metrics failed: ${errorMessage(err)}`);
          res.writeHead(500, { 'content-type': 'text/plain' }).end('rendering metrics failed\n');
        },
      );
    });
    // Scrapes are short; idle keep-alive connections must not hold shutdown.
    this.server.keepAliveTimeout = 5000;
  }

  /** Listens on host:port (port 0: any free port); resolves with the bound address. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(
          new ReceiverError(
            'ERR_CONFIG',
            `prometheus: cannot listen on ${host}:${port} (${err.code ?? errorMessage(err)}); ` +
              'choose another port with --prometheus-port / SPANBRIDGE_PROMETHEUS_PORT, or disable the endpoint with "off"',
            { cause: err },
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
