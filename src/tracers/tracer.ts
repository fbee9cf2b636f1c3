/**
 * The contract every tracer implements, whatever it probes: start, attach a selected process,
 * detach it, its kernel-side counters, close. What starting and attaching take differs per tracer
 * (a ring-buffer handler or a cgroup; a Go binary's offsets or a runtime's options), so those
 * arguments are typed per tracer through the type parameters.
 */
import type { RecordHandler } from '../bpf/types';

export interface Tracer<StartArgs extends unknown[] = [onRecord: RecordHandler], AttachArgs extends unknown[] = []> {
  /** Prefix of its kernel counters' reasons, and its name in logs: 'go_http', 'sys_http', ... */
  readonly name: string;
  /**
   * Opens and loads its BPF object, attaches what every process shares, starts its ring buffer.
   * The tracers the agent starts at once load on worker threads, concurrently (a promise); those
   * started on demand in a synchronous path (nginx linking) or on another tracer's object
   * (asyncio) return when done.
   */
  start(...args: StartArgs): void | Promise<void>;
  /** Starts tracing one selected process. */
  attach(pid: number, ...args: AttachArgs): unknown;
  /** Stops tracing one process. Idempotent, and harmless after close(). */
  detach(pid: number): void;
  /** Processes traced now (empty for a tracer that watches every process). */
  readonly attachedPids: readonly number[];
  /**
   * Kernel-side drop and skip counters summed over CPUs, cumulative, by reason; each reason is
   * unique across tracers (the counter map's names, lower case). {} before start and after close.
   */
  kernelCounters(): Record<string, number>;
  /** Detaches everything and frees the object (links in reverse creation order). */
  close(): Promise<void>;
}

/** What the agent does with every tracer alike, whatever its start and attach arguments. */
export type AnyTracer = Pick<Tracer, 'name' | 'attachedPids' | 'detach' | 'kernelCounters' | 'close'>;
