/** A plain GET to a local test service, for tests that only need to know it was served. */
import http from 'node:http';

/** GET http://127.0.0.1:PORT/PATH on a fresh connection; resolves with the status code once the body is read. */
export function getStatus(port: number, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}
