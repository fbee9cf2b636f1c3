import { GO_OFFSETS } from '../../../src/events/structs.generated';
import {
  encodeGoOffsets,
  GO_FUNCS,
  GoHttpTracer,
  INJECT_PROGRAM,
  isMemoryInjectionRefused,
  OFFSET_ABSENT,
  type GoTarget,
} from '../../../src/tracers/go-http-tracer';
import { SpanbridgeError } from '../../../src/errors';
import { FakeBpfBackend } from '../../fakes/fake-bpf';
import { goTarget } from '../../fixtures/go-target';

const OBJ = '/x/go_http.bpf.o';

async function started(backend = new FakeBpfBackend()): Promise<{ backend: FakeBpfBackend; tracer: GoHttpTracer }> {
  const tracer = new GoHttpTracer(backend, OBJ);
  await tracer.start(() => undefined);
  return { backend, tracer };
}

describe('GoHttpTracer', () => {
  it('sets its settings in .rodata before load', async () => {
    const { backend } = await started();
    expect(backend.rodataOf(OBJ)).toEqual({
      header_max_age_ns: 10_000_000_000n,
      capture_user_agent: true,
      max_goroutine_depth: 4,
      socket_injection: false,
      memory_injection: false,
      ring_wakeup_bytes: 0n, // the kernel's default unless the agent asks for adaptive wakeups
    });
    // Without memory injection the header-writing program is never loaded.
    expect(backend.openObjects()[0].disabled).toEqual(new Set([INJECT_PROGRAM]));
  });

  it('a kernel refusing the header-writing program is told apart by the typed load error, not its text', async () => {
    const thrown = async (backend: FakeBpfBackend): Promise<unknown> => {
      try {
        await new GoHttpTracer(backend, OBJ, { injection: 'memory' }).start(() => undefined);
      } catch (err) {
        return err;
      }
      throw new Error('start() did not throw');
    };
    const refused = await thrown(new FakeBpfBackend().failLoad(INJECT_PROGRAM, 'unknown func bpf_probe_write_user#36'));
    expect(isMemoryInjectionRefused(refused)).toBe(true);
    // Another program failing is not a reason to drop injection, even when its log names a helper.
    const other = await thrown(new FakeBpfBackend().failLoad('go_server_handler_serve_http', 'unknown func bpf_probe_write_user#36'));
    expect(isMemoryInjectionRefused(other)).toBe(false);
    expect(isMemoryInjectionRefused(new SpanbridgeError('ERR_BPF_LOAD', `load: program ${INJECT_PROGRAM}: bpf_probe_write_user`))).toBe(false);
    // Without memory injection the program is disabled, so its failure never reaches start().
    await expect(new GoHttpTracer(new FakeBpfBackend().failLoad(INJECT_PROGRAM), OBJ).start(() => undefined)).resolves.toBeUndefined();
  });

  it('passes its ring-buffer wakeup threshold to the programs', async () => {
    const backend = new FakeBpfBackend();
    await new GoHttpTracer(backend, OBJ, { ringWakeupBytes: 65536 }).start(() => undefined);
    expect(backend.rodataOf(OBJ)?.ring_wakeup_bytes).toBe(65536n);
  });

  it('writes the offsets first, then attaches entry + every RET with the pid; never a uretprobe', async () => {
    const { backend, tracer } = await started();
    const r = tracer.attach(42, '/proc/42/exe', goTarget());
    expect(r).toEqual({ links: 4, notes: ['no client spans (net/http Transport not linked)'] });
    const obj = backend.openObjects()[0];
    const key = Buffer.alloc(4);
    key.writeUInt32LE(42);
    const value = obj.map('go_offsets_by_pid').lookup(key);
    expect(value).toEqual(encodeGoOffsets(goTarget()));
    expect(backend.activeLinks().map((l) => [l.program, l.target])).toEqual([
      ['go_server_handler_serve_http', { kind: 'uprobe', binaryPath: '/proc/42/exe', offset: 0x1000, pid: 42 }],
      ['go_server_handler_serve_http_ret', { kind: 'uprobe', binaryPath: '/proc/42/exe', offset: 0x1040, pid: 42 }],
      ['go_server_handler_serve_http_ret', { kind: 'uprobe', binaryPath: '/proc/42/exe', offset: 0x1080, pid: 42 }],
      ['go_textproto_read_line_ret', { kind: 'uprobe', binaryPath: '/proc/42/exe', offset: 0x2030, pid: 42 }],
    ]);
  });

  it('detach destroys the links in reverse order and forgets the offsets', async () => {
    const { backend, tracer } = await started();
    tracer.attach(42, '/proc/42/exe', goTarget());
    tracer.detach(42);
    expect(backend.activeLinks()).toHaveLength(0);
    const order = backend.links.map((l) => l.destroyOrder);
    expect(order).toEqual([3, 2, 1, 0]);
    const key = Buffer.alloc(4);
    key.writeUInt32LE(42);
    expect(backend.openObjects()[0].map('go_offsets_by_pid').lookup(key)).toBeNull();
    tracer.detach(42); // idempotent
  });

  it('rolls back everything when an attach fails half way', async () => {
    const backend = new FakeBpfBackend().failAttach('go_textproto_read_line_ret', 3);
    const { tracer } = await started(backend);
    expect(() => tracer.attach(42, '/proc/42/exe', goTarget())).toThrow(/No such process \(errno 3\)/);
    expect(backend.activeLinks()).toHaveLength(0);
    expect(tracer.attachedPids).toEqual([]);
  });

  it('needs ServeHTTP with RET points and the required offsets; Pattern is optional', async () => {
    const { tracer } = await started();
    expect(() => tracer.attach(1, 'p', goTarget({ functions: {} }))).toThrow(/net\/http.serverHandler.ServeHTTP in the binary/);
    const noPattern = goTarget();
    const offsets = { ...noPattern.offsets };
    delete (offsets as Record<string, number | undefined>)['net/http.Request.Pattern'];
    const r = tracer.attach(2, 'p', { ...noPattern, goVersion: 'go1.22.12', offsets });
    expect(r.notes).toEqual(['no ServeMux route (Request.Pattern needs Go >= 1.23; go1.22.12)', 'no client spans (net/http Transport not linked)']);
    const buf = encodeGoOffsets({ ...noPattern, offsets });
    expect(buf.readUInt32LE(GO_OFFSETS.fields.req_pattern.offset)).toBe(OFFSET_ABSENT);
    const missingGoid = { ...noPattern.offsets };
    delete (missingGoid as Record<string, number | undefined>)['runtime.g.goid'];
    expect(() => encodeGoOffsets({ ...noPattern, offsets: missingGoid })).toThrow(/struct offsets for runtime.g.goid/);
  });

  const clientFunctions = {
    [GO_FUNCS.roundTrip]: { entryOffset: 0x3000, retOffsets: [0x3100, 0x3200] },
    [GO_FUNCS.requestWrite]: { entryOffset: 0x4000, retOffsets: [0x4100] },
    [GO_FUNCS.writeSubset]: { entryOffset: 0x5000, retOffsets: [0x5100] },
    [GO_FUNCS.persistConnWriterWrite]: { entryOffset: 0x5800, retOffsets: [0x5900] },
    [GO_FUNCS.newproc1]: { entryOffset: 0x6000, retOffsets: [0x6100] },
    [GO_FUNCS.goexit1]: { entryOffset: 0x7000, retOffsets: [] },
    [GO_FUNCS.bodyEofSignalClose]: { entryOffset: 0x8000, retOffsets: [0x8100] },
  };

  it.each([
    ['none', 'go_header_write_subset_ret'],
    ['memory', INJECT_PROGRAM],
    ['socket', 'go_header_write_subset_ret'],
  ] as const)('client probes with injection %s use %s at the writeSubset RETs', async (injection, retProgram) => {
    const backend = new FakeBpfBackend();
    const tracer = new GoHttpTracer(backend, OBJ, { injection });
    await tracer.start(() => undefined);
    const t = goTarget();
    const r = tracer.attach(7, '/proc/7/exe', { ...t, functions: { ...t.functions, ...clientFunctions } });
    expect(r.notes).toEqual([]);
    const byProgram = (p: string) => backend.activeLinks().filter((l) => l.program === p).map((l) => (l.target.kind === 'uprobe' ? l.target.offset : -1));
    expect(byProgram('go_transport_round_trip')).toEqual([0x3000]);
    expect(byProgram('go_transport_round_trip_ret')).toEqual([0x3100, 0x3200]);
    expect(byProgram('go_request_write')).toEqual([0x4000]);
    expect(byProgram('go_header_write_subset')).toEqual([0x5000]);
    expect(byProgram('go_persist_conn_writer_write')).toEqual([0x5800]);
    expect(byProgram(retProgram)).toEqual([0x5100]);
    expect(byProgram('go_runtime_newproc1_ret')).toEqual([0x6100]);
    expect(byProgram('go_runtime_goexit1')).toEqual([0x7000]);
    expect(byProgram('go_body_eof_signal_close')).toEqual([0x8000]);
    const disabled = backend.openObjects()[0].disabled;
    expect(disabled.has(retProgram)).toBe(false);
    expect(disabled.size).toBe(1);
  });

  it('client path syscall: (*persistConn).writeLoop entry (per connection), no probe per request; dialConn (per connection) and stripPassword (failed calls); server path syscall: (*conn).serve entry', async () => {
    const backend = new FakeBpfBackend();
    const tracer = new GoHttpTracer(backend, OBJ, { injection: 'socket' });
    await tracer.start(() => undefined);
    const t = goTarget();
    const functions = {
      ...t.functions,
      ...clientFunctions,
      [GO_FUNCS.persistConnWriteLoop]: { entryOffset: 0x9000, retOffsets: [0x9100] },
      [GO_FUNCS.connServe]: { entryOffset: 0xa000, retOffsets: [] },
      [GO_FUNCS.dialConn]: { entryOffset: 0xb000, retOffsets: [0xb100] },
      [GO_FUNCS.stripPassword]: { entryOffset: 0xc000, retOffsets: [0xc100] },
    };
    const offsets = { ...t.offsets, 'net/http.persistConn.bw': 112, 'net/http.persistConn.reqch': 128, 'runtime.hchan.recvq': 64, 'runtime.sudog.c': 88, 'net/http.conn.curReq': 112, 'net/http.response.req': 8 };
    const r = tracer.attach(7, '/proc/7/exe', { ...t, functions, offsets }, 'syscall', 'syscall');
    expect(r.notes).toEqual([]);
    expect(backend.activeLinks().map((l) => [l.program, l.target.kind === 'uprobe' ? l.target.offset : -1])).toEqual([
      ['go_server_conn_serve', 0xa000],
      ['go_persist_conn_write_loop', 0x9000],
      ['go_transport_dial_conn', 0xb000],
      ['go_client_call_failed', 0xc000],
    ]);
    const enc = encodeGoOffsets({ ...t, offsets });
    expect(enc.readUInt32LE(GO_OFFSETS.fields.pconn_bw.offset)).toBe(112);
    expect(enc.readUInt32LE(GO_OFFSETS.fields.pconn_reqch.offset)).toBe(128);
    expect(enc.readUInt32LE(GO_OFFSETS.fields.chan_recvq.offset)).toBe(64);
    expect(enc.readUInt32LE(GO_OFFSETS.fields.sudog_c.offset)).toBe(88);
    expect(enc.readUInt32LE(GO_OFFSETS.fields.rac_ch.offset)).toBe(t.offsets['net/http.requestAndChan.ch']);
  });

  it('client path syscall without stripPassword: writeLoop only, and the attach note says failed calls have no span', async () => {
    const backend = new FakeBpfBackend();
    const tracer = new GoHttpTracer(backend, OBJ, { injection: 'socket' });
    await tracer.start(() => undefined);
    const t = goTarget();
    const functions = { ...t.functions, [GO_FUNCS.persistConnWriteLoop]: { entryOffset: 0x9000, retOffsets: [0x9100] }, [GO_FUNCS.dialConn]: { entryOffset: 0xb000, retOffsets: [] } };
    delete (functions as Record<string, unknown>)[GO_FUNCS.stripPassword];
    const offsets = { ...t.offsets, 'net/http.persistConn.bw': 112 };
    const r = tracer.attach(7, '/proc/7/exe', { ...t, functions, offsets }, 'syscall', 'syscall');
    expect(r.notes.join('; ')).toMatch(/calls that fail before writing their request have no span/);
    expect(backend.activeLinks().map((l) => l.program)).not.toContain('go_client_call_failed');
    expect(backend.activeLinks().map((l) => l.program)).toContain('go_persist_conn_write_loop');
  });

  it('injection socket: the read-only writeSubset RET program, and socket_injection set in .rodata', async () => {
    const backend = new FakeBpfBackend();
    const tracer = new GoHttpTracer(backend, OBJ, { injection: 'socket' });
    await tracer.start(() => undefined);
    expect(tracer.injection).toBe('socket');
    expect(backend.rodataOf(OBJ)).toMatchObject({ socket_injection: true, memory_injection: false });
    expect(backend.openObjects()[0].disabled).toEqual(new Set([INJECT_PROGRAM]));
  });

  it('without bodyEOFSignal.Close, client spans end at the response head and that is said', async () => {
    const { tracer, backend } = await started();
    const t = goTarget();
    const functions = { ...t.functions, ...clientFunctions } as Record<string, unknown>;
    delete functions[GO_FUNCS.bodyEofSignalClose];
    const r = tracer.attach(9, 'p', { ...t, functions: functions as GoTarget['functions'] });
    expect(r.notes).toEqual(['client spans end at the response head (bodyEOFSignal.Close or Response.Body offsets not found)']);
    expect(backend.activeLinks().some((l) => l.program === 'go_body_eof_signal_close')).toBe(false);
  });

  it('without runtime.g.parentGoid (Go < 1.21) goroutine ancestry is skipped and said so', async () => {
    const { tracer, backend } = await started();
    const t = goTarget({ goVersion: 'go1.20.1' });
    const offsets = { ...t.offsets } as Record<string, number | undefined>;
    delete offsets['runtime.g.parentGoid'];
    const r = tracer.attach(8, 'p', { ...t, offsets, functions: { ...t.functions, ...clientFunctions } });
    expect(r.notes).toEqual(['client calls from spawned goroutines are not linked (needs Go >= 1.21; go1.20.1)']);
    expect(backend.activeLinks().some((l) => l.program === 'go_runtime_newproc1_ret')).toBe(false);
  });

  it('close detaches every process and closes the object', async () => {
    const { backend, tracer } = await started();
    tracer.attach(1, 'p', goTarget());
    tracer.attach(2, 'p', goTarget());
    await tracer.close();
    expect(backend.activeLinks()).toHaveLength(0);
    expect(backend.openObjects()).toHaveLength(0);
    // Records still in the ring (below the wakeup threshold) are delivered, not dropped.
    expect(backend.closeOptionsOf(OBJ)).toEqual({ drain: true });
  });
});
