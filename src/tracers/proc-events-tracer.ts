/**
 * Process exec/exit events from bpf/proc_events/proc_events.bpf.c (sched tracepoints), so discovery follows
 * processes started after the agent without polling /proc.
 */
import type { BpfBackend, BpfObject, RecordHandler } from '../bpf/types';
import { PROC_EVENTS_OBJECT } from '../events/structs.generated';
import { openTracerObject } from './open-object';
import type { Tracer } from './tracer';

/** Watches every process: attach and detach have nothing to do, and it keeps no kernel counters. */
export class ProcEventsTracer implements Tracer {
  readonly name = 'proc_events';
  readonly attachedPids: readonly number[] = [];
  private obj: BpfObject | undefined;

  constructor(
    private readonly backend: BpfBackend,
    private readonly objectPath: string,
  ) {}

  async start(onRecord: RecordHandler): Promise<void> {
    this.obj = (await openTracerObject(this.backend, this.objectPath, {}, (obj, links) => {
      links.push(obj.program(PROC_EVENTS_OBJECT.programs.on_exec).attachTracepoint('sched', 'sched_process_exec'));
      links.push(obj.program(PROC_EVENTS_OBJECT.programs.on_exit).attachTracepoint('sched', 'sched_process_exit'));
      obj.ringBuffer(PROC_EVENTS_OBJECT.maps.proc_events, onRecord).start();
    })).obj;
  }

  attach(): void {}

  detach(): void {}

  kernelCounters(): Record<string, number> {
    return {};
  }

  async close(): Promise<void> {
    const obj = this.obj;
    this.obj = undefined;
    await obj?.close();
  }
}
