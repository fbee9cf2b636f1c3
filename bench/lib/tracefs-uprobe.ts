/**
 * Bare kernel uprobes through tracefs (uprobe_events), no BPF: the trap cost alone, to tell the
 * kernel's part of a uprobe hit from the agent's program. Probes go on the RET instructions of a Go
 * function (as the agent places them), found with objdump; a private event group, removed after.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';

const TRACEFS = existsSync('/sys/kernel/tracing/uprobe_events') ? '/sys/kernel/tracing' : '/sys/kernel/debug/tracing';
const GROUP = 'spanbridge_bench';

/** File offsets of every RET of `symbol` in a non-PIE Go binary (text mapped at 0x400000). */
export function retOffsets(binary: string, symbol: string): number[] {
  const nm = execFileSync('go', ['tool', 'nm', '-size', binary], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const line = nm.split('\n').find((l) => l.trim().endsWith(` T ${symbol}`));
  if (!line) throw new Error(`${symbol} not found in ${binary}`);
  const [addrHex, size] = line.trim().split(/\s+/);
  const addr = parseInt(addrHex, 16);
  const dis = execFileSync('objdump', ['-d', '--no-show-raw-insn', `--start-address=0x${addr.toString(16)}`, `--stop-address=0x${(addr + Number(size)).toString(16)}`, binary], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const base = 0x400000;
  return [...dis.matchAll(/^\s*([0-9a-f]+):\s+ret\b/gm)].map((m) => parseInt(m[1], 16) - base);
}

export interface TracefsProbes {
  enable(on: boolean): void;
  remove(): void;
}

export function addUprobes(binary: string, offsets: number[]): TracefsProbes {
  const names = offsets.map((_, i) => `r${i}`);
  offsets.forEach((off, i) => appendFileSync(`${TRACEFS}/uprobe_events`, `p:${GROUP}/${names[i]} ${binary}:0x${off.toString(16)}\n`));
  return {
    enable(on: boolean) {
      writeFileSync(`${TRACEFS}/events/${GROUP}/enable`, on ? '1' : '0');
    },
    remove() {
      try {
        writeFileSync(`${TRACEFS}/events/${GROUP}/enable`, '0');
      } catch {
        // not created
      }
      for (const n of names) {
        try {
          appendFileSync(`${TRACEFS}/uprobe_events`, `-:${GROUP}/${n}\n`);
        } catch {
          // already gone
        }
      }
    },
  };
}
