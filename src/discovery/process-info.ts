/**
 * What the agent knows about one process, read from /proc. Paths are opened through
 * /proc/<pid>/exe so binaries in other mount namespaces (containers) are reachable as-is.
 */
import { closeSync, openSync, readFileSync, readSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { parseContainerId } from './container';

export interface ProcessInfo {
  /** Host pid (tgid). */
  readonly pid: number;
  /** Executable path as the process sees it (may be inside a container's filesystem). */
  readonly exePath: string;
  /** A path the agent can open to read the same executable: /proc/<pid>/exe. */
  readonly exeOpenPath: string;
  readonly exeName: string;
  /**
   * Identifies the executable's content, so one binary run by many processes is inspected once:
   * dev:inode on the host; in a container, size + a hash of its first and last 64 KiB (each
   * container sees an image's file through its own overlay mount, with its own st_dev).
   */
  readonly exeKey: string;
  readonly cmdline: readonly string[];
  /** Only the environment variables the agent uses (OTEL_*). */
  readonly env: Readonly<Record<string, string>>;
  /** Start time in clock ticks since boot (field 22 of /proc/<pid>/stat). */
  readonly startTicks: number;
  /** The container's id (64 hex) from the cgroup path, when the process runs in a container. */
  readonly containerId?: string;
}

const SAMPLE = 64 * 1024;

/** size:sha256(first 64 KiB + last 64 KiB) of an open-able file: the same across overlay mounts of one image. */
export function contentKey(path: string, st: Pick<Stats, 'size'>): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(SAMPLE, st.size));
    h.update(buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)));
    if (st.size > SAMPLE) h.update(buf.subarray(0, readSync(fd, buf, 0, buf.length, Math.max(SAMPLE, st.size - SAMPLE))));
  } finally {
    closeSync(fd);
  }
  return `content:${st.size}:${h.digest('hex').slice(0, 32)}`;
}

let root = '/proc';

/** Where the proc filesystem is read (setting `proc_root`; tests point it at a prepared tree). */
export function procRoot(): string {
  return root;
}

/** Sets procRoot() for the whole process (the wiring does it once, from the settings). */
export function setProcRoot(dir: string | undefined): void {
  root = dir ?? '/proc';
}

function parseEnviron(raw: Buffer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of raw.toString('utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const key = entry.slice(0, eq);
    if (key.startsWith('OTEL_')) env[key] = entry.slice(eq + 1);
  }
  return env;
}

export function parseStatStartTicks(stat: string): number {
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field 22 is rest[19].
  return Number(rest[19] ?? 0);
}

/** Field 4 of /proc/<pid>/stat (the parent's pid), or null when the process is gone. */
export function readPpid(pid: number): number | null {
  try {
    const stat = readFileSync(`${procRoot()}/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : null;
  } catch {
    return null;
  }
}

/** Returns null when the process is gone or not readable (it may exit at any moment). */
export function readProcessInfo(pid: number): ProcessInfo | null {
  const dir = `${procRoot()}/${pid}`;
  try {
    const exePath = readlinkSync(`${dir}/exe`).replace(/ \(deleted\)$/, '');
    const st = statSync(`${dir}/exe`);
    const cmdline = readFileSync(`${dir}/cmdline`).toString('utf8').split('\0').filter((s) => s.length > 0);
    let env: Record<string, string> = {};
    try {
      env = parseEnviron(readFileSync(`${dir}/environ`));
    } catch {
      // environ can be unreadable for some processes; service.name then falls back.
    }
    const startTicks = parseStatStartTicks(readFileSync(`${dir}/stat`, 'utf8'));
    let containerId: string | undefined;
    try {
      containerId = parseContainerId(readFileSync(`${dir}/cgroup`, 'utf8'));
    } catch {
      // no cgroup file (very old kernels): not in a known container
    }
    return {
      pid,
      exePath,
      exeOpenPath: `${dir}/exe`,
      exeName: basename(exePath),
      exeKey: containerId ? contentKey(`${dir}/exe`, st) : `${st.dev}:${st.ino}`,
      cmdline,
      env,
      startTicks,
      ...(containerId ? { containerId } : {}),
    };
  } catch {
    return null;
  }
}
