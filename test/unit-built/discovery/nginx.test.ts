/**
 * Inspection of Debian's nginx (installed by `make setup`) for upstream linking
 * (src/discovery/nginx.ts): linkable at the exported ngx_chain_writer.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { inspectNginx, nginxLayoutFor } from '../../../src/discovery/nginx';

const NGINX = '/usr/sbin/nginx';

describe('inspectNginx on the installed nginx', () => {
  it("finds Debian's nginx version and ngx_chain_writer's file offset in .dynsym", () => {
    expect(existsSync(NGINX)).toBe(true); // make setup installs nginx-light
    const t = inspectNginx(NGINX);
    const printed = execFileSync(NGINX, ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) || '';
    expect(t.ok).toBe(true);
    if (!t.ok) return;
    expect(printed === '' || printed.includes(t.version)).toBe(true);
    // nm -D gives the symbol's address; in nginx's PIE text segment file offset = vaddr.
    const nm = execFileSync('nm', ['-D', NGINX], { encoding: 'utf8' });
    const addr = /^([0-9a-f]+) T ngx_chain_writer$/m.exec(nm)?.[1];
    expect(addr).toBeDefined();
    expect(t.offset).toBe(parseInt(addr!, 16));
    expect(t.layout).toEqual(nginxLayoutFor(t.version));
  });

});
