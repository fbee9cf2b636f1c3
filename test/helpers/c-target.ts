/**
 * Small C programs for the BPF binding tests (test/bpf/): built with gcc, driven by a line
 * protocol on stdin (each command answered by one line on stdout), and the file offset of a
 * function in them for a uprobe.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CTarget {
  readonly pid: number;
  /** Sends one command line and resolves on the program's answer line. */
  run(command: string): Promise<void>;
  stop(): Promise<void>;
}

/** Compiles `source` (-O2) to `dir`/`name`; returns the binary's path. */
export function buildCProgram(dir: string, name: string, source: string): string {
  writeFileSync(join(dir, `${name}.c`), source);
  const out = join(dir, name);
  execFileSync('gcc', ['-O2', '-o', out, join(dir, `${name}.c`)]);
  return out;
}

/** File offset of a symbol: its address minus its LOAD segment's vaddr plus the segment's offset. */
export function symbolFileOffset(binary: string, symbol: string): number {
  const nm = execFileSync('nm', [binary], { encoding: 'utf8' });
  const line = nm.split('\n').find((l) => l.endsWith(` ${symbol}`));
  if (!line) throw new Error(`${symbol} not in ${binary}`);
  const addr = parseInt(line.split(' ')[0] ?? '', 16);
  const segs = execFileSync('readelf', ['-lW', binary], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.trim().startsWith('LOAD'))
    .map((l) => l.trim().split(/\s+/))
    .map((f) => ({ offset: parseInt(f[1] ?? '', 16), vaddr: parseInt(f[2] ?? '', 16), filesz: parseInt(f[4] ?? '', 16) }));
  const seg = segs.find((s) => addr >= s.vaddr && addr < s.vaddr + s.filesz);
  if (!seg) throw new Error(`no LOAD segment holds ${symbol} at 0x${addr.toString(16)}`);
  return addr - seg.vaddr + seg.offset;
}

/** Starts `path` (which prints one line when ready, then one per command); `children` collects it for cleanup. */
export async function startCTarget(path: string, children: ChildProcessWithoutNullStreams[]): Promise<CTarget> {
  const child = spawn(path, [], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let buffered = '';
  const waiters: (() => void)[] = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      buffered = buffered.slice(nl + 1);
      waiters.shift()?.();
    }
  });
  const nextLine = (): Promise<void> => new Promise((resolve) => waiters.push(resolve));
  await nextLine(); // "ready"
  return {
    pid: child.pid ?? -1,
    run: async (command) => {
      const done = nextLine();
      child.stdin.write(`${command}\n`);
      await done;
    },
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin.end();
      }),
  };
}

/** Why BPF programs cannot be loaded here (not root, no kernel BTF for CO-RE), or undefined. */
export function bpfLoadProblem(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (BPF programs are loaded into the running kernel)';
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'needs kernel BTF at /sys/kernel/btf/vmlinux (CO-RE)';
  return undefined;
}
