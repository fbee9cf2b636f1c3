import { SK_INJECT_OUTCOME } from '../../../src/events/structs.generated';
import {
  outgoingConnections,
  SK_INJECT_FORK_PROGRAM,
  SK_INJECT_MSG_PROGRAM,
  SK_INJECT_SOCKHASH,
  SK_INJECT_SOCKOPS_PROGRAM,
  SkInjectTracer,
  type ProcSockets,
} from '../../../src/tracers/sk-inject-tracer';
import { openConnections } from '../../../src/discovery/process-sockets';
import { FakeBpfBackend, type FakeObjectSpec } from '../../fakes/fake-bpf';

const OBJ = '/x/sk_inject.bpf.o';
const CG = '/sys/fs/cgroup/unified';

const SPEC: FakeObjectSpec = {
  programs: [SK_INJECT_SOCKOPS_PROGRAM, SK_INJECT_MSG_PROGRAM, SK_INJECT_FORK_PROGRAM, 'sk_inject_process_exec', 'sk_inject_process_exit'],
  maps: {
    sk_inject_tgids: { keySize: 4, valueSize: 1 },
    sk_inject_counters: { keySize: 4, valueSize: 8, kind: 'per-cpu' },
    [SK_INJECT_SOCKHASH]: { keySize: 8, valueSize: 8, kind: 'sockhash' },
  },
  rodata: ['pending_max_age_ns'],
};

function backend(): FakeBpfBackend {
  return new FakeBpfBackend({ possibleCpus: 2, objects: { [OBJ]: SPEC } });
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

describe('SkInjectTracer', () => {
  it('loads with its rodata, attaches sk_msg to the SOCKHASH before sock_ops to the cgroup', async () => {
    const be = backend();
    const t = new SkInjectTracer(be, OBJ, { pendingMaxAgeMs: 50 });
    await t.start(CG);
    expect(be.rodataOf(OBJ)).toEqual({ pending_max_age_ns: 50_000_000n });
    expect(be.activeLinks().map((l) => [l.program, l.target])).toEqual([
      [SK_INJECT_MSG_PROGRAM, { kind: 'sk_msg', mapName: SK_INJECT_SOCKHASH }],
      [SK_INJECT_SOCKOPS_PROGRAM, { kind: 'cgroup', cgroupPath: CG }],
      // the selection follows forks and ends at exec/exit in the kernel
      [SK_INJECT_FORK_PROGRAM, { kind: 'raw_tracepoint', name: 'sched_process_fork' }],
      ['sk_inject_process_exec', { kind: 'tracepoint', category: 'sched', name: 'sched_process_exec' }],
      ['sk_inject_process_exit', { kind: 'tracepoint', category: 'sched', name: 'sched_process_exit' }],
    ]);
    expect(t.started).toBe(true);
    expect(t.cgroupPath).toBe(CG);
    expect(t.linkDescriptions.slice(0, 2)).toEqual([`sk_msg:${SK_INJECT_SOCKHASH} ${SK_INJECT_MSG_PROGRAM}`, `cgroup:${CG} ${SK_INJECT_SOCKOPS_PROGRAM}`]);
  });

  it('defaults the pending age to 200 ms', async () => {
    const be = backend();
    await new SkInjectTracer(be, OBJ).start(CG);
    expect(be.rodataOf(OBJ)).toEqual({ pending_max_age_ns: 200_000_000n });
  });

  it('selects and forgets processes in sk_inject_tgids (idempotent)', async () => {
    const be = backend();
    const t = new SkInjectTracer(be, OBJ);
    await t.start(CG);
    t.attach(42);
    t.attach(43);
    const map = be.openObjects()[0].map('sk_inject_tgids');
    expect(map.lookup(u32(42))).toEqual(Buffer.from([1]));
    expect(t.attachedPids.sort()).toEqual([42, 43]);
    t.detach(42);
    t.detach(42);
    expect(map.lookup(u32(42))).toBeNull();
    expect(map.lookup(u32(43))).toEqual(Buffer.from([1]));
    expect(t.attachedPids).toEqual([43]);
  });

  it('attach before start is an error', async () => {
    expect(() => new SkInjectTracer(backend(), OBJ).attach(1)).toThrow(/not started/);
  });

  it('sums the per-CPU counters by outcome name', async () => {
    const be = backend();
    const t = new SkInjectTracer(be, OBJ);
    await t.start(CG);
    const counters = be.openObjects()[0].map('sk_inject_counters') as unknown as { setPerCpu(k: Buffer, v: Buffer[]): void };
    const v = (n: bigint): Buffer => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(n);
      return b;
    };
    counters.setPerCpu(u32(SK_INJECT_OUTCOME.SK_INJECT_DONE), [v(3n), v(4n)]);
    counters.setPerCpu(u32(SK_INJECT_OUTCOME.SK_INJECT_SKIP_NOT_HTTP), [v(1n), v(0n)]);
    const c = t.kernelCounters();
    expect(c.sk_inject_done).toBe(7);
    expect(c.sk_inject_skip_not_http).toBe(1);
    expect(c.sk_inject_skip_stale).toBe(0);
    expect(Object.keys(c)).not.toContain('sk_inject_outcome_max');
    expect(Object.keys(c)).toHaveLength(SK_INJECT_OUTCOME.SK_INJECT_OUTCOME_MAX);
  });

  it('a failed cgroup attach leaves nothing attached and the object closed', async () => {
    const be = backend().failAttach(SK_INJECT_SOCKOPS_PROGRAM, 1);
    const t = new SkInjectTracer(be, OBJ);
    await expect(t.start(CG)).rejects.toThrow(/attach sk_inject_sockops to cgroup .*Operation not permitted/);
    expect(be.activeLinks()).toEqual([]);
    expect(be.openObjects()).toEqual([]);
    expect(t.started).toBe(false);
  });

  it('a load failure (e.g. no sk_msg on this kernel) propagates with nothing attached', async () => {
    const be = backend().failLoad(SK_INJECT_MSG_PROGRAM, 'unknown program type');
    await expect(new SkInjectTracer(be, OBJ).start(CG)).rejects.toThrow(/unknown program type/);
    expect(be.activeLinks()).toEqual([]);
  });

  it('sk_msg attaches only to a SOCKHASH', async () => {
    const be = new FakeBpfBackend({
      objects: { [OBJ]: { ...SPEC, maps: { ...SPEC.maps, [SK_INJECT_SOCKHASH]: { keySize: 8, valueSize: 8, kind: 'hash' } } } },
    });
    await expect(new SkInjectTracer(be, OBJ).start(CG)).rejects.toThrow(/not a SOCKMAP or SOCKHASH/);
    expect(be.activeLinks()).toEqual([]);
  });

  it('close detaches in reverse order and closes the object; detach after close is harmless', async () => {
    const be = backend();
    const t = new SkInjectTracer(be, OBJ);
    await t.start(CG);
    t.attach(5);
    await t.close();
    expect(be.activeLinks()).toEqual([]);
    const order = be.links.map((l) => [l.program, l.destroyOrder]);
    expect(order).toEqual([
      [SK_INJECT_MSG_PROGRAM, 4],
      [SK_INJECT_SOCKOPS_PROGRAM, 3],
      [SK_INJECT_FORK_PROGRAM, 2],
      ['sk_inject_process_exec', 1],
      ['sk_inject_process_exit', 0],
    ]);
    expect(be.openObjects()).toEqual([]);
    expect(() => t.detach(5)).not.toThrow();
    expect(t.kernelCounters()).toEqual({});
  });
});

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:1F91 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:D000 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:C351 0100007F:1F92 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:C352 0000000000000000FFFF00000100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 444 1 0000000000000000 20 4 30 10 -1
`;
const PROC: ProcSockets = {
  fds: () => [
    { fd: 0, target: '/dev/null' },
    { fd: 3, target: 'socket:[111]' }, // listener
    { fd: 4, target: 'socket:[222]' }, // outgoing, established
    { fd: 5, target: 'socket:[333]' }, // accepted (local port = the listener's)
    { fd: 6, target: 'socket:[444]' }, // outgoing over IPv6
    { fd: 7, target: 'socket:[999]' }, // not TCP (e.g. unix)
    { fd: 8, target: 'pipe:[5]' },
  ],
  tcpTables: () => [TCP, TCP6],
};

describe('outgoingConnections / registerExisting', () => {
  it('picks established connections whose local port is not a listening port (IPv4 and IPv6)', async () => {
    expect(outgoingConnections(1, PROC)).toEqual([4, 6]);
  });

  it('openConnections gives every established connection its role and socket inode', async () => {
    expect(openConnections(1, PROC)).toEqual([
      { fd: 4, inode: 222n, role: 'client' },
      { fd: 5, inode: 333n, role: 'server' },
      { fd: 6, inode: 444n, role: 'client' },
    ]);
  });

  it('registerExisting inserts each into the SOCKHASH and counts failures', async () => {
    const be = backend();
    const t = new SkInjectTracer(be, OBJ);
    await t.start(CG);
    t.attach(9);
    expect(t.registerExisting(9, PROC)).toEqual({ registered: 2, failed: 0 });
    const map = be.openObjects()[0].map(SK_INJECT_SOCKHASH) as unknown as { sockets: { pid: number; fd: number; tcpNoDelay: boolean }[] };
    // Nagle off on taken-over connections too (an inserted header must not wait for a delayed ACK).
    expect(map.sockets.map((x) => [x.pid, x.fd, x.tcpNoDelay])).toEqual([
      [9, 4, true],
      [9, 6, true],
    ]);
    const closing: ProcSockets = { ...PROC, fds: () => [{ fd: -1, target: 'socket:[222]' }] };
    expect(t.registerExisting(9, closing)).toEqual({ registered: 0, failed: 1 });
    const gone: ProcSockets = {
      fds: () => {
        throw new Error('ENOENT');
      },
      tcpTables: () => [],
    };
    expect(t.registerExisting(9, gone)).toEqual({ registered: 0, failed: 0 });
  });
});
