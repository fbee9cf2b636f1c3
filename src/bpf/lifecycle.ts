/**
 * Orderly shutdown of BPF objects on SIGINT/SIGTERM.
 *
 * Every open BpfObject registers here (the libbpf binding does it on open and unregisters on
 * close). `closeAllOnExit()` installs the signal handlers once; on a signal it closes every open
 * object (links destroyed in reverse order, ring buffers drained and freed), then re-raises the
 * signal so the process ends the way it would have without us (exit status 128+signo).
 *
 * Why bother, when the kernel drops perf-event links when the process's fds close anyway: an
 * orderly close stops uprobes *before* the process starts tearing down (no records into a
 * half-closed pipeline), frees anything pinned under /sys/fs/bpf, and lets the last records be
 * consumed. No koffi here: this module is testable with plain objects and a fake process.
 */

/** What the registry needs from an open object. */
export interface Closable {
  readonly path?: string;
  close(): Promise<void>;
}

const open = new Set<Closable>();

/** Registers an open object; returns the function that unregisters it (call it from close()). */
export function trackOpenObject(obj: Closable): () => void {
  open.add(obj);
  return () => {
    open.delete(obj);
  };
}

/** Objects opened and not yet closed (for tests and `doctor`). */
export function openObjectCount(): number {
  return open.size;
}

/**
 * Closes every registered object, in reverse order of opening. Never throws: errors are returned
 * so a shutdown path can log them and carry on.
 */
export async function closeAllOpenObjects(): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (const obj of [...open].reverse()) {
    try {
      await obj.close();
    } catch (err) {
      errors.push(err);
    }
    open.delete(obj);
  }
  return errors;
}

/** The part of `process` used here, so tests can pass a fake. */
export interface SignalProcess {
  readonly pid: number;
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  removeListener(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  kill(pid: number, signal: NodeJS.Signals): unknown;
  exit(code: number): unknown;
}

export interface CloseOnExitOptions {
  readonly signals?: readonly NodeJS.Signals[];
  /** Give up waiting for close() after this long and exit anyway. Default 3000 ms. */
  readonly timeoutMs?: number;
  /** Called with errors from close(), e.g. to log them. */
  readonly onError?: (err: unknown) => void;
  readonly proc?: SignalProcess;
}

let installed: { proc: SignalProcess; uninstall: () => void } | undefined;

/**
 * Installs SIGINT/SIGTERM handlers (once per process; later calls are no-ops and return the same
 * uninstall function). On the first signal: close all objects, remove our handlers, re-raise the
 * signal. On a second signal while closing: exit at once with 128+signo-like status 130/143.
 */
export function closeAllOnExit(options: CloseOnExitOptions = {}): () => void {
  if (installed) return installed.uninstall;
  const proc = options.proc ?? process;
  const signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  const timeoutMs = options.timeoutMs ?? 3000;
  let closing = false;

  const uninstall = (): void => {
    for (const s of signals) proc.removeListener(s, onSignal);
    if (installed?.proc === proc) installed = undefined;
  };

  function onSignal(signal: NodeJS.Signals): void {
    if (closing) {
      proc.exit(signal === 'SIGINT' ? 130 : 143);
      return;
    }
    closing = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref?.();
    });
    void Promise.race([
      closeAllOpenObjects().then((errors) => errors.forEach((e) => options.onError?.(e))),
      timeout,
    ]).finally(() => {
      if (timer) clearTimeout(timer);
      uninstall();
      // Default disposition is back: the process ends by the same signal.
      proc.kill(proc.pid, signal);
    });
  }

  for (const s of signals) proc.on(s, onSignal);
  installed = { proc, uninstall };
  return uninstall;
}
