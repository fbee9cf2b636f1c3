/**
 * Go binary inspection, once per executable: the result (functions, RET offsets, struct offsets)
 * or the reason it is not a traceable Go binary is kept by the executable's identity (dev:inode,
 * or a content key in containers), so the hundredth worker of one binary costs a map lookup.
 */
import { existsSync } from 'node:fs';
import { inspectGoBinary } from '../discovery/go/inspect';
import { procRoot, type ProcessInfo } from '../discovery/process-info';
import { SpanbridgeError, errorMessage } from '../errors';
import type { Logger } from '../log';
import { binariesInspected } from '../metrics/catalogue';
import type { SelfMetrics } from '../metrics/counters';
import { GO_FUNCS, type GoTarget } from '../tracers/go-http-tracer';

/** The process exited while the agent inspected its executable (not a fact about the binary). */
export class ProcessGoneError extends SpanbridgeError {
  constructor(pid: number, cause: SpanbridgeError) {
    super('ERR_INSPECT', `pid ${pid} exited during inspection (${cause.message})`, { cause });
  }
}

export type GoInspector = (path: string, functionNames: readonly string[]) => GoTarget;

export interface InspectionCacheDeps {
  readonly metrics: SelfMetrics;
  readonly log: Logger;
  /** Default: src/discovery/go/inspect.ts (ELF, .gopclntab, DWARF). */
  readonly inspect?: GoInspector;
  /** Whether the process still runs (default: its /proc/<pid>/exe link exists). */
  readonly processAlive?: (pid: number) => boolean;
}

export class InspectionCache {
  private readonly targets = new Map<string, GoTarget | SpanbridgeError>();

  constructor(private readonly d: InspectionCacheDeps) {}

  /**
   * The process's executable as a Go target; throws the (cached) reason it is not one, or
   * ProcessGoneError (never cached) when the process exited during the inspection.
   */
  targetOf(proc: ProcessInfo): GoTarget {
    let t = this.targets.get(proc.exeKey);
    if (!t) {
      try {
        const started = Date.now();
        const info = (this.d.inspect ?? inspectGoBinary)(proc.exeOpenPath, Object.values(GO_FUNCS));
        t = { goVersion: info.goVersion, functions: info.functions, offsets: info.offsets, gTls: info.gTls };
        binariesInspected.add(this.d.metrics, {});
        this.d.log.debug(`inspected ${proc.exePath} (${proc.exeKey}) for pid ${proc.pid} in ${Date.now() - started} ms: ${info.goVersion}`);
      } catch (err) {
        const e = err instanceof SpanbridgeError ? err : new SpanbridgeError('ERR_INSPECT', errorMessage(err), { cause: err });
        // A process that exited mid-inspection says nothing about its binary: never cache that
        // (it would send every later process of the binary to the wrong tracer). Its exe link is
        // the test: an exited but not yet reaped process (zombie) keeps /proc/<pid> but loses it.
        const alive = this.d.processAlive ?? ((pid: number) => existsSync(`${procRoot()}/${pid}/exe`));
        if (!alive(proc.pid)) throw new ProcessGoneError(proc.pid, e);
        t = e;
      }
      this.targets.set(proc.exeKey, t);
    }
    if (t instanceof SpanbridgeError) throw t;
    return t;
  }

  get size(): number {
    return this.targets.size;
  }
}
