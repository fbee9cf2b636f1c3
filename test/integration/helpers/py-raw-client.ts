/**
 * A traced-process stand-in for socket-level injection tests: a Python client driven over stdin
 * that makes urllib GETs or writes raw bytes with one send call per chunk (so tests control exactly
 * what each send carries: split request lines, pipelined requests, garbage).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitFor } from './processes';

/**
 * stdin: one JSON command per line; stdout: one JSON answer per line.
 *   {"kind":"get","url":U,"headers":{...}} -> {"body": str}
 *   {"kind":"raw","port":P,"chunks":[b64...],"gap_ms":N,"read":bool,"half_close":bool} -> {"data": b64}
 *     (sends each chunk with its own send call, then half-closes unless half_close is false;
 *     reads until EOF if read)
 */
const PY_RAW_CLIENT = `
import base64, json, socket, sys, time, urllib.request
print("ready", flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    try:
        if cmd["kind"] == "get":
            req = urllib.request.Request(cmd["url"], headers=cmd.get("headers", {}))
            with urllib.request.urlopen(req, timeout=10) as r:
                print(json.dumps({"body": r.read().decode("latin1")}), flush=True)
        else:
            s = socket.create_connection(("127.0.0.1", cmd["port"]), timeout=10)
            for i, c in enumerate(cmd["chunks"]):
                if i and cmd.get("gap_ms"):
                    time.sleep(cmd["gap_ms"] / 1000)
                s.sendall(base64.b64decode(c))
            data = b""
            if cmd.get("read", True):
                if cmd.get("half_close", True):
                    s.shutdown(socket.SHUT_WR)
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    data += b
            s.close()
            print(json.dumps({"data": base64.b64encode(data).decode()}), flush=True)
    except Exception as e:
        print(json.dumps({"error": repr(e)}), flush=True)
`;

export interface PyClient {
  readonly pid: number;
  send(cmd: object): Promise<{ body?: string; data?: string; error?: string }>;
  stop(): Promise<void>;
}

export function startPyClient(dir: string): PyClient {
  const file = path.join(dir, 'bad-client.py');
  writeFileSync(file, PY_RAW_CLIENT);
  const proc: ChildProcess = spawn('python3', [file], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => proc.on('close', () => resolve()));
  let answered = 0;
  return {
    pid: proc.pid ?? -1,
    async send(cmd) {
      if (answered === 0) await waitFor('python ready', () => out.includes('ready'), 15_000);
      proc.stdin?.write(`${JSON.stringify(cmd)}\n`);
      const want = ++answered;
      const line = await waitFor(
        `answer ${want}`,
        () => {
          if (proc.exitCode !== null) throw new Error(`python client exited:\n${err}`);
          return out.split('\n').filter((l) => l.startsWith('{'))[want - 1];
        },
        30_000,
      );
      return JSON.parse(line) as { body?: string; data?: string; error?: string };
    },
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

export const b64 = (b: Buffer | string): string => Buffer.from(b).toString('base64');
