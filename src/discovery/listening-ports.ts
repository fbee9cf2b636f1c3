/**
 * Listening TCP ports per process: /proc/net/tcp{,6} (state 0A = LISTEN) gives socket inodes and
 * ports; /proc/<pid>/fd links "socket:[inode]" tie them to processes. Read in the network
 * namespace of the given process, so containers with their own namespace work too.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { procRoot } from './process-info';

/** inode -> port, for sockets in LISTEN state, from /proc/net/tcp-format text. */
export function parseListeningSockets(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i].trim().split(/\s+/);
    if (f.length < 10 || f[3] !== '0A') continue;
    const local = f[1];
    const port = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    out.set(f[9], port);
  }
  return out;
}

function listeningInodes(pid: number): Map<string, number> {
  const all = new Map<string, number>();
  for (const file of ['tcp', 'tcp6']) {
    try {
      for (const [inode, port] of parseListeningSockets(readFileSync(`${procRoot()}/${pid}/net/${file}`, 'utf8'))) {
        all.set(inode, port);
      }
    } catch {
      // no IPv6, or the process is gone
    }
  }
  return all;
}

/** Listening ports of one process (empty when it has none or is gone). */
export function listeningPortsOf(pid: number, inodeCache?: Map<string, Map<string, number>>): Set<number> {
  const ports = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`${procRoot()}/${pid}/fd`);
  } catch {
    return ports;
  }
  let netnsKey = '';
  try {
    netnsKey = readlinkSync(`${procRoot()}/${pid}/ns/net`);
  } catch {
    netnsKey = `pid:${pid}`;
  }
  let inodes = inodeCache?.get(netnsKey);
  if (!inodes) {
    inodes = listeningInodes(pid);
    inodeCache?.set(netnsKey, inodes);
  }
  if (inodes.size === 0) return ports;
  for (const fd of fds) {
    let link: string;
    try {
      link = readlinkSync(`${procRoot()}/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (!link.startsWith('socket:[')) continue;
    const port = inodes.get(link.slice(8, -1));
    if (port !== undefined) ports.add(port);
  }
  return ports;
}
