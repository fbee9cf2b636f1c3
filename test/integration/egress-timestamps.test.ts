/**
 * Written bytes are stamped when their syscall begins (bpf/sys_http/sys_http.h, sys_http_data_event.ts_ns):
 * the peer may read them before the write returns (another CPU, a blocked writer), never before
 * it began. So a SERVER span, which ends at its response's last write, ends no later than its
 * client saw that write's bytes, and the client's span, which ends after it read them, covers the
 * server's (issue 13 item 7). A write that returns long after the peer read its first bytes makes
 * the difference visible every time: Python's http.server sends a 64 MiB body with one blocking
 * send, and the client stops reading for a while once the body's first bytes are in.
 */
import net from 'node:net';
import { SystemClock } from '../../src/time/clock';
import { observeOnlyArgs, startServers, type Lang, type LangServer } from './helpers/any-language';
import { requireRootAndBpf } from './helpers/privileges';
import { startAgent, waitFor, type AgentProcess } from './helpers/processes';

const BODY = 64 << 20; // beyond what loopback buffers while the client does not read
const PAUSE_MS = 1_000;

interface Received {
  /** CLOCK_MONOTONIC when the first body bytes had arrived (the body is the response's last write). */
  firstBodyNs: bigint;
  /** ... and when the last one had. */
  lastNs: bigint;
  bodyBytes: number;
}

/** GET `path` on a fresh connection; stops reading for PAUSE_MS once the first body bytes are in. */
function readSlowly(port: number, path: string): Promise<Received> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let head = Buffer.alloc(0);
    let headEnd = -1;
    let bodyBytes = 0;
    let firstBodyNs = 0n;
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      const now = process.hrtime.bigint();
      if (headEnd < 0) {
        head = Buffer.concat([head, d]);
        headEnd = head.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        bodyBytes = head.length - (headEnd + 4);
      } else {
        bodyBytes += d.length;
      }
      if (bodyBytes > 0 && firstBodyNs === 0n) {
        firstBodyNs = now;
        s.pause();
        setTimeout(() => s.resume(), PAUSE_MS);
      }
      if (bodyBytes >= BODY) {
        s.destroy();
        resolve({ firstBodyNs, lastNs: now, bodyBytes });
      }
    });
    s.on('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
  });
}

describe('egress timestamps: a SERVER span ends no later than its client saw the response', () => {
  const servers = new Map<Lang, LangServer>();
  let agent: AgentProcess;

  beforeAll(async () => {
    requireRootAndBpf();
    await startServers(servers, ['python'], () => 'py-bytes');
    agent = await startAgent([...observeOnlyArgs([servers.get('python')!.proc.pid]), '--export', 'none']);
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([...servers.values()].map((s) => s.proc.stop()));
  });

  it('a 64 MiB body sent with one blocking send to a client that pauses: the span ends before the client had the body', async () => {
    const clock = new SystemClock(); // the agent's conversion: CLOCK_MONOTONIC -> Unix ns
    const got = await readSlowly(servers.get('python')!.port, `/bytes?n=${BODY}`);
    expect(got.bodyBytes).toBe(BODY);
    const span = await waitFor('the /bytes SERVER span', () => agent.spans().find((s) => s.kind === 'SERVER' && s.attributes['url.path'] === '/bytes'), 30_000);
    expect(span.attributes['http.response.status_code']).toBe(200);
    const end = BigInt(span.endTimeUnixNano);
    // The send began before its first bytes reached the client; it returned only after the client
    // resumed reading, PAUSE_MS later. Half the pause absorbs the two processes' clock sampling.
    const slack = BigInt(PAUSE_MS / 2) * 1_000_000n;
    expect({ endBeforeFirstBodyBytes: end <= clock.toUnixNano(got.firstBodyNs) + slack }).toEqual({ endBeforeFirstBodyBytes: true });
    expect(end).toBeGreaterThanOrEqual(BigInt(span.startTimeUnixNano));
    expect(end).toBeLessThanOrEqual(clock.toUnixNano(got.lastNs));
  }, 120_000);
});
