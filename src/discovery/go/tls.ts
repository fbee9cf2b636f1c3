/**
 * Where the threads of a Go executable keep the current goroutine (g), as an offset from the
 * thread pointer (fsbase on x86-64), so a syscall tracepoint can read g without a uprobe
 * (go.server_path: syscall; bpf/sys_http/sys_http_go_server.h).
 *
 * - No PT_TLS segment: Go's runtime set the thread pointer itself (runtime.settls, internal
 *   linking without cgo): g is at fs:-8.
 * - A PT_TLS segment: the executable's TLS block (module 1 of the x86-64 "variant II" layout) ends
 *   at the thread pointer, placed so its first byte keeps the segment's alignment (glibc
 *   _dl_determine_tlsoffset, musl likewise): block start = tp - roundup(memsz - firstbyte, align)
 *   - firstbyte. g is at runtime.tlsg within it: the symbol's value when `.symtab` has it, else
 *   offset 0 when the segment holds nothing but g (8 bytes: Go's own .tbss, cgo and PIE builds
 *   without C thread-locals).
 * - A larger PT_TLS (C code with __thread variables) and no runtime.tlsg symbol: unresolved; such a
 *   binary keeps the uprobe server path, and the start-up report says why.
 */
import { PT_TLS, type ElfFile } from './elf';

export type GoTlsResolution = { readonly ok: true; readonly offset: number; readonly how: string } | { readonly ok: false; readonly reason: string };

function roundUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

export function goTlsOffset(elf: Pick<ElfFile, 'segments' | 'tlsSymbolValue'>): GoTlsResolution {
  const tls = elf.segments.find((p) => p.type === PT_TLS);
  if (!tls) return { ok: true, offset: -8, how: "Go's own thread pointer (no PT_TLS): g at fs-8" };
  const align = Math.max(tls.align, 1);
  if ((align & (align - 1)) !== 0) return { ok: false, reason: `PT_TLS alignment ${align} is not a power of two` };
  const firstbyte = (align - (tls.vaddr % align)) % align;
  const block = roundUp(tls.memsz - firstbyte, align) + firstbyte;
  const tlsg = elf.tlsSymbolValue('runtime.tlsg');
  if (tlsg !== undefined) return { ok: true, offset: tlsg - block, how: `runtime.tlsg in a ${tls.memsz}-byte PT_TLS: g at fs${tlsg - block}` };
  if (tls.memsz <= 8) return { ok: true, offset: -block, how: `PT_TLS holds only g: g at fs${-block}` };
  return { ok: false, reason: `the executable has ${tls.memsz} bytes of thread-local data besides Go's and no runtime.tlsg symbol` };
}
