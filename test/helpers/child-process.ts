/**
 * Child processes for the test suites and the bench harness (bench/lib/procs.ts): output
 * captured, the exit seen only once all output is read, stop with a SIGKILL fallback; polling,
 * and free local ports. Node only: the bench compiles this without jest's types.
 */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

export interface Running {
  readonly proc: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<number | NodeJS.Signals>;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | NodeJS.Signals>;
}

/** Captures a just-spawned process's stdout and stderr (piped; stderr's last 512 KiB to 1 MiB kept). */
export function captureOutput(proc: ChildProcess): Running {
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 1 << 20) err = err.slice(-(1 << 19));
  });
  // 'close', not 'exit': only then has all of the process's stdout/stderr been read.
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    proc.on('close', (code, signal) => resolve(code ?? (signal as NodeJS.Signals)));
  });
  return {
    proc,
    pid: proc.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
        const r = await exited;
        clearTimeout(t);
        return r;
      }
      return exited;
    },
  };
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** waitFor for in-process conditions that change within milliseconds (BPF records arriving): checked every 5 ms. */
export function waitForSoon<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  return waitFor(what, fn, timeoutMs, 5);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves once something accepts connections on 127.0.0.1:`port`. */
export async function waitForPort(port: number, timeoutMs = 15_000, stepMs = 100): Promise<void> {
  await waitFor(
    `port ${port}`,
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
    timeoutMs,
    stepMs,
  );
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
/** Ports this process handed out: the kernel may offer a just-closed port again (two calls in a
 * row once both returned 37301, and the agent's web and metrics endpoints collided). */
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (!handedOut.has(port) || attempt >= 20) {
      handedOut.add(port);
      return port;
    }
  }
}
