/**
 * What a connection put on the wire, segment by segment: a Python AF_PACKET socket on `lo` (root)
 * records the payload length of every outgoing TCP/IPv4 segment to one port. Tests use it where
 * segmentation is the behaviour (the sk_msg program's inserted lines must not cut a send into
 * several segments).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitFor } from './processes';

/** stdin closed or "stop" -> prints a JSON array of payload lengths, in order, and exits. */
const SNIFFER = `
import json, select, socket, struct, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind(("lo", 0))
PACKET_OUTGOING = 4
out = []
print("ready", flush=True)
while True:
    r, _, _ = select.select([s, sys.stdin], [], [])
    if sys.stdin in r:
        line = sys.stdin.readline()
        if not line or line.strip() == "stop":
            break
    if s in r:
        pkt, addr = s.recvfrom(65536)
        if addr[2] != PACKET_OUTGOING or len(pkt) < 14 + 20:
            continue
        if struct.unpack("!H", pkt[12:14])[0] != 0x0800:
            continue
        ip = pkt[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6:
            continue
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:]
        dport = struct.unpack("!H", tcp[2:4])[0]
        doff = (tcp[12] >> 4) * 4
        payload = total - ihl - doff
        if dport == port and payload > 0:
            out.append(payload)
print(json.dumps(out), flush=True)
`;

export interface SegmentCapture {
  /** Payload lengths of the segments sent to the port since the capture started. */
  stop(): Promise<number[]>;
}

/** Starts capturing; resolves once the socket is bound (segments sent after that are seen). */
export async function captureSegments(dir: string, port: number): Promise<SegmentCapture> {
  const file = path.join(dir, 'segments.py');
  writeFileSync(file, SNIFFER);
  const proc: ChildProcess = spawn('python3', [file, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await waitFor('segment capture ready', () => (out.startsWith('ready\n') ? true : err ? Promise.reject(new Error(err)) : undefined), 10_000);
  return {
    async stop(): Promise<number[]> {
      proc.stdin!.end('stop\n');
      const line = await waitFor('segment capture result', () => out.split('\n')[1] || (err ? Promise.reject(new Error(err)) : undefined), 10_000);
      return JSON.parse(line) as number[];
    },
  };
}
