/**
 * nginx binaries for upstream linking (src/discovery/nginx.ts): the version-to-layout table, and
 * inspection refusing what is not nginx with its reason (Debian's nginx itself, installed by
 * `make setup`: test/unit-built/discovery/nginx.test.ts).
 */
import { inspectNginx, isNginx, NGINX_LAYOUTS, nginxLayoutFor } from '../../../src/discovery/nginx';

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
  it('refuses a binary that is not nginx, and a missing file, with the reason', () => {
    expect(inspectNginx(process.execPath)).toEqual({ ok: false, reason: expect.stringMatching(/no nginx version string/) });
    expect(inspectNginx('/nonexistent/nginx')).toEqual({ ok: false, reason: expect.stringMatching(/cannot read the binary/) });
  });
});
