import { BpfLoadError, SpanbridgeError } from '../../../src/errors';
import { PROC_EVENTS_OBJECT, SYS_HTTP_OBJECT } from '../../../src/events/structs.generated';
import { openTracerObject, pidKey } from '../../../src/tracers/open-object';
import { FakeBpfBackend } from '../../fakes/fake-bpf';

describe('openTracerObject (how every tracer opens its object)', () => {
  it('opens with the options, loads, then runs setup; the links it made are returned', async () => {
    const backend = new FakeBpfBackend();
    const { obj, links } = await openTracerObject(backend, '/x/proc_events.bpf.o', {}, (o, l) => {
      l.push(o.program(PROC_EVENTS_OBJECT.programs.on_exec).attachTracepoint('sched', 'sched_process_exec'));
      o.ringBuffer(PROC_EVENTS_OBJECT.maps.proc_events, () => undefined).start();
    });
    expect(links).toHaveLength(1);
    expect(backend.openObjects()).toEqual([obj]);
    expect(backend.activeLinks().map((l) => l.program)).toEqual([PROC_EVENTS_OBJECT.programs.on_exec]);
  });

  it('a failed attach destroys the links made so far (reverse order), closes the object, rethrows the typed error', async () => {
    const backend = new FakeBpfBackend().failAttach(SYS_HTTP_OBJECT.programs.sys_enter_connect);
    let thrown: unknown;
    try {
      await openTracerObject(backend, '/x/sys_http.bpf.o', {}, (o, l) => {
        l.push(o.program(SYS_HTTP_OBJECT.programs.sys_exit_accept).attachTracepoint('syscalls', 'sys_exit_accept'));
        l.push(o.program(SYS_HTTP_OBJECT.programs.sys_exit_accept4).attachTracepoint('syscalls', 'sys_exit_accept4'));
        l.push(o.program(SYS_HTTP_OBJECT.programs.sys_enter_connect).attachTracepoint('syscalls', 'sys_enter_connect'));
      });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SpanbridgeError);
    expect(thrown).toMatchObject({ code: 'ERR_BPF_ATTACH' });
    expect(backend.activeLinks()).toEqual([]);
    // accept4's link (made last) went first.
    const order = (prog: string) => backend.links.find((l) => l.program === prog)?.destroyOrder;
    expect(order(SYS_HTTP_OBJECT.programs.sys_exit_accept4)).toBeLessThan(order(SYS_HTTP_OBJECT.programs.sys_exit_accept)!);
    expect(backend.openObjects()).toEqual([]);
  });

  it('a refused load closes the object and keeps the BpfLoadError (program, verifier log) for the caller', async () => {
    const backend = new FakeBpfBackend().failLoad(PROC_EVENTS_OBJECT.programs.on_exit, 'R1 invalid mem access');
    await expect(openTracerObject(backend, '/x/proc_events.bpf.o', {}, () => undefined)).rejects.toThrow(BpfLoadError);
    expect(backend.openObjects()).toEqual([]);
  });

  it('per-process map keys are the tgid as a little-endian u32', async () => {
    expect(pidKey(0x01020304)).toEqual(Buffer.from([4, 3, 2, 1]));
  });
});
