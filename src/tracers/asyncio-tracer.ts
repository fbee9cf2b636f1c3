/**
 * Python asyncio linking (bpf/sys_http/sys_http_asyncio.h): three uprobes per process (four more where
 * uvloop is loaded), in the syscall tracer's object (they share its maps: the client write reads
 * what they keep). It adds no spans of its own; it tells the syscall tracer's client writes which
 * server request their task serves.
 */
import { SpanbridgeError } from '../errors';
import { PY_ASYNCIO_PROC, SYS_HTTP_OBJECT } from '../events/structs.generated';
import { writeUints } from '../events/struct-view';
import type { AsyncioTarget } from '../discovery/python-asyncio';
import type { BpfLink, BpfObject } from '../bpf/types';
import { pidKey } from './open-object';
import type { Tracer } from './tracer';

const P = SYS_HTTP_OBJECT.programs;

/** CPython 3.12+ can start a task eagerly: its first step runs inside Task.__init__. */
function eagerTasks(version: string): boolean {
  const minor = Number(/^3\.(\d+)$/.exec(version)?.[1] ?? 0);
  return minor >= 12;
}

export class AsyncioTracer implements Tracer<[sysHttpObject: BpfObject], [target: AsyncioTarget]> {
  readonly name = 'py_asyncio';
  private obj: BpfObject | undefined;
  private readonly links = new Map<number, BpfLink[]>();
  /** Per attached pid: whether its uvloop probes are attached. */
  private readonly uvloop = new Map<number, boolean>();

  /** Uses the syscall tracer's loaded object (its programs and maps); attaches nothing yet. */
  start(sysHttpObject: BpfObject): void {
    this.obj = sysHttpObject;
  }

  get attachedPids(): number[] {
    return [...this.links.keys()];
  }

  /** Attached processes whose uvloop probes are not (uvloop was not loaded at their attach). */
  get withoutUvloop(): number[] {
    return [...this.uvloop].filter(([, on]) => !on).map(([pid]) => pid);
  }

  /** Uprobes attached now, over every process. */
  get linkCount(): number {
    let n = 0;
    for (const l of this.links.values()) n += l.length;
    return n;
  }

  /** Writes the process's addresses, then attaches its three uprobes. Returns a note for the log. */
  attach(pid: number, target: AsyncioTarget): string {
    const obj = this.obj;
    if (!obj) throw new SpanbridgeError('ERR_BPF_LOAD', 'asyncio tracer not started');
    this.detach(pid);
    const o = target.offsets;
    const value = writeUints(PY_ASYNCIO_PROC, {
        step_type: target.stepType,
        wakeup_def: target.wakeupDef,
        cfunction_type: target.cfunctionType,
        sw_task: o.swTask,
        fut_callback0: o.futCallback0,
        m_ml: o.mMl,
        m_self: o.mSelf,
        tp_name: o.tpName,
        task_context: o.taskContext,
        step_name_len: Buffer.byteLength(target.stepName, 'latin1'),
      });
    value.write(target.stepName, PY_ASYNCIO_PROC.fields.step_name.offset, 'latin1');
    obj.map(SYS_HTTP_OBJECT.maps.py_procs).update(pidKey(pid), value);
    const links: BpfLink[] = [];
    try {
      links.push(obj.program(P.py_context_run).attachUprobe({ ...target.contextRun, pid }));
      if (eagerTasks(target.version)) {
        // 3.12+: __init__ may run an eager task's first step; the task is current until it returns
        // the return before the entry: an entry seen without its return would keep a task current
        links.push(obj.program(P.py_task_init_return).attachUprobe({ ...target.taskInit, pid, retprobe: true }));
        links.push(obj.program(P.py_task_init_eager).attachUprobe({ ...target.taskInit, pid }));
      } else {
        links.push(obj.program(P.py_task_init).attachUprobe({ ...target.taskInit, pid }));
      }
      links.push(obj.program(P.py_future_set_result).attachUprobe({ ...target.futureSetResult, pid }));
      const uv = target.uvloop;
      if (uv) {
        // the exit before the steps: a task made current must not miss the exit that ends its step
        links.push(obj.program(P.py_context_exit).attachUprobe({ ...uv.contextExit, pid }));
        links.push(obj.program(P.py_task_wakeup).attachUprobe({ ...uv.taskWakeup, pid }));
        links.push(obj.program(P.py_task_step_call).attachUprobe({ ...uv.taskStepCall, pid }));
        if (uv.readStart) links.push(obj.program(P.py_uv_read_start).attachUprobe({ ...uv.readStart, pid }));
      }
    } catch (err) {
      for (const l of links.reverse()) l.destroy();
      this.forget(pid);
      throw err;
    }
    this.links.set(pid, links);
    this.uvloop.set(pid, target.uvloop !== undefined);
    const uvNote = target.uvloop ? `; uvloop: PyContext_Exit, task_wakeup, TaskStepMethWrapper_call${target.uvloop.readStart ? ', uv_read_start' : ''}` : '';
    return `asyncio tasks linked (CPython ${target.version}: uprobes on Context.run, Task.__init__${eagerTasks(target.version) ? ' (entry and return: eager tasks)' : ''}, Future.set_result${uvNote})`;
  }

  detach(pid: number): void {
    const links = this.links.get(pid);
    if (!links) return;
    this.links.delete(pid);
    this.uvloop.delete(pid);
    for (const l of links.reverse()) l.destroy();
    this.forget(pid);
  }

  /** Its counters live in the syscall tracer's counter map (sys_http_link_asyncio, ...). */
  kernelCounters(): Record<string, number> {
    return {};
  }

  async close(): Promise<void> {
    for (const pid of [...this.links.keys()]) this.detach(pid);
    this.obj = undefined;
  }

  private forget(pid: number): void {
    try {
      this.obj?.map(SYS_HTTP_OBJECT.maps.py_procs).delete(pidKey(pid));
    } catch {
      // the object may already be closing
    }
  }
}
