/**
 * Kernel filesystems a BPF agent needs and that this kind of machine does not mount at boot:
 * bpffs (pinning), tracefs (libbpf reads tracepoint ids from it; tracepoint attach fails without
 * it) and securityfs (only to read the lockdown mode; optional). We mount each one only if it is
 * not already mounted, and report what happened instead of throwing, so the caller (agent start,
 * `doctor`, tests) decides what is fatal. No koffi here.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

export interface KernelFs {
  readonly fstype: string;
  readonly target: string;
  /** The agent cannot work without it (securityfs is informational only). */
  readonly required: boolean;
  /** mount -o options. */
  readonly options?: string;
}

export const KERNEL_FILESYSTEMS: readonly KernelFs[] = [
  // A bpffs the agent mounts is root-only: its pins hold live trace context (docs/data.md).
  { fstype: 'bpf', target: '/sys/fs/bpf', required: true, options: 'mode=0700' },
  { fstype: 'tracefs', target: '/sys/kernel/tracing', required: true },
  { fstype: 'securityfs', target: '/sys/kernel/security', required: false },
];

export type MountOutcome =
  | { readonly fs: KernelFs; readonly status: 'already-mounted' }
  | { readonly fs: KernelFs; readonly status: 'mounted' }
  | { readonly fs: KernelFs; readonly status: 'failed'; readonly reason: string };

export interface MountDeps {
  /** Contents of /proc/self/mounts. */
  readonly readMounts?: () => string;
  /** Runs `mount -t <fstype> <fstype> <target>`; throws with a readable message on failure. */
  readonly mount?: (fs: KernelFs) => void;
}

/** Mount points in /proc/self/mounts, with their fs type (octal escapes like \040 decoded). */
export function parseMounts(text: string): { target: string; fstype: string }[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const fields = line.split(' ');
      const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
      return { target: unescape(fields[1] ?? ''), fstype: fields[2] ?? '' };
    });
}

function defaultMount(fs: KernelFs): void {
  try {
    execFileSync('mount', ['-t', fs.fstype, ...(fs.options ? ['-o', fs.options] : []), fs.fstype, fs.target], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message?: string };
    const stderr = e.stderr?.toString().trim();
    throw new Error(stderr || e.message || String(err));
  }
}

/**
 * Mounts whatever of bpffs, tracefs and securityfs is missing. Never throws; check the outcome
 * (see `missingRequiredFilesystems`).
 */
export function ensureKernelFilesystems(deps: MountDeps = {}, wanted: readonly KernelFs[] = KERNEL_FILESYSTEMS): MountOutcome[] {
  const readMounts = deps.readMounts ?? (() => readFileSync('/proc/self/mounts', 'utf8'));
  const mount = deps.mount ?? defaultMount;
  const isMounted = (fs: KernelFs): boolean => {
    try {
      return parseMounts(readMounts()).some((m) => m.target === fs.target && m.fstype === fs.fstype);
    } catch {
      return false;
    }
  };
  return wanted.map((fs): MountOutcome => {
    if (isMounted(fs)) return { fs, status: 'already-mounted' };
    try {
      mount(fs);
    } catch (err) {
      return { fs, status: 'failed', reason: `mount -t ${fs.fstype} ${fs.target}: ${err instanceof Error ? err.message : String(err)}` };
    }
    // mount(8) succeeded; confirm the kernel agrees (a race with another mounter is fine too).
    return isMounted(fs)
      ? { fs, status: 'mounted' }
      : { fs, status: 'failed', reason: `mount -t ${fs.fstype} ${fs.target}: not listed in /proc/self/mounts afterwards` };
  });
}

/** Where the agent mounts cgroup v2 when nothing has (a cgroup2 mount shows the one hierarchy). */
export const CGROUP2_FALLBACK_TARGET = '/run/spanbridge/cgroup2';

export type Cgroup2Outcome =
  | { readonly status: 'already-mounted' | 'mounted'; readonly path: string }
  | { readonly status: 'failed'; readonly reason: string };

/**
 * A cgroup v2 mount point, for attaching sock_ops programs at the hierarchy's root (every process
 * is in it or below it). Uses an existing cgroup2 mount (e.g. /sys/fs/cgroup/unified on hybrid
 * systems); else mounts one at `target`. Never throws.
 */
export function ensureCgroup2(
  deps: MountDeps & { readonly mkdir?: (dir: string) => void } = {},
  target: string = CGROUP2_FALLBACK_TARGET,
): Cgroup2Outcome {
  const readMounts = deps.readMounts ?? (() => readFileSync('/proc/self/mounts', 'utf8'));
  const find = (): string | undefined => {
    try {
      return parseMounts(readMounts()).find((m) => m.fstype === 'cgroup2')?.target;
    } catch {
      return undefined;
    }
  };
  const existing = find();
  if (existing) return { status: 'already-mounted', path: existing };
  const fs: KernelFs = { fstype: 'cgroup2', target, required: false };
  try {
    (deps.mkdir ?? ((d: string) => mkdirSync(d, { recursive: true, mode: 0o700 })))(target);
    (deps.mount ?? defaultMount)(fs);
  } catch (err) {
    return { status: 'failed', reason: `mount -t cgroup2 ${target}: ${err instanceof Error ? err.message : String(err)}` };
  }
  const now = find();
  return now ? { status: 'mounted', path: now } : { status: 'failed', reason: `mount -t cgroup2 ${target}: not listed in /proc/self/mounts afterwards` };
}

/** The failed outcomes of filesystems the agent cannot do without. */
export function missingRequiredFilesystems(outcomes: readonly MountOutcome[]): MountOutcome[] {
  return outcomes.filter((o) => o.status === 'failed' && o.fs.required);
}
