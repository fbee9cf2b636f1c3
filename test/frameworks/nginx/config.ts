/**
 * Debian's nginx run unprivileged from a temp dir: the one place that writes its configuration,
 * for the integration tests (test/integration/helpers/frameworks.ts) and the bench (bench/sections/nginx.ts).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const NGINX = '/usr/sbin/nginx';

export interface NginxConfig {
  port: number;
  /** The body of `location / { ... }`, e.g. `proxy_pass http://backend;`. */
  location: string;
  workers?: number;
  workerConnections?: number;
  /** More directives for the http block (e.g. an `upstream` block with `keepalive`). */
  http?: string;
}

/** Writes nginx.conf (foreground master, all state in a fresh temp dir); returns the dir and the `nginx` arguments. */
export function writeNginxConfig(prefix: string, c: NginxConfig): { dir: string; args: string[] } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  for (const d of ['body', 'proxy', 'fcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, d));
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process on;
worker_processes ${c.workers ?? 1};
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections ${c.workerConnections ?? 256}; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${c.http ?? ''}
  server {
    listen 127.0.0.1:${c.port};
    location / { ${c.location} }
  }
}
`,
  );
  return { dir, args: ['-c', conf, '-e', 'stderr'] };
}
