/**
 * Which processes to trace. A process matches when ANY selector matches it (a union), so
 * `--pid 7 --exe '*\/api'` traces pid 7 and every process whose executable matches.
 */
import { containerMatches } from './container';
import type { ProcessInfo } from './process-info';

export interface Selection {
  readonly pids: readonly number[];
  /** Glob patterns matched against the executable path as the process sees it. */
  readonly exeGlobs: readonly string[];
  /** TCP ports: a process with a listening socket on one of them matches. */
  readonly openPorts: readonly number[];
  /**
   * service.name per selector, keyed by the match reason it produces (`exe *\/api`, `port 8080`,
   * `pid 7`): the config file's `selections[].service_name`. A process's own OTEL_SERVICE_NAME wins.
   */
  readonly serviceNames?: Readonly<Record<string, string>>;
  /** Container id prefixes (lowercase hex): every process in a matching container. */
  readonly containerIds?: readonly string[];
}

export function isEmptySelection(s: Selection): boolean {
  return s.pids.length === 0 && s.exeGlobs.length === 0 && s.openPorts.length === 0 && (s.containerIds?.length ?? 0) === 0;
}

/**
 * Glob to RegExp: `*` matches within a path segment, `**` across segments, `?` one character,
 * `[...]` a class. A pattern without a '/' matches the executable's base name.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) {
        re += '\\[';
      } else {
        let cls = glob.slice(i + 1, close);
        if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else {
      re += c.replace(/[.+^${}()|\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

export function exeMatches(glob: string, exePath: string): boolean {
  const target = glob.includes('/') ? exePath : exePath.slice(exePath.lastIndexOf('/') + 1);
  return globToRegExp(glob).test(target);
}

export type MatchReason = `pid ${number}` | `exe ${string}` | `port ${number}` | `container ${string}`;

/** The configured service name for processes selected by `reason`, if any. */
export function serviceNameFor(s: Selection, reason: MatchReason): string | undefined {
  return s.serviceNames?.[reason];
}

/**
 * Whether process `pid` could match before anything of it is read: a selection of pids alone
 * matches no other pid, so the exec of an unrelated process (every exec on the host reaches the
 * watcher) costs no reads of /proc.
 */
export function pidCanMatch(s: Selection, pid: number): boolean {
  if (s.exeGlobs.length > 0 || s.openPorts.length > 0 || (s.containerIds?.length ?? 0) > 0) return true;
  return s.pids.includes(pid);
}

/** Why a process is selected, or null. `listeningPorts` is that process's listening TCP ports. */
export function matchProcess(
  s: Selection,
  proc: Pick<ProcessInfo, 'pid' | 'exePath' | 'containerId'>,
  listeningPorts: ReadonlySet<number>,
): MatchReason | null {
  if (s.pids.includes(proc.pid)) return `pid ${proc.pid}`;
  for (const g of s.exeGlobs) if (exeMatches(g, proc.exePath)) return `exe ${g}`;
  for (const p of s.openPorts) if (listeningPorts.has(p)) return `port ${p}`;
  for (const c of s.containerIds ?? []) if (containerMatches(c, proc.containerId)) return `container ${c}`;
  return null;
}
