import { SpanbridgeError } from '../../../src/errors';
import { FakeBpfBackend, fakeErrnoText } from '../../fakes/fake-bpf';
import { GO_HTTP_OBJECT } from '../../../src/events/structs.generated';

// Not one of the agent's object files: the fake accepts any name unless a spec says otherwise.
const OBJ = '/fake/test.bpf.o';
const spec = {
  programs: ['uprobe_serve', 'uprobe_write', 'tp_exec'],
  maps: {
    events: { keySize: 0, valueSize: 0, kind: 'ring-buffer' as const },
    ctx: { keySize: 8, valueSize: 4 },
    stats: { keySize: 4, valueSize: 8, kind: 'per-cpu' as const },
  },
  rodata: ['filter_pid', 'debug'],
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof SpanbridgeError ? err.code : 'not-a-SpanbridgeError';
  }
  return undefined;
}

describe('FakeBpfBackend', () => {
  it('records rodata, attaches, and destroys links in reverse order on close (idempotent)', async () => {
    const fake = new FakeBpfBackend({ objects: { [OBJ]: spec } });
    const obj = fake.open(OBJ, { rodata: { filter_pid: 42, debug: true } });
    expect(fake.rodataOf(OBJ)).toEqual({ filter_pid: 42, debug: true });
    obj.load();
    const a = obj.program('uprobe_serve').attachUprobe({ binaryPath: '/app', offset: 0x1234, pid: 7 });
    const b = obj.program('tp_exec').attachTracepoint('sched', 'sched_process_exec');
    expect(a.description).toBe('uprobe:/app+0x1234 pid=7');
    expect(b.description).toBe('tracepoint:sched/sched_process_exec');
    expect(fake.activeLinks().map((l) => l.target.kind)).toEqual(['uprobe', 'tracepoint']);

    await obj.close();
    await obj.close();
    expect(fake.activeLinks()).toEqual([]);
    expect(fake.links.map((l) => [l.program, l.destroyOrder])).toEqual([
      ['uprobe_serve', 1],
      ['tp_exec', 0],
    ]);
    expect(fake.openObjects()).toEqual([]);
    expect(codeOf(() => obj.program('tp_exec').attachTracepoint('a', 'b'))).toBe('ERR_BPF_OPEN');
  });

  it('delivers emitted records (copied), queues them before start, counts handler errors', async () => {
    const fake = new FakeBpfBackend();
    const obj = fake.open(OBJ);
    obj.load();
    const got: Buffer[] = [];
    fake.emit('events', Buffer.from([1, 2])); // before any ring buffer: queued
    const rb = obj.ringBuffer('events', (b, o, n) => {
      if (b[o] === 9) throw new Error('bad record');
      got.push(Buffer.from(b.subarray(o, o + n)));
    });
    expect(got).toHaveLength(0);
    rb.start();
    expect(got.map((r) => [...r])).toEqual([[1, 2]]);
    const src = Buffer.from([3]);
    expect(fake.emit('events', src)).toBe(1);
    src[0] = 99;
    expect(got[1]?.[0]).toBe(3);
    fake.emit('events', Buffer.from([9]));
    expect(rb.delivered).toBe(3);
    expect(rb.handlerErrors).toBe(1);
    await rb.close();
    expect(fake.emit('events', Buffer.from([4]))).toBe(0);
    expect(got).toHaveLength(2);
    await obj.close();
  });

  it('hands records over in place and overwrites them once the handler returns (a view kept past the call shows)', async () => {
    const fake = new FakeBpfBackend();
    const obj = fake.open(OBJ);
    obj.load();
    const kept: Buffer[] = [];
    const copies: Buffer[] = [];
    obj.ringBuffer('events', (b, o, n) => {
      kept.push(b.subarray(o, o + n)); // wrong: a view of the ring
      copies.push(Buffer.from(b.subarray(o, o + n)));
    }).start();
    fake.emit('events', Buffer.from('first record'));
    fake.emit('events', Buffer.from('second'));
    expect(copies.map((c) => c.toString())).toEqual(['first record', 'second']);
    expect(kept.map((k) => [...k])).toEqual([Array(12).fill(0xee), Array(6).fill(0xee)]);
    await obj.close();
  });

  it('fails load, attach and open on request, with the real error codes and message shapes', async () => {
    const fake = new FakeBpfBackend({ objects: { [OBJ]: spec } })
      .failLoad('uprobe_write')
      .failAttach('uprobe_serve', 3)
      .failOpen('/missing.o');
    expect(codeOf(() => fake.open('/missing.o'))).toBe('ERR_BPF_OPEN');

    const obj = fake.open(OBJ);
    expect(() => obj.load()).toThrow(/load \/fake\/test.bpf.o: program uprobe_write: Permission denied \(errno 13\)\nverifier log:\n.*map_value_or_null/);
    await obj.close();

    const ok = fake.open(OBJ, { disablePrograms: ['uprobe_write'] });
    ok.load();
    expect(() => ok.program('uprobe_serve').attachUprobe({ binaryPath: '/x', offset: 0x10, pid: 7 })).toThrow(
      'attach uprobe /x+0x10 pid 7: No such process (errno 3)',
    );
    expect(codeOf(() => ok.program('uprobe_write').attachUprobe({ binaryPath: '/x', offset: 1 }))).toBe('ERR_BPF_ATTACH');
    expect(codeOf(() => ok.program('nope'))).toBe('ERR_BPF_OPEN');
    expect(codeOf(() => ok.map('nope'))).toBe('ERR_BPF_MAP');
    expect(codeOf(() => fake.open(OBJ, { rodata: { nope: 1 } }))).toBe('ERR_BPF_OPEN');
    expect(codeOf(() => fake.open(OBJ, { disablePrograms: ['nope'] }))).toBe('ERR_BPF_OPEN');
    await ok.close();
  });

  it('refuses attach before load', () => {
    const fake = new FakeBpfBackend();
    const obj = fake.open(OBJ);
    expect(codeOf(() => obj.program('p').attachTracepoint('a', 'b'))).toBe('ERR_BPF_ATTACH');
    expect(codeOf(() => obj.ringBuffer('events', () => undefined))).toBe('ERR_BPF_MAP');
  });

  it('keeps map contents, checks key sizes, and has per-CPU values', async () => {
    const fake = new FakeBpfBackend({ possibleCpus: 2, objects: { [OBJ]: spec } });
    const obj = fake.open(OBJ);
    obj.load();
    const ctx = obj.map('ctx');
    const key = Buffer.alloc(8, 1);
    ctx.update(key, Buffer.from([1, 2, 3, 4]));
    expect([...(ctx.lookup(key) ?? [])]).toEqual([1, 2, 3, 4]);
    expect(ctx.delete(key)).toBe(true);
    expect(ctx.delete(key)).toBe(false);
    expect(ctx.lookup(key)).toBeNull();
    expect(codeOf(() => ctx.update(Buffer.alloc(3), Buffer.alloc(4)))).toBe('ERR_BPF_MAP');
    expect(codeOf(() => ctx.update(key, Buffer.alloc(5)))).toBe('ERR_BPF_MAP');

    const stats = obj.map('stats');
    stats.update(Buffer.alloc(4), Buffer.alloc(8, 7));
    expect(stats.lookupPerCpu(Buffer.alloc(4))?.map((b) => b[0])).toEqual([7, 7]);
    expect(codeOf(() => stats.lookup(Buffer.alloc(4)))).toBe('ERR_BPF_MAP');
    expect(codeOf(() => obj.ringBuffer('ctx', () => undefined))).toBe('ERR_BPF_MAP');
    await obj.close();
  });

  it("knows the agent's own objects by file name: names their BTF does not have fail as in a real load", () => {
    const fake = new FakeBpfBackend();
    const path = '/opt/spanbridge/build/bpf/go_http.bpf.o';
    expect(codeOf(() => fake.open(path, { rodata: { no_such_setting: 1 } }))).toBe('ERR_BPF_OPEN');
    expect(codeOf(() => fake.open(path, { disablePrograms: [`${GO_HTTP_OBJECT.programs.go_header_write_subset_ret_inject}_renamed`] }))).toBe('ERR_BPF_OPEN');
    const obj = fake.open(path, {
      rodata: { [GO_HTTP_OBJECT.rodata.max_goroutine_depth]: 4 },
      disablePrograms: [GO_HTTP_OBJECT.programs.go_header_write_subset_ret_inject],
    });
    obj.load();
    expect(codeOf(() => obj.program('go_server_handler_serve_http_renamed'))).toBe('ERR_BPF_OPEN');
    expect(codeOf(() => obj.map('go_offsets_by_pid_renamed'))).toBe('ERR_BPF_MAP');
    expect(codeOf(() => obj.ringBuffer('no_such_events', () => undefined))).toBe('ERR_BPF_MAP');
    expect(() => obj.program(GO_HTTP_OBJECT.programs.go_server_handler_serve_http)).not.toThrow();
    expect(() => obj.map(GO_HTTP_OBJECT.maps.go_offsets_by_pid)).not.toThrow();
    expect(() => obj.ringBuffer(GO_HTTP_OBJECT.maps.go_http_events, () => undefined)).not.toThrow();
  });

  it('formats errno like strerror', () => {
    expect(fakeErrnoText(3)).toBe('No such process (errno 3)');
    expect(fakeErrnoText(-2)).toBe('No such file or directory (errno 2)');
  });
});
