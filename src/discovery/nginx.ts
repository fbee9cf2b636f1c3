/**
 * What the agent needs to link nginx's upstream requests to the downstream requests they serve
 * (bpf/common/nginx_link.h): the file offset of `ngx_chain_writer` (exported in `.dynsym`: nginx keeps
 * its symbols for dynamic modules) and the offsets of the few fields read there, by version.
 * Anything else is refused with its reason, never guessed.
 */
import { errorMessage } from '../errors';
import { withElf, type ElfFile } from './go/elf';

export const NGINX_CHAIN_WRITER = 'ngx_chain_writer';

/** Byte offsets of the fields the uprobe reads (bpf/nginx_link/nginx_link.bpf.c rodata). */
export interface NginxLayout {
  /** ngx_chain_writer_ctx_t.connection (after `out` and `last`). */
  readonly writerConnection: number;
  /** ngx_connection_t.data (the upstream connection's: the request served). */
  readonly connectionData: number;
  /** ngx_connection_t.fd. */
  readonly connectionFd: number;
  /** ngx_http_request_t.signature (NGX_HTTP_MODULE, "HTTP"). */
  readonly requestSignature: number;
  /** ngx_http_request_t.connection (the downstream connection). */
  readonly requestConnection: number;
}

/**
 * Layouts by nginx version. These leading fields have the same places throughout nginx 1.x
 * (src/core/ngx_buf.h `ngx_chain_writer_ctx_t {out, last, connection, pool, limit}`,
 * src/core/ngx_connection.h `ngx_connection_t {data, read, write, fd, ...}`,
 * src/http/ngx_http_request.h `ngx_http_request_t {signature, connection, ...}`); checked on
 * Debian 12's 1.22.1 by its machine code (ngx_chain_writer loads ctx->connection from rdi+0x10).
 * The uprobe checks each request's signature besides, and refuses (counts) a mismatch.
 */
export const NGINX_LAYOUTS: readonly { readonly major: number; readonly minMinor: number; readonly layout: NginxLayout }[] = [
  {
    major: 1,
    minMinor: 0,
    layout: { writerConnection: 16, connectionData: 0, connectionFd: 24, requestSignature: 0, requestConnection: 8 },
  },
];

export type NginxLinkTarget =
  | { readonly ok: true; readonly version: string; readonly binaryPath: string; readonly offset: number; readonly layout: NginxLayout }
  | { readonly ok: false; readonly version?: string; readonly reason: string };

/** An executable name that is nginx's (Debian: /usr/sbin/nginx for every flavour). */
export function isNginx(exeName: string): boolean {
  return exeName === 'nginx';
}

/** The layout for a version string such as "1.22.1", or undefined when none is known. */
export function nginxLayoutFor(version: string): NginxLayout | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (!m) return undefined;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return NGINX_LAYOUTS.find((l) => l.major === major && minor >= l.minMinor)?.layout;
}

const VERSION_MARK = Buffer.from('nginx version: nginx/');

/** nginx's version from the string `nginx -v` prints ("nginx version: nginx/1.22.1"), in .rodata. */
export function nginxVersionOf(elf: ElfFile): string | undefined {
  const rodata = elf.section('.rodata');
  if (!rodata) return undefined;
  const data = elf.sectionData(rodata);
  const at = data.indexOf(VERSION_MARK);
  if (at < 0) return undefined;
  const end = data.indexOf(0, at);
  return data.toString('latin1', at + VERSION_MARK.length, end < 0 ? at + VERSION_MARK.length + 32 : end).trim();
}

/** Inspects the nginx binary at `binaryPath` (e.g. /proc/<pid>/exe). */
export function inspectNginx(binaryPath: string): NginxLinkTarget {
  try {
    return withElf(binaryPath, (elf) => {
      const version = nginxVersionOf(elf);
      if (!version) return { ok: false, reason: 'no nginx version string (not nginx, or a fork such as OpenResty)' };
      const layout = nginxLayoutFor(version);
      if (!layout) return { ok: false, version, reason: `nginx ${version}: no known structure layout` };
      const fn = elf.findDynamicFunction(NGINX_CHAIN_WRITER);
      if (!fn) return { ok: false, version, reason: `nginx ${version}: symbol ${NGINX_CHAIN_WRITER} missing from .dynsym` };
      return { ok: true, version, binaryPath, offset: fn.fileOffset, layout };
    });
  } catch (err) {
    return { ok: false, reason: `cannot read the binary: ${errorMessage(err)}` };
  }
}
