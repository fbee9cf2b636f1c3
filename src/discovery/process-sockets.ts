/**
 * A process's open TCP connections, from its fd table and /proc/<pid>/net/tcp{,6}: what the
 * kernel probes did not see being opened because it happened before the process was selected
 * (warm keep-alive pools, a running server's accepted connections). The role is told by the
 * local port: one the process listens on means an accepted (server) connection, any other an
 * outgoing (client) one.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** What `openConnections` reads; injectable for tests. */
export interface ProcSockets {
  /** fd numbers and their link targets (e.g. "socket:[1234]"). */
  readonly fds: (pid: number) => { fd: number; target: string }[];
  /** Contents of /proc/<pid>/net/tcp and tcp6 (the process's network namespace). */
  readonly tcpTables: (pid: number) => string[];
}

export const procSockets: ProcSockets = {
  fds: (pid) =>
    readdirSync(`/proc/${pid}/fd`).flatMap((name) => {
      try {
        return [{ fd: Number(name), target: readlinkSync(`/proc/${pid}/fd/${name}`) }];
      } catch {
        return []; // closed meanwhile
      }
    }),
  tcpTables: (pid) =>
    ['tcp', 'tcp6'].flatMap((t) => {
      try {
        return [readFileSync(`/proc/${pid}/net/${t}`, 'utf8')];
      } catch {
        return [];
      }
    }),
};

export interface OpenConnection {
  readonly fd: number;
  /** The socket's inode (socket:[inode]): the kernel checks the fd still holds this socket. */
  readonly inode: bigint;
  readonly role: 'client' | 'server';
}

const TCP_ESTABLISHED = '01';
const TCP_LISTEN = '0A';

/** The established TCP connections among `pid`'s fds. Throws when the process is gone. */
export function openConnections(pid: number, proc: ProcSockets = procSockets): OpenConnection[] {
  const established = new Map<string, number>(); // inode -> local port
  const listening = new Set<number>();
  for (const table of proc.tcpTables(pid)) {
    for (const line of table.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const localPort = parseInt(f[1].split(':').pop() ?? '', 16);
      if (f[3] === TCP_LISTEN) listening.add(localPort);
      else if (f[3] === TCP_ESTABLISHED) established.set(f[9], localPort);
    }
  }
  const out: OpenConnection[] = [];
  for (const { fd, target } of proc.fds(pid)) {
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (!m) continue;
    const port = established.get(m[1]);
    if (port === undefined) continue;
    out.push({ fd, inode: BigInt(m[1]), role: listening.has(port) ? 'server' : 'client' });
  }
  return out;
}
