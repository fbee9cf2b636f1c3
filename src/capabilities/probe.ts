/**
 * Capabilities are probed, not assumed. Reads what the kernel and the process allow, once at
 * start-up; strategies (src/capabilities/strategy.ts) are chosen from this, and `doctor` and
 * the start-up report print the same facts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';

export type LockdownMode = 'none' | 'integrity' | 'confidentiality';

export interface Capabilities {
  readonly kernelRelease: string;
  readonly isRoot: boolean;
  readonly capSysAdmin: boolean;
  readonly capBpf: boolean;
  readonly capPerfmon: boolean;
  readonly btf: boolean;
  readonly uprobes: boolean;
  readonly kprobes: boolean;
  /** Syscall tracepoints visible through tracefs (needs tracefs mounted). */
  readonly syscallTracepoints: boolean;
  readonly tracefsMounted: boolean;
  readonly lockdown: LockdownMode;
  /** How the lockdown mode was determined. */
  readonly lockdownSource: 'securityfs' | 'assumed-none (no lockdown file)' | 'assumed-integrity (unreadable)';
  readonly cgroup2Mount: string | null;
  /** bpf_probe_write_user usable: lockdown none and CAP_SYS_ADMIN. */
  readonly probeWriteUser: boolean;
}

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

export function parseCapEff(status: string): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

/** "none [integrity] confidentiality" -> "integrity". */
export function parseLockdown(text: string): LockdownMode | null {
  const m = /\[(none|integrity|confidentiality)\]/.exec(text);
  return m ? (m[1] as LockdownMode) : null;
}

export function findMount(mounts: string, fsType: string): string | null {
  for (const line of mounts.split('\n')) {
    const f = line.split(' ');
    if (f[2] === fsType) return f[1];
  }
  return null;
}

export interface ProbeFs {
  exists(path: string): boolean;
  read(path: string): string;
}

const realFs: ProbeFs = {
  exists: (p) => existsSync(p),
  read: (p) => readFileSync(p, 'utf8'),
};

export function probeCapabilities(fs: ProbeFs = realFs): Capabilities {
  let capEff = 0n;
  try {
    capEff = parseCapEff(fs.read('/proc/self/status'));
  } catch {
    // no /proc/self/status: assume nothing
  }
  const has = (bit: bigint): boolean => (capEff & (1n << bit)) !== 0n;
  let mounts = '';
  try {
    mounts = fs.read('/proc/self/mounts');
  } catch {
    mounts = '';
  }
  const tracefs = findMount(mounts, 'tracefs');
  let lockdown: LockdownMode = 'none';
  let lockdownSource: Capabilities['lockdownSource'] = 'assumed-none (no lockdown file)';
  const lockdownFile = '/sys/kernel/security/lockdown';
  if (fs.exists(lockdownFile)) {
    try {
      lockdown = parseLockdown(fs.read(lockdownFile)) ?? 'integrity';
      lockdownSource = 'securityfs';
    } catch {
      lockdown = 'integrity';
      lockdownSource = 'assumed-integrity (unreadable)';
    }
  }
  const capSysAdmin = has(CAP_SYS_ADMIN);
  const tracingDir = tracefs ?? '/sys/kernel/tracing';
  return {
    kernelRelease: release(),
    isRoot: process.getuid?.() === 0,
    capSysAdmin,
    capBpf: has(CAP_BPF) || capSysAdmin,
    capPerfmon: has(CAP_PERFMON) || capSysAdmin,
    btf: fs.exists('/sys/kernel/btf/vmlinux'),
    uprobes: fs.exists('/sys/bus/event_source/devices/uprobe'),
    kprobes: fs.exists('/sys/bus/event_source/devices/kprobe'),
    syscallTracepoints: fs.exists(`${tracingDir}/events/syscalls`),
    tracefsMounted: tracefs !== null,
    lockdown,
    lockdownSource,
    cgroup2Mount: findMount(mounts, 'cgroup2'),
    probeWriteUser: lockdown === 'none' && capSysAdmin,
  };
}

/** What is missing for the agent to run at all (empty when it can). */
export function missingEssentials(c: Capabilities): string[] {
  const missing: string[] = [];
  if (!c.capBpf || !c.capPerfmon) missing.push('privileges: CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); run as root');
  if (!c.btf) missing.push('kernel BTF (/sys/kernel/btf/vmlinux; CONFIG_DEBUG_INFO_BTF=y) for CO-RE');
  return missing;
}

/** Lines for the start-up report and `doctor`. */
export function describeCapabilities(c: Capabilities): string[] {
  const yes = (b: boolean): string => (b ? 'yes' : 'no');
  return [
    `kernel ${c.kernelRelease}`,
    `privileges: root=${yes(c.isRoot)} CAP_SYS_ADMIN=${yes(c.capSysAdmin)} CAP_BPF=${yes(c.capBpf)} CAP_PERFMON=${yes(c.capPerfmon)}`,
    `BTF: ${yes(c.btf)}   uprobes: ${yes(c.uprobes)}   kprobes: ${yes(c.kprobes)}   syscall tracepoints: ${yes(c.syscallTracepoints)}`,
    `lockdown: ${c.lockdown} (${c.lockdownSource})   bpf_probe_write_user: ${c.probeWriteUser ? 'allowed' : 'forbidden'}`,
    `cgroup v2: ${c.cgroup2Mount ?? 'not mounted'}`,
  ];
}
