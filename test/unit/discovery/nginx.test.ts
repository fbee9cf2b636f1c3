/**
 * nginx binaries for upstream linking (src/discovery/nginx.ts): the version-to-layout table, and
 * inspection of real ELF files: Debian's nginx (installed by `make setup`) is linkable at the
 * exported ngx_chain_writer; anything else is refused with its reason.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { inspectNginx, isNginx, NGINX_LAYOUTS, nginxLayoutFor } from '../../../src/discovery/nginx';

const NGINX = '/usr/sbin/nginx';

describe('nginx layouts', () => {
  it('knows nginx 1.x and refuses other versions and unparsable strings', () => {
    expect(nginxLayoutFor('1.22.1')).toEqual({ writerConnection: 16, connectionData: 0, connectionFd: 24, requestSignature: 0, requestConnection: 8 });
    expect(nginxLayoutFor('1.27.3')).toBe(NGINX_LAYOUTS[0].layout);
    expect(nginxLayoutFor('2.0.0')).toBeUndefined();
    expect(nginxLayoutFor('0.8.55')).toBeUndefined();
    expect(nginxLayoutFor('1.21.4.1')).toBeUndefined(); // OpenResty numbering
    expect(nginxLayoutFor('')).toBeUndefined();
  });

  it('recognises nginx by its executable name only', () => {
    expect(isNginx('nginx')).toBe(true);
    expect(isNginx('nginx-debug')).toBe(false);
    expect(isNginx('node')).toBe(false);
  });
});

describe('inspectNginx', () => {
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

  it('refuses a binary that is not nginx, and a missing file, with the reason', () => {
    expect(inspectNginx(process.execPath)).toEqual({ ok: false, reason: expect.stringMatching(/no nginx version string/) });
    expect(inspectNginx('/nonexistent/nginx')).toEqual({ ok: false, reason: expect.stringMatching(/cannot read the binary/) });
  });
});
