/**
 * Processes the agent must never trace, whatever the selection says: itself, any other spanbridge
 * agent (node running the agent's entry script), and the Collector it exports to (tracing the
 * Collector would feed the agent's own export traffic back into it).
 *
 * The Collector is found by the port of each OTLP endpoint that names a local address:
 *   - a process in the agent's network namespace listening on that port (a Collector on the host);
 *   - a process in a container whose engine monitor listens on that port for it (podman's conmon
 *     holds published ports: `-p 4318:4318` makes conmon `-c <id>` the host-side listener), so a
 *     containerised Collector is recognised through its container id.
 * A Collector that opens its port only after its exec has been seen is caught by the watcher's
 * re-checks shortly after exec (process-watcher.ts).
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { basename, resolve } from 'node:path';
import { listeningPortsOf } from './listening-ports';
import { procRoot, type ProcessInfo } from './process-info';

export interface SelfExclusionOptions {
  /** The agent's own pid. */
  readonly selfPid: number;
  /** Absolute path of the agent's entry script (dist/src/cli/main.js); other agents run it too. */
  readonly agentEntry?: string;
  /** OTLP endpoints the agent exports to (URLs); those on a local address name the Collector. */
  readonly exportEndpoints?: readonly string[];
  /** Pids excluded by the caller. */
  readonly extraPids?: readonly number[];
}

const LOCAL_NAMES = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost', '0.0.0.0', '::', '::1']);

/** Addresses of this host's interfaces (a Collector on the host may be addressed by one of them). */
function ownAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

/** The port of an endpoint URL whose host is this machine (loopback or an own address), else undefined. */
export function localEndpointPort(url: string, own: ReadonlySet<string> = ownAddresses()): number | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const local = LOCAL_NAMES.has(host) || /^127\./.test(host) || own.has(host);
  if (!local) return undefined;
  if (u.port) return Number(u.port);
  return u.protocol === 'https:' ? 443 : 80;
}

/** True when the process is node running the agent's entry script (another spanbridge agent). */
export function isAgentCommand(cmdline: readonly string[], cwd: string, agentEntry: string | undefined): boolean {
  if (cmdline.length < 2 || !/^node(js)?(\d+(\.\d+)*)?$/.test(basename(cmdline[0]))) return false;
  for (const arg of cmdline.slice(1)) {
    if (arg.startsWith('-')) continue;
    // The first non-option argument is the script node runs.
    const script = resolve(cwd, arg);
    return (agentEntry !== undefined && script === agentEntry) || /\/spanbridge(\/dist\/src\/cli\/main\.js)?$/.test(script);
  }
  return false;
}

/** The container id a podman monitor process (conmon `-c <id>`) watches, or undefined. */
export function conmonContainerId(cmdline: readonly string[]): string | undefined {
  if (cmdline.length === 0 || basename(cmdline[0]) !== 'conmon') return undefined;
  const i = cmdline.indexOf('-c');
  const id = i >= 0 ? cmdline[i + 1] : cmdline.find((a) => a.startsWith('--cid='))?.slice(6);
  return id && /^[0-9a-f]{64}$/.test(id) ? id : undefined;
}

function ppidOf(pid: number): number {
  try {
    const stat = readFileSync(`${procRoot()}/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? 0);
  } catch {
    return 0;
  }
}

function cmdlineOf(pid: number): string[] {
  try {
    return readFileSync(`${procRoot()}/${pid}/cmdline`, 'utf8').split('\0').filter((s) => s.length > 0);
  } catch {
    return [];
  }
}

function linkOf(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

/** Why a process is never traced: its kind (the metric label) and the sentence the log gives. */
export interface Exclusion {
  readonly kind: 'self' | 'configuration' | 'agent' | 'collector';
  readonly why: string;
}

export class SelfExclusion {
  private readonly collectorPorts: ReadonlySet<number>;
  private readonly extraPids: ReadonlySet<number>;
  private readonly ownNetns: string;

  constructor(private readonly options: SelfExclusionOptions) {
    const own = ownAddresses();
    const ports = new Set<number>();
    for (const e of options.exportEndpoints ?? []) {
      const p = localEndpointPort(e, own);
      if (p !== undefined) ports.add(p);
    }
    this.collectorPorts = ports;
    this.extraPids = new Set(options.extraPids ?? []);
    this.ownNetns = linkOf(`${procRoot()}/${options.selfPid}/ns/net`);
  }

  /** The ports that identify the Collector (local OTLP endpoints). */
  get ports(): number[] {
    return [...this.collectorPorts];
  }

  /** Why this process must not be traced, or null. Cheap: only this process and its ancestors are read. */
  reason(proc: Pick<ProcessInfo, 'pid' | 'cmdline' | 'containerId'>): Exclusion | null {
    const { pid } = proc;
    if (pid === this.options.selfPid) return { kind: 'self', why: 'it is this agent' };
    if (this.extraPids.has(pid)) return { kind: 'configuration', why: 'excluded by configuration' };
    if (isAgentCommand(proc.cmdline, linkOf(`${procRoot()}/${pid}/cwd`) || '/', this.options.agentEntry)) {
      return { kind: 'agent', why: 'it is a spanbridge agent' };
    }
    if (this.collectorPorts.size === 0) return null;
    if (linkOf(`${procRoot()}/${pid}/ns/net`) === this.ownNetns) {
      const port = this.listensOnCollectorPort(pid);
      if (port !== undefined) return { kind: 'collector', why: `it is the Collector this agent exports to (listens on port ${port})` };
    }
    if (proc.containerId) {
      // Walk up to the container's monitor (conmon is the parent of the container's first process).
      for (let p = ppidOf(pid), hops = 0; p > 1 && hops < 8; p = ppidOf(p), hops++) {
        const cid = conmonContainerId(cmdlineOf(p));
        if (cid === undefined) continue;
        if (cid !== proc.containerId) break;
        const port = this.listensOnCollectorPort(p);
        if (port !== undefined) {
          return { kind: 'collector', why: `it is the Collector this agent exports to (its container ${cid.slice(0, 12)} publishes port ${port})` };
        }
        break;
      }
    }
    return null;
  }

  private listensOnCollectorPort(pid: number): number | undefined {
    for (const p of listeningPortsOf(pid)) if (this.collectorPorts.has(p)) return p;
    return undefined;
  }
}
