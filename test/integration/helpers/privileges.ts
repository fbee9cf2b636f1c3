/**
 * BPF and integration tests need root and a kernel with BTF and uprobes. Where those are truly
 * absent the test FAILS with the reason (a skip never counts as coverage), unless the run says
 * SPANBRIDGE_ALLOW_SKIP=1, in which case the caller's describe block is skipped with the reason.
 */
import { existsSync, readFileSync } from 'node:fs';

export function missingForBpf(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  if (!existsSync('/sys/kernel/btf/vmlinux')) missing.push('kernel BTF (/sys/kernel/btf/vmlinux)');
  if (!existsSync('/sys/bus/event_source/devices/uprobe')) missing.push('uprobes');
  return missing;
}

export function requireRootAndBpf(): void {
  const missing = missingForBpf();
  if (missing.length > 0) {
    throw new Error(`this test needs ${missing.join(', ')}: run \`make test\` as root on a kernel with BTF and uprobes`);
  }
}

/** The host kernel is under lockdown (integrity or confidentiality): bpf_probe_write_user is forbidden. */
export function lockedDown(): boolean {
  const f = '/sys/kernel/security/lockdown';
  return existsSync(f) && !readFileSync(f, 'utf8').includes('[none]');
}
