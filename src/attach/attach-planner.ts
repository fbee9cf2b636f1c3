/**
 * Which tracer a selected process goes to, decided once per process from its executable: a Go
 * binary the Go tracer can read goes to the uprobe tracer (plus black-box parents from the
 * syscall tracer); anything else goes to the syscall tracer when it runs; a process that exited
 * while its executable was read is let go; what neither can trace is skipped, with the reason.
 */
import type { ProcessInfo } from '../discovery/process-info';
import { errorMessage } from '../errors';
import type { GoTarget } from '../tracers/go-http-tracer';
import { ProcessGoneError, type InspectionCache } from './inspection-cache';

export type AttachPlan =
  | { readonly kind: 'go'; readonly target: GoTarget }
  /** Not a (traceable) Go binary: `notGo` says why, for the attach line. */
  | { readonly kind: 'syscall'; readonly notGo: string }
  | { readonly kind: 'gone' }
  | { readonly kind: 'skip'; readonly why: string };

export function planAttach(proc: ProcessInfo, inspection: Pick<InspectionCache, 'targetOf'>, syscallTracer: boolean): AttachPlan {
  try {
    return { kind: 'go', target: inspection.targetOf(proc) };
  } catch (err) {
    if (err instanceof ProcessGoneError) return { kind: 'gone' };
    return syscallTracer ? { kind: 'syscall', notGo: errorMessage(err) } : { kind: 'skip', why: errorMessage(err) };
  }
}
