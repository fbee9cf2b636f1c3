/**
 * Where a Go executable keeps g relative to the thread pointer (go.server_path syscall): from its
 * PT_TLS segment, on hand-made segment lists (real builds: test/unit-built/discovery/go/tls.test.ts).
 */
import { PT_LOAD, PT_TLS, type ElfSegment } from '../../../../src/discovery/go/elf';
import { goTlsOffset } from '../../../../src/discovery/go/tls';
import { GO_FUNCS, LEAN_CLIENT_FIELDS } from '../../../../src/tracers/go-http-tracer';
import { chooseGoClientPath, chooseGoServerPath } from '../../../../src/tracers/go-server-path';

const seg = (type: number, memsz: number, align: number, vaddr = 0): ElfSegment => ({ type, flags: 4, offset: 0, vaddr, filesz: 0, memsz, align });
const elfOf = (segments: ElfSegment[], tlsg?: number) => ({ segments, tlsSymbolValue: () => tlsg });

describe('goTlsOffset', () => {
  it("Go's own thread pointer (no PT_TLS): g at fs-8", () => {
    expect(goTlsOffset(elfOf([seg(PT_LOAD, 4096, 4096)]))).toMatchObject({ ok: true, offset: -8 });
  });
  it('a PT_TLS holding only g (cgo, PIE): the block ends at the thread pointer', () => {
    expect(goTlsOffset(elfOf([seg(PT_TLS, 8, 8)]))).toMatchObject({ ok: true, offset: -8 });
  });
  it('C thread-locals besides g: runtime.tlsg places g, with the segment alignment', () => {
    expect(goTlsOffset(elfOf([seg(PT_TLS, 40, 16)], 32))).toMatchObject({ ok: true, offset: 32 - 48 });
    // first byte misaligned in the segment (p_vaddr % align = 8): glibc keeps it at that phase
    expect(goTlsOffset(elfOf([seg(PT_TLS, 40, 16, 0x1008)], 0))).toMatchObject({ ok: true, offset: -(Math.ceil((40 - 8) / 16) * 16 + 8) });
  });
  it('C thread-locals and no runtime.tlsg: unresolved, with the reason', () => {
    const r = goTlsOffset(elfOf([seg(PT_TLS, 64, 8)]));
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(/64 bytes of thread-local data/);
  });
});

describe('chooseGoServerPath', () => {
  const target = {
    goVersion: 'go1.26.8',
    functions: {},
    offsets: { 'runtime.g.goid': 152, 'net/http.conn.curReq': 64, 'net/http.response.req': 8, 'net/http.Request.Pattern': 248 },
    gTls: { ok: true as const, offset: -8, how: 'g at fs-8' },
  };
  it('keeps uprobes unless asked', () => {
    const c = chooseGoServerPath('uprobes', target, true);
    expect(c.path).toBe('uprobes');
    expect(c.goServer).toBeUndefined();
  });
  it('syscall: goid, TLS slot and the route offsets for the kernel', () => {
    expect(chooseGoServerPath('syscall', target, true)).toMatchObject({
      path: 'syscall',
      goServer: { goidOffset: 152, gTlsOffset: -8, connCurReq: 64, respReq: 8, reqPattern: 248 },
    });
  });
  it('falls back to uprobes, saying why', () => {
    expect(chooseGoServerPath('syscall', target, false).note).toMatch(/uprobes .*syscall tracer is not running/);
    expect(chooseGoServerPath('syscall', { ...target, gTls: { ok: false, reason: 'C TLS' } }, true)).toMatchObject({ path: 'uprobes', note: expect.stringMatching(/C TLS/) });
    expect(chooseGoServerPath('syscall', { ...target, offsets: {} }, true).path).toBe('uprobes');
  });
  it('no Request.Pattern (Go < 1.23): spans without a route from Go', () => {
    const { 'net/http.Request.Pattern': _p, ...older } = target.offsets;
    expect(chooseGoServerPath('syscall', { ...target, offsets: older }, true).goServer).toEqual({ goidOffset: 152, gTlsOffset: -8 });
  });
});

describe('chooseGoClientPath', () => {
  const target = {
    goVersion: 'go1.26.8',
    functions: { [GO_FUNCS.persistConnWriteLoop]: { entryOffset: 0x1000, retOffsets: [] } },
    // go1.26 amd64, from DWARF
    offsets: {
      'net/http.persistConn.bw': 112,
      'bufio.Writer.buf': 8,
      'net/http.persistConn.reqch': 128,
      'runtime.hchan.qcount': 0,
      'runtime.hchan.dataqsiz': 8,
      'runtime.hchan.buf': 16,
      'runtime.hchan.elemsize': 24,
      'runtime.hchan.recvx': 56,
      'runtime.hchan.recvq': 64,
      'runtime.waitq.first': 0,
      'runtime.sudog.g': 0,
      'runtime.sudog.c': 88,
      'net/http.requestAndChan.ch': 8,
    } as Record<string, number>,
  };
  it('keeps uprobes unless asked', () => {
    expect(chooseGoClientPath('uprobes', 'syscall', 'socket', target)).toEqual({ path: 'uprobes', note: 'client spans: uprobes' });
  });
  it('syscall with the server path syscall and socket or no injection', () => {
    for (const inj of ['socket', 'none'] as const) {
      expect(chooseGoClientPath('syscall', 'syscall', inj, target)).toMatchObject({ path: 'syscall', note: expect.stringMatching(/no uprobe per request: one per connection at \(\*persistConn\)\.writeLoop; uprobes from the first HTTPS call on/) });
    }
  });
  it('falls back to uprobes, saying why: server on uprobes, memory injection, writeLoop or any offset of the hand-over unknown', () => {
    expect(chooseGoClientPath('syscall', 'uprobes', 'socket', target).note).toMatch(/uprobes \(go.client_path syscall not possible: server spans are not on the syscall path\)/);
    expect(chooseGoClientPath('syscall', 'syscall', 'memory', target).note).toMatch(/written into memory/);
    expect(chooseGoClientPath('syscall', 'syscall', 'socket', { ...target, functions: {} }).note).toMatch(/persistConn\)\.writeLoop not found/);
    expect(chooseGoClientPath('syscall', 'syscall', 'socket', { ...target, offsets: {} }).note).toMatch(/persistConn\.bw, .*requestAndChan\.ch unknown/);
    for (const f of LEAN_CLIENT_FIELDS) {
      const { [f]: _gone, ...rest } = target.offsets;
      expect(chooseGoClientPath('syscall', 'syscall', 'socket', { ...target, offsets: rest })).toEqual({
        path: 'uprobes',
        note: `client spans: uprobes (go.client_path syscall not possible: offsets of ${f} unknown)`,
      });
    }
  });
});
