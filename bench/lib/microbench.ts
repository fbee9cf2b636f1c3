/** Drives a long-lived bench/go/microbench process: `run MS` -> {ops, nsPerOp}. */
import path from 'node:path';
import type { BenchConfig } from './config';
import { spawnPinned, waitFor, type Child } from './procs';

export interface Microbench {
  readonly child: Child;
  readonly binary: string;
  /** nsPerOp: wall clock; cpuNsPerOp: the process's user + system CPU time per op. */
  run(ms: number): Promise<{ ops: number; nsPerOp: number; cpuNsPerOp: number }>;
  stop(): Promise<void>;
}

export async function startMicrobench(config: BenchConfig, mode: 'floor' | 'sysloop', args: string[] = []): Promise<Microbench> {
  const binary = path.join(config.binDir, 'microbench');
  const child = spawnPinned(config.serverCpu, binary, [...args, mode]);
  let consumed = 0;
  const nextLine = () =>
    waitFor('microbench output', () => {
      if (child.proc.exitCode !== null) throw new Error(`microbench exited: ${child.stderr()}`);
      const lines = child.stdout().split('\n');
      if (lines.length - 1 <= consumed) return undefined;
      return JSON.parse(lines[consumed++]) as Record<string, number>;
    }, 120_000, 5);
  await nextLine();
  return {
    child,
    binary,
    async run(ms: number) {
      child.proc.stdin?.write(`run ${ms}\n`);
      const r = await nextLine();
      return { ops: r.ops, nsPerOp: r.nsPerOp, cpuNsPerOp: r.cpuNsPerOp };
    },
    async stop() {
      child.proc.stdin?.end();
      await child.stop();
    },
  };
}
