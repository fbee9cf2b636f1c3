/**
 * The syscall HTTP tracer and its stage with the fake BPF backend: tracepoints attached once,
 * settings in .rodata, processes selected through traced_tgids, kernel counters summed over CPUs,
 * and records (encoded with the generated layouts) turned into spans.
 */
import { decodeRecord } from '../../../src/events/decoder';
import { formatAddress } from '../../../src/events/sys-http';
import { RECORD_TYPE, SYS_HTTP_DATA_EVENT as D, SYS_HTTP_DROP_REASON, SYS_HTTP_FLAG2 } from '../../../src/events/structs.generated';
import { SelfMetrics } from '../../../src/metrics/counters';
import type { Span } from '../../../src/spans/span';
import { FixedClock } from '../../../src/time/clock';
import { runtimeOf, SysHttpStage } from '../../../src/tracers/sys-http-stage';
import { clientSpansUnlinked } from '../../../src/metrics/catalogue';
import { isEventLoopRuntime, SYS_HTTP_PROGRAMS, SysHttpTracer } from '../../../src/tracers/sys-http-tracer';
import { FakeBpfBackend } from '../../fakes/fake-bpf';
import { sysConnRecord, sysDataRecord, v4 } from '../../fixtures/records';

const OBJ = '/x/sys_http.bpf.o';

describe('sys http records', () => {
  it('decodes connection and data records through the one decoder', async () => {
    const m = new SelfMetrics();
    const open = decodeRecord(sysConnRecord(RECORD_TYPE.RECORD_SYS_HTTP_CONN_OPEN), m);
    expect(open).toMatchObject({ type: 'sys_http_conn_open', role: 'server', pid: 7, connId: 99n, localAddress: '127.0.0.1', localPort: 8080, remoteAddress: '10.1.2.3', remotePort: 51000 });
    const d = decodeRecord(sysDataRecord('GET / HTTP/1.1\r\n\r\n', { flags: 1 }), m);
    expect(d).toMatchObject({ type: 'sys_http_data', direction: 'ingress', role: 'server', len: 18, traceId: '0af7651916cd43dd8448eb211c80319c', spanId: '00f067aa0ba902b7' });
    if (d?.type !== 'sys_http_data') throw new Error('not data');
    expect(d.data.toString()).toBe('GET / HTTP/1.1\r\n\r\n');
    expect(d.parentSpanId).toBe(''); // no parent flag: the parent bytes are not read
    // The spare contexts ride behind the data, only with SYS_F2_SPARES (the record's full size).
    expect(d.spareIds).toEqual([]);
    const spared = decodeRecord(sysDataRecord('GET / HTTP/1.1\r\n\r\n', { flags: 1, flags2: SYS_HTTP_FLAG2.SYS_F2_SPARES }), m);
    expect(spared?.type === 'sys_http_data' && spared.spareIds).toHaveLength(3);
    const cut = sysDataRecord('GET / HTTP/1.1\r\n\r\n', { flags: 1, flags2: SYS_HTTP_FLAG2.SYS_F2_SPARES }).subarray(0, D.fields.data.offset + 18);
    const spareless = decodeRecord(cut, m);
    expect(spareless?.type === 'sys_http_data' && spareless.spareIds).toEqual([]);
    const pipelined = decodeRecord(sysDataRecord('GET / HTTP/1.1\r\n\r\n', { flags: 1, flags2: 1 }), m);
    expect(pipelined).toMatchObject({ flags: 1, flags2: 1 });
    const noStart = decodeRecord(sysDataRecord('body'), m);
    expect(noStart?.type === 'sys_http_data' && noStart.spareIds).toEqual([]);
  });

  it('decodes records sent as header + captured bytes only (variable size)', async () => {
    const full = sysDataRecord('GET /v HTTP/1.1\r\n\r\n', { flags: 1 });
    const sent = full.subarray(0, D.fields.data.offset + 19);
    const d = decodeRecord(sent, new SelfMetrics());
    expect(d?.type === 'sys_http_data' && d.data.toString()).toBe('GET /v HTTP/1.1\r\n\r\n');
    // A capture_len larger than what arrived is cut to the record.
    const lying = Buffer.from(sent);
    lying.writeUInt16LE(1024, D.fields.capture_len.offset);
    const d2 = decodeRecord(lying, new SelfMetrics());
    expect(d2?.type === 'sys_http_data' && d2.data.length).toBe(19);
  });

  it('counts short records instead of decoding them', async () => {
    const m = new SelfMetrics();
    expect(decodeRecord(sysDataRecord('x').subarray(0, D.fields.data.offset - 1), m)).toBeNull();
    expect(m.snapshot().find((p) => p.labels.reason === 'short')?.value).toBe(1);
  });

  it('formats IPv6 and mapped IPv4 addresses', async () => {
    expect(formatAddress(v4('192.168.0.1'))).toBe('192.168.0.1');
    expect(formatAddress(Buffer.from('00000000000000000000000000000001', 'hex'))).toBe('::1');
    expect(formatAddress(Buffer.from('20010db8000000000000000000000042', 'hex'))).toBe('2001:db8::42');
    expect(formatAddress(Buffer.from('fe800000000000000000000000000000', 'hex'))).toBe('fe80::');
  });
});

describe('SysHttpTracer', () => {
  it('loads with its settings and attaches every tracepoint once', async () => {
    const backend = new FakeBpfBackend();
    const t = new SysHttpTracer(backend, OBJ, { correlationWindowMs: 250, maxConnections: 100 });
    await t.start(() => undefined);
    expect(backend.rodataOf(OBJ)).toEqual({
      correlation_window_ns: 250_000_000n,
      thread_ctx_max_age_ns: 60_000_000_000n,
      max_connections: 100,
      sk_inject_pending: false,
      ring_wakeup_bytes: 0n,
    });
    const targets = backend.activeLinks().map((l) => l.target);
    expect(targets).toHaveLength(SYS_HTTP_PROGRAMS.length + 1);
    // children of traced processes are traced from their fork; exec and exit release them
    expect(targets).toContainEqual({ kind: 'raw_tracepoint', name: 'sched_process_fork' });
    expect(targets).toContainEqual({ kind: 'tracepoint', category: 'sched', name: 'sched_process_exec' });
    for (const s of ['accept4', 'read', 'write', 'readv', 'writev', 'recvfrom', 'sendto', 'recvmsg', 'sendmsg']) {
      expect(targets).toContainEqual({ kind: 'tracepoint', category: 'syscalls', name: `sys_exit_${s}` });
    }
    expect(targets).toContainEqual({ kind: 'tracepoint', category: 'syscalls', name: 'sys_enter_close' });
    expect(targets).toContainEqual({ kind: 'tracepoint', category: 'sched', name: 'sched_process_exit' });
  });

  it('passes its ring-buffer wakeup threshold to the programs', async () => {
    const backend = new FakeBpfBackend();
    await new SysHttpTracer(backend, OBJ, { ringWakeupBytes: 4096 }).start(() => undefined);
    expect(backend.rodataOf(OBJ)?.ring_wakeup_bytes).toBe(4096n);
  });

  it('selects processes through traced_tgids with their mode, and forgets them on detach', async () => {
    const backend = new FakeBpfBackend();
    const t = new SysHttpTracer(backend, OBJ);
    await t.start(() => undefined);
    t.attach(42, { threadLinking: true });
    t.attach(43, { threadLinking: false });
    t.attach(44, { threadLinking: false, goLinkOnly: true, goidOffset: 152 });
    const map = backend.openObjects()[0].map('traced_tgids');
    const key = (p: number): Buffer => Buffer.from(new Uint32Array([p]).buffer);
    expect(map.lookup(key(42))?.readUInt32LE(0)).toBe(3);
    expect(map.lookup(key(43))?.readUInt32LE(0)).toBe(1);
    expect(map.lookup(key(44))?.readUInt32LE(0)).toBe(4);
    expect(map.lookup(key(44))?.readUInt32LE(4)).toBe(152); // struct traced_process.goid_offset
    t.detach(42);
    expect(map.lookup(key(42))).toBeNull();
    expect(t.attachedPids.sort()).toEqual([43, 44]);
  });

  it('sets a selected process\'s bit in the agent\'s half of traced_bits and clears it at detach (the gate every program tests first)', async () => {
    const backend = new FakeBpfBackend();
    const t = new SysHttpTracer(backend, OBJ);
    await t.start(() => undefined);
    const bits = backend.openObjects()[0].map('traced_bits');
    const word = (w: number): bigint | undefined => bits.lookup(Buffer.from(new Uint32Array([w]).buffer))?.readBigUInt64LE(0);
    // 130 = word 2, bit 2; 131 = word 2, bit 3; 4_194_303 (the largest host tgid) = word 65535, bit 63
    t.attach(130, { threadLinking: true });
    t.attach(131, { threadLinking: true });
    t.attach(4_194_303, { threadLinking: false });
    expect(word(2)).toBe(0b1100n);
    expect(word(65535)).toBe(1n << 63n);
    t.detach(130);
    expect(word(2)).toBe(0b1000n);
    t.detach(131);
    expect(word(2)).toBe(0n);
    // an inherited child the agent takes over keeps a bit of the agent's own until its detach
    const k = Buffer.from(new Uint32Array([200]).buffer);
    backend.openObjects()[0].map('traced_tgids').update(k, Buffer.alloc(32));
    expect(t.adoptInherited(200, { threadLinking: true })).toBe(true);
    expect(word(3)).toBe(1n << 8n);
    // the kernel's half (children from their fork) is never written from here
    expect([...Array(4).keys()].map((i) => word(65536 + i))).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('registers open connections for take-over by (tgid, fd) with socket inode and role', async () => {
    const backend = new FakeBpfBackend();
    const t = new SysHttpTracer(backend, OBJ);
    await t.start(() => undefined);
    t.attach(42, { threadLinking: true });
    expect(t.adoptOpen(42, [{ fd: 7, inode: 0x1_0000_0001n, role: 'server' }, { fd: 9, inode: 5n, role: 'client' }])).toEqual({ registered: 2, failed: 0 });
    const map = backend.openObjects()[0].map('adopt_conns');
    const key = (fd: number): Buffer => Buffer.from(new Uint32Array([42, fd]).buffer);
    expect(map.lookup(key(7))?.readBigUInt64LE(0)).toBe(0x1_0000_0001n);
    expect(map.lookup(key(7))?.[8]).toBe(1); // SYS_ROLE_SERVER
    expect(map.lookup(key(9))?.[8]).toBe(2); // SYS_ROLE_CLIENT
  });

  it('routes a fork record to onFork (in ring order, before any span of the child)', async () => {
    const forks: [number, number, bigint][] = [];
    const stage = new SysHttpStage({
      backend: new FakeBpfBackend(),
      objectPath: OBJ,
      clock: new FixedClock(0n, 0n),
      metrics: new SelfMetrics(),
      resourceOf: () => undefined,
      deliver: () => undefined,
      onFork: (c, p, ts) => forks.push([c, p, ts]),
    });
    const rec = Buffer.alloc(40);
    rec[0] = RECORD_TYPE.RECORD_PROC_FORK;
    rec.writeUInt32LE(501, 4);
    rec.writeUInt32LE(500, 8);
    rec.writeBigUInt64LE(77n, 16);
    const drop = jest.spyOn(stage.assembler, 'dropPid');
    stage.onRecord(rec, 0, rec.length);
    expect(forks).toEqual([[501, 500, 77n]]);
    expect(drop).not.toHaveBeenCalled();
    // The kernel's exit (and exec) record comes after every record of the process: state goes then.
    rec[0] = RECORD_TYPE.RECORD_PROC_EXIT;
    stage.onRecord(rec, 0, rec.length);
    rec[0] = RECORD_TYPE.RECORD_PROC_EXEC;
    stage.onRecord(rec, 0, rec.length);
    expect(drop.mock.calls).toEqual([[501], [501]]);
  });

  it('sums kernel counters over CPUs', async () => {
    const backend = new FakeBpfBackend({ possibleCpus: 2, objects: { [OBJ]: { maps: { sys_http_drops: { keySize: 4, valueSize: 8, kind: 'per-cpu' }, sys_http_events: { keySize: 0, valueSize: 0, kind: 'ring-buffer' }, traced_bits: { keySize: 4, valueSize: 8 } } } } });
    const t = new SysHttpTracer(backend, OBJ);
    await t.start(() => undefined);
    const v = Buffer.alloc(8);
    v.writeBigUInt64LE(3n);
    const k = Buffer.alloc(4);
    k.writeUInt32LE(SYS_HTTP_DROP_REASON.SYS_DROP_CONN_STATE_FULL);
    backend.openObjects()[0].map('sys_http_drops').update(k, v);
    const drops = t.kernelCounters();
    expect(drops.sys_http_drop_conn_state_full).toBe(6);
    expect(drops.sys_http_skip_not_http).toBe(0);
  });

  it('closes everything it opened', async () => {
    const backend = new FakeBpfBackend();
    const t = new SysHttpTracer(backend, OBJ);
    await t.start(() => undefined);
    t.attach(1, { threadLinking: true });
    await t.close();
    expect(backend.activeLinks()).toHaveLength(0);
    expect(backend.openObjects()).toHaveLength(0);
    expect(backend.closeOptionsOf(OBJ)).toEqual({ drain: true });
  });

  it('knows event-loop runtimes', async () => {
    expect(isEventLoopRuntime('node')).toBe(true);
    expect(isEventLoopRuntime('node20')).toBe(true);
    expect(isEventLoopRuntime('python3.11')).toBe(false);
    expect(runtimeOf({ exeName: 'python3.11' }).language).toBe('python');
  });
});

describe('SysHttpStage', () => {
  it('turns ring-buffer records into a span with the kernel ids, and no span for a process it does not know', async () => {
    const backend = new FakeBpfBackend();
    const spans: Span[] = [];
    const stage = new SysHttpStage({
      backend,
      objectPath: OBJ,
      clock: new FixedClock(10n),
      metrics: new SelfMetrics(),
      resourceOf: (pid) => (pid === 7 ? { attributes: { 'service.name': 's' } } : undefined),
      deliver: (s) => spans.push(s),
    });
    await stage.start();
    expect(stage.attach({ pid: 7, exeName: 'node' })).toMatch(/thread linking off/);
    backend.emit('sys_http_events', sysConnRecord(RECORD_TYPE.RECORD_SYS_HTTP_CONN_OPEN));
    backend.emit('sys_http_events', sysDataRecord('GET /x?y=1 HTTP/1.1\r\nHost: h\r\n\r\n', { flags: 1 | 4 }));
    backend.emit('sys_http_events', sysDataRecord('HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n', { direction: 1, flags: 2, ts_ns: 5_000n }));
    expect(spans).toHaveLength(1);
    expect(spans[0]).toMatchObject({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: '00f067aa0ba902b7',
      parentSpanId: 'b7ad6b7169203331',
      kind: 'SERVER',
      startTimeUnixNano: 2_010n,
      endTimeUnixNano: 5_010n,
    });
    expect(spans[0].attributes).toMatchObject({ 'url.path': '/x', 'url.query': 'y=1', 'http.response.status_code': 201, 'client.address': '10.1.2.3' });
    backend.emit('sys_http_events', sysConnRecord(RECORD_TYPE.RECORD_SYS_HTTP_CONN_OPEN, { pid: 8, conn_id: 5n }));
    backend.emit('sys_http_events', sysDataRecord('GET / HTTP/1.1\r\n\r\n', { pid: 8, conn_id: 5n, flags: 1 }));
    backend.emit('sys_http_events', sysDataRecord('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', { pid: 8, conn_id: 5n, direction: 1 }));
    expect(spans).toHaveLength(1);
  });
  it('counts client spans of event-loop runtimes and Java left without a parent, never those of other runtimes or with an app traceparent', async () => {
    const backend = new FakeBpfBackend();
    const spans: Span[] = [];
    const metrics = new SelfMetrics();
    const stage = new SysHttpStage({
      backend,
      objectPath: OBJ,
      clock: new FixedClock(10n),
      metrics,
      resourceOf: () => ({ attributes: { 'service.name': 's' } }),
      deliver: (s) => spans.push(s),
    });
    await stage.start();
    stage.attach({ pid: 7, exeName: 'node20' });
    stage.attach({ pid: 9, exeName: 'python3' });
    const call = (pid: number, conn: bigint, flags: number): void => {
      backend.emit('sys_http_events', sysConnRecord(RECORD_TYPE.RECORD_SYS_HTTP_CONN_OPEN, { pid, conn_id: conn, role: 2 }));
      backend.emit('sys_http_events', sysDataRecord('GET /out HTTP/1.1\r\nHost: d\r\n\r\n', { pid, conn_id: conn, role: 2, direction: 1, flags }));
      backend.emit('sys_http_events', sysDataRecord('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', { pid, conn_id: conn, role: 2, direction: 0, flags: 2, ts_ns: 5_000n }));
    };
    call(7, 1n, 1); // node, no parent: counted
    call(7, 2n, 1 | 128); // node, the application's own traceparent: not counted
    call(9, 3n, 1); // python (thread linking on): not counted
    stage.attach({ pid: 11, exeName: 'nginx' }); // nginx without its link (no uprobes here): never by thread
    call(11, 4n, 1); // counted as nginx
    call(11, 5n, 1 | 8); // linked (SYS_F_THREAD_PARENT: the kernel's link to its downstream request): not counted
    // thread linking on; calls of other threads have no parent
    expect(stage.attach({ pid: 13, exeName: 'java' })).toMatch(/thread linking on \(Java: a JDK HttpClient connection's first request through the thread that connected it; never on ForkJoinPool workers/);
    call(13, 6n, 1); // counted as java (e.g. written by a JDK HttpClient worker)
    call(13, 7n, 1 | 8); // linked by thread: not counted
    expect(spans.map((s) => s.kind)).toEqual(['CLIENT', 'CLIENT', 'CLIENT', 'CLIENT', 'CLIENT', 'CLIENT', 'CLIENT']);
    expect(clientSpansUnlinked.get(metrics, { runtime: 'node' })).toBe(1);
    expect(clientSpansUnlinked.get(metrics, { runtime: 'nginx' })).toBe(1);
    expect(clientSpansUnlinked.get(metrics, { runtime: 'java' })).toBe(1);
    expect(clientSpansUnlinked.total(metrics)).toBe(3);
  });
});
