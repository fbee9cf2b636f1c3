/**
 * Python asyncio linking with the fake BPF backend: a linkable process gets its addresses in
 * py_procs and its uprobes (an entry and a uretprobe on Task.__init__ from 3.12, for eager tasks),
 * the syscall tracer's mode says "asyncio" with thread linking kept for its other threads; an
 * unlinkable one (stripped) is traced with a note that says why; detach removes both. The
 * assembler names the link `asyncio_task`.
 */
import { SelfMetrics } from '../../../src/metrics/counters';
import { FixedClock } from '../../../src/time/clock';
import { SysHttpStage } from '../../../src/tracers/sys-http-stage';
import { PY_ASYNCIO_PROC, SYS_HTTP_OBJECT } from '../../../src/events/structs.generated';
import type { AsyncioProbe, AsyncioTarget } from '../../../src/discovery/python-asyncio';
import { parseMaps } from '../../../src/discovery/python-asyncio';
import { FakeBpfBackend } from '../../fakes/fake-bpf';

const SYS = '/x/sys_http.bpf.o';
const key = (p: number): Buffer => Buffer.from(new Uint32Array([p]).buffer);
const P = SYS_HTTP_OBJECT.programs;

function target(version: string, stepType: number): AsyncioTarget {
  return {
    version,
    contextRun: { binaryPath: '/proc/7/root/lib/libpython.so', offset: 0x269d10 },
    taskInit: { binaryPath: '/proc/7/root/lib/_asyncio.so', offset: 0x82f0 },
    futureSetResult: { binaryPath: '/proc/7/root/lib/_asyncio.so', offset: 0x7990 },
    stepType,
    stepName: stepType ? 'TaskStepMethWrapper' : '_asyncio.TaskStepMethWrapper',
    wakeupDef: 0x7f0000010ae0,
    cfunctionType: 0x7f000045b000,
    offsets: { swTask: 16, futCallback0: 24, mMl: 16, mSelf: 24, tpName: 24, taskContext: 152 },
  };
}

function withUvloop(t: AsyncioTarget): AsyncioTarget {
  return {
    ...t,
    uvloop: {
      contextExit: { binaryPath: '/proc/7/root/lib/libpython.so', offset: 0x26afb0 },
      taskWakeup: { binaryPath: '/proc/7/root/lib/_asyncio.so', offset: 0x99d0 },
      taskStepCall: { binaryPath: '/proc/7/root/lib/_asyncio.so', offset: 0x9ef0 },
      readStart: { binaryPath: '/proc/7/root/venv/uvloop/loop.so', offset: 0x128ad0 },
    },
  };
}

async function stageWith(backend: FakeBpfBackend, probe: (pid: number) => AsyncioProbe): Promise<SysHttpStage> {
  const stage = new SysHttpStage({
    backend,
    objectPath: SYS,
    probeAsyncio: probe,
    clock: new FixedClock(10n),
    metrics: new SelfMetrics(),
    resourceOf: () => ({ attributes: { 'service.name': 'py' } }),
    deliver: () => undefined,
  });
  await stage.start();
  return stage;
}

describe('Python asyncio linking', () => {
  it('3.11: writes the addresses, attaches Context.run, Task.__init__ and Future.set_result, sets the asyncio mode', async () => {
    const backend = new FakeBpfBackend();
    const stage = await stageWith(backend, () => ({ kind: 'linkable', target: target('3.11', 0x7f00000110a0) }));
    expect(stage.attach({ pid: 7, exeName: 'python3.11' })).toMatch(/thread linking on, asyncio tasks linked \(CPython 3\.11: uprobes on Context\.run, Task\.__init__, Future\.set_result\)/);
    const obj = backend.objects[0];
    expect(obj.map('traced_tgids').lookup(key(7))?.readUInt32LE(0)).toBe(1 | 2 | 16); // TRACE | THREAD_LINK | ASYNCIO
    const v = obj.map('py_procs').lookup(key(7))!;
    expect(v.readBigUInt64LE(PY_ASYNCIO_PROC.fields.step_type.offset)).toBe(0x7f00000110a0n);
    expect(v.readBigUInt64LE(PY_ASYNCIO_PROC.fields.wakeup_def.offset)).toBe(0x7f0000010ae0n);
    expect(v.readUInt32LE(PY_ASYNCIO_PROC.fields.step_name_len.offset)).toBe(19);
    expect(v.toString('latin1', PY_ASYNCIO_PROC.fields.step_name.offset, PY_ASYNCIO_PROC.fields.step_name.offset + 20)).toBe('TaskStepMethWrapper\0');
    const links = backend.activeLinks().filter((l) => l.program.startsWith('py_'));
    expect(links.map((l) => [l.program, l.target])).toEqual([
      [P.py_context_run, { kind: 'uprobe', binaryPath: '/proc/7/root/lib/libpython.so', offset: 0x269d10, pid: 7 }],
      [P.py_task_init, { kind: 'uprobe', binaryPath: '/proc/7/root/lib/_asyncio.so', offset: 0x82f0, pid: 7 }],
      [P.py_future_set_result, { kind: 'uprobe', binaryPath: '/proc/7/root/lib/_asyncio.so', offset: 0x7990, pid: 7 }],
    ]);
    expect(stage.asyncioLinking(7)).toBe('linked (CPython 3.11)');
    stage.detach(7);
    expect(backend.activeLinks().filter((l) => l.program.startsWith('py_'))).toEqual([]);
    expect(obj.map('py_procs').lookup(key(7))).toBeNull();
  });

  it('3.13: Task.__init__ gets an entry and a uretprobe (eager tasks); the heap step type is learned from its name', async () => {
    const backend = new FakeBpfBackend();
    const stage = await stageWith(backend, () => ({ kind: 'linkable', target: target('3.13', 0) }));
    expect(stage.attach({ pid: 7, exeName: 'python3.13' })).toMatch(/CPython 3\.13: uprobes on Context\.run, Task\.__init__ \(entry and return: eager tasks\)/);
    const links = backend.activeLinks().filter((l) => l.program.startsWith('py_task'));
    // the return first: an entry must never be seen without its return
    expect(links.map((l) => [l.program, l.target])).toEqual([
      [P.py_task_init_return, { kind: 'uprobe', binaryPath: '/proc/7/root/lib/_asyncio.so', offset: 0x82f0, pid: 7, retprobe: true }],
      [P.py_task_init_eager, { kind: 'uprobe', binaryPath: '/proc/7/root/lib/_asyncio.so', offset: 0x82f0, pid: 7 }],
    ]);
    const v = backend.objects[0].map('py_procs').lookup(key(7))!;
    expect(v.readBigUInt64LE(PY_ASYNCIO_PROC.fields.step_type.offset)).toBe(0n);
    expect(v.toString('latin1', PY_ASYNCIO_PROC.fields.step_name.offset, PY_ASYNCIO_PROC.fields.step_name.offset + 28)).toBe('_asyncio.TaskStepMethWrapper');
  });

  it('uvloop loaded: PyContext_Exit (before the steps), task_wakeup, TaskStepMethWrapper_call and uv_read_start too', async () => {
    const backend = new FakeBpfBackend();
    const stage = await stageWith(backend, () => ({ kind: 'linkable', target: withUvloop(target('3.11', 0x7f00000110a0)) }));
    expect(stage.attach({ pid: 7, exeName: 'python3.11' })).toMatch(/asyncio tasks linked \(CPython 3\.11: uprobes on Context\.run, Task\.__init__, Future\.set_result; uvloop: PyContext_Exit, task_wakeup, TaskStepMethWrapper_call, uv_read_start\)/);
    const links = backend.activeLinks().filter((l) => l.program.startsWith('py_'));
    expect(links.map((l) => [l.program, l.target])).toEqual([
      [P.py_context_run, { kind: 'uprobe', binaryPath: '/proc/7/root/lib/libpython.so', offset: 0x269d10, pid: 7 }],
      [P.py_task_init, { kind: 'uprobe', binaryPath: '/proc/7/root/lib/_asyncio.so', offset: 0x82f0, pid: 7 }],
      [P.py_future_set_result, { kind: 'uprobe', binaryPath: '/proc/7/root/lib/_asyncio.so', offset: 0x7990, pid: 7 }],
      [P.py_context_exit, { kind: 'uprobe', binaryPath: '/proc/7/root/lib/libpython.so', offset: 0x26afb0, pid: 7 }],
      [P.py_task_wakeup, { kind: 'uprobe', binaryPath: '/proc/7/root/lib/_asyncio.so', offset: 0x99d0, pid: 7 }],
      [P.py_task_step_call, { kind: 'uprobe', binaryPath: '/proc/7/root/lib/_asyncio.so', offset: 0x9ef0, pid: 7 }],
      [P.py_uv_read_start, { kind: 'uprobe', binaryPath: '/proc/7/root/venv/uvloop/loop.so', offset: 0x128ad0, pid: 7 }],
    ]);
    expect(backend.objects[0].map('py_procs').lookup(key(7))!.readUInt32LE(PY_ASYNCIO_PROC.fields.task_context.offset)).toBe(152);
    expect(stage.asyncioLinking(7)).toBe('linked (CPython 3.11, uvloop)');
    stage.detach(7);
    expect(backend.activeLinks().filter((l) => l.program.startsWith('py_'))).toEqual([]);
  });

  it('a stripped interpreter: traced, thread rules kept, the note says why asyncio is not linked', async () => {
    const backend = new FakeBpfBackend();
    const stage = await stageWith(backend, () => ({ kind: 'unlinkable', version: '3.11', reason: 'no symbols: /usr/lib/python3.11/lib-dynload/_asyncio.cpython-311-x86_64-linux-gnu.so is stripped (.symtab removed)' }));
    expect(stage.attach({ pid: 7, exeName: 'python3' })).toMatch(/asyncio not linked: no symbols: .*_asyncio\.cpython-311-x86_64-linux-gnu\.so is stripped/);
    expect(backend.objects[0].map('traced_tgids').lookup(key(7))?.readUInt32LE(0)).toBe(1 | 2);
    expect(backend.activeLinks().filter((l) => l.program.startsWith('py_'))).toEqual([]);
    expect(stage.asyncioLinking(7)).toMatch(/^not linked: no symbols/);
  });

  it('not Python, or asyncio not loaded: no probe, nothing said', async () => {
    const backend = new FakeBpfBackend();
    const probed: number[] = [];
    const stage = await stageWith(backend, (pid) => {
      probed.push(pid);
      return { kind: 'absent' };
    });
    expect(stage.attach({ pid: 7, exeName: 'java' })).not.toMatch(/asyncio/);
    expect(stage.attach({ pid: 8, exeName: 'python3' })).not.toMatch(/asyncio/);
    expect(probed).toEqual([8]);
    expect(stage.asyncioLinking(8)).toBeNull();
  });
});

describe('Python asyncio linking of a process that loads asyncio after its attach', () => {
  it('is probed again at each tick until asyncio is there, then linked and reported', async () => {
    const backend = new FakeBpfBackend();
    let loaded = false;
    const notes: string[] = [];
    const stage = new SysHttpStage({
      backend,
      objectPath: SYS,
      probeAsyncio: () => (loaded ? { kind: 'linkable', target: target('3.11', 0x7f00000110a0) } : { kind: 'absent' }),
      onLateNote: (pid, note) => notes.push(`${pid}: ${note}`),
      clock: new FixedClock(10n),
      metrics: new SelfMetrics(),
      resourceOf: () => undefined,
      deliver: () => undefined,
    });
    await stage.start();
    expect(stage.attach({ pid: 7, exeName: 'python3.11' })).not.toMatch(/asyncio/);
    stage.tick();
    expect(backend.activeLinks().filter((l) => l.program.startsWith('py_'))).toEqual([]);
    loaded = true;
    stage.tick();
    expect(backend.activeLinks().filter((l) => l.program.startsWith('py_'))).toHaveLength(3);
    expect(backend.objects[0].map('traced_tgids').lookup(key(7))?.readUInt32LE(0)).toBe(1 | 2 | 16);
    expect(notes).toEqual([expect.stringMatching(/^7: asyncio tasks linked \(CPython 3\.11.*\(asyncio loaded after the attach\)$/)]);
    stage.tick(); // linked once
    expect(backend.activeLinks().filter((l) => l.program.startsWith('py_'))).toHaveLength(3);
  });

  it('uvloop imported after asyncio was linked: its probes are added at the next tick, once', async () => {
    const backend = new FakeBpfBackend();
    let uv = false;
    let probes = 0;
    const notes: string[] = [];
    const stage = new SysHttpStage({
      backend,
      objectPath: SYS,
      probeAsyncio: () => {
        probes++;
        return { kind: 'linkable', target: uv ? withUvloop(target('3.11', 1)) : target('3.11', 1) };
      },
      uvloopLoaded: () => uv,
      onLateNote: (pid, note) => notes.push(`${pid}: ${note}`),
      clock: new FixedClock(10n),
      metrics: new SelfMetrics(),
      resourceOf: () => undefined,
      deliver: () => undefined,
    });
    await stage.start();
    expect(stage.attach({ pid: 7, exeName: 'python3.11' })).toMatch(/asyncio tasks linked/);
    stage.tick();
    expect(backend.activeLinks().filter((l) => l.program.startsWith('py_'))).toHaveLength(3);
    uv = true;
    stage.tick();
    expect(backend.activeLinks().filter((l) => l.program.startsWith('py_'))).toHaveLength(7);
    expect(notes).toEqual([expect.stringMatching(/^7: asyncio tasks linked .*uvloop: PyContext_Exit, .*uv_read_start\) \(uvloop loaded after the attach\)$/)]);
    expect(stage.asyncioLinking(7)).toBe('linked (CPython 3.11, uvloop)');
    const before = probes;
    stage.tick();
    expect(probes).toBe(before);
    expect(backend.activeLinks().filter((l) => l.program.startsWith('py_'))).toHaveLength(7);
  });

  it('never asks for uprobes where there are none', async () => {
    const backend = new FakeBpfBackend();
    const stage = new SysHttpStage({
      backend,
      objectPath: SYS,
      probeAsyncio: () => ({ kind: 'linkable', target: target('3.11', 1) }),
      asyncioUprobes: false,
      clock: new FixedClock(10n),
      metrics: new SelfMetrics(),
      resourceOf: () => undefined,
      deliver: () => undefined,
    });
    await stage.start();
    expect(stage.attach({ pid: 7, exeName: 'python3.11' })).toMatch(/asyncio not linked: no uprobes here/);
    expect(backend.activeLinks().filter((l) => l.program.startsWith('py_'))).toEqual([]);
  });
});

describe('parseMaps', () => {
  it('keeps file-backed mappings with their start and file offset', async () => {
    const text = [
      '55d0c0a00000-55d0c0a01000 r--p 00000000 fe:00 1234                       /root/.pyenv/versions/3.11.7/bin/python3.11',
      '7f45e86b7000-7f45e86bb000 r--p 00000000 fe:00 21490                      /root/.pyenv/versions/3.11.7/lib/python3.11/lib-dynload/_asyncio.cpython-311-x86_64-linux-gnu.so',
      '7f45e86bb000-7f45e86c2000 r-xp 00004000 fe:00 21490                      /root/.pyenv/versions/3.11.7/lib/python3.11/lib-dynload/_asyncio.cpython-311-x86_64-linux-gnu.so',
      '7ffd1a2b3000-7ffd1a2d4000 rw-p 00000000 00:00 0                          [stack]',
      '7f45e0000000-7f45e0021000 rw-p 00000000 00:00 0 ',
    ].join('\n');
    expect(parseMaps(text)).toEqual([
      { start: 0x55d0c0a00000, offset: 0, path: '/root/.pyenv/versions/3.11.7/bin/python3.11' },
      { start: 0x7f45e86b7000, offset: 0, path: '/root/.pyenv/versions/3.11.7/lib/python3.11/lib-dynload/_asyncio.cpython-311-x86_64-linux-gnu.so' },
      { start: 0x7f45e86bb000, offset: 0x4000, path: '/root/.pyenv/versions/3.11.7/lib/python3.11/lib-dynload/_asyncio.cpython-311-x86_64-linux-gnu.so' },
    ]);
  });
});
