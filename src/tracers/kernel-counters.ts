/**
 * Kernel-side counters: each tracer keeps a per-CPU array of u64 counters indexed by an enum
 * (drops, skips, outcomes). This sums one such map over CPUs, naming each counter after its enum
 * member, so every tracer reports its counters the same way.
 */
import type { BpfMap } from '../bpf/types';

/**
 * @param values  the enum as generated from BTF (name -> index); `maxName` (the array size
 *                marker) is skipped
 * @param rename  turns an enum member into the reported counter name
 */
export function readCounterMap(
  map: BpfMap,
  values: Readonly<Record<string, number>>,
  maxName: string,
  rename: (enumName: string) => string = (n) => n.toLowerCase(),
): Record<string, number> {
  const out: Record<string, number> = {};
  const key = Buffer.alloc(4);
  for (const [name, idx] of Object.entries(values)) {
    if (name === maxName) continue;
    key.writeUInt32LE(idx);
    const perCpu = map.lookupPerCpu(key) ?? [];
    out[rename(name)] = perCpu.reduce((sum, b) => sum + Number(b.readBigUInt64LE(0)), 0);
  }
  return out;
}
