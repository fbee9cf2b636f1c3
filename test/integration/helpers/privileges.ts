/**
 * BPF and integration tests need root and a kernel with BTF and uprobes. Where those are truly
 * absent the test FAILS with the reason (a skip never counts as coverage), unless the run says
 * SPANBRIDGE_ALLOW_SKIP=1, in which case the caller's describe block is skipped with the reason.
 */
import { spawnSync } from 'node:child_process';
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

/**
 * The host kernel is under lockdown (integrity or confidentiality): bpf_probe_write_user is
 * forbidden. Decided at module load of the test files that depend on it, possibly before any agent
 * ran, so securityfs is mounted here when it is not yet (a fresh boot has it unmounted); a kernel
 * without securityfs has no lockdown LSM. A file that exists but cannot be read is an error, never a
 * silent answer that would skip a suite.
 */
export function lockedDown(): boolean {
  const f = '/sys/kernel/security/lockdown';
  if (!existsSync(f) && process.getuid?.() === 0) {
    spawnSync('mount', ['-t', 'securityfs', 'securityfs', '/sys/kernel/security'], { stdio: 'ignore' });
  }
  if (!existsSync(f)) return false;
  return !readFileSync(f, 'utf8').includes('[none]');
}
