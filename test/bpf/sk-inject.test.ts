/**
 * bpf/sk_inject.bpf.o against the real kernel through the libbpf binding (attachSkMsg,
 * attachCgroup), without any tracer: this test process selects itself, connects to its own TCP
 * server, leaves pending contexts for its main thread in the pinned map exactly as a tracer would
 * (bpf/common/sk_inject.h), and checks what the server receives and the outcome the program reports.
 *
 * Without root or /sys/kernel/btf/vmlinux this suite FAILS with the reason, unless
 * SPANBRIDGE_ALLOW_SKIP=1 (then it is skipped).
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createLibbpfBackend } from '../../src/bpf/libbpf';
import { ensureCgroup2, ensureKernelFilesystems } from '../../src/bpf/mounts';
import type { BpfLink, BpfObject } from '../../src/bpf/types';
import { SK_INJECT_OUTCOME, SK_INJECT_PENDING } from '../../src/events/structs.generated';

jest.setTimeout(60_000);

const OBJ = join(__dirname, '..', '..', 'build', 'bpf', 'sk_inject.bpf.o');
const F_HEADERS_CHECKED = 1;
const F_TRACESTATE = 2;
const F_SKIPS_ONLY = 8;

function precondition(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'needs kernel BTF';
  if (!existsSync(OBJ)) return `${OBJ} missing: run make bpf`;
  return undefined;
}
const problem = precondition();
const suite = problem && process.env.SPANBRIDGE_ALLOW_SKIP === '1' ? describe.skip : describe;

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const SPAN = 'b7ad6b7169203331';

/** This thread's key: Node's main thread has tid == pid. */
function threadKey(): Buffer {
  const k = Buffer.alloc(8);
  k.writeBigUInt64LE((BigInt(process.pid) << 32n) | BigInt(process.pid));
  return k;
}

function pending(opts: { cookie: bigint; flags?: number; ageNs?: bigint; extra?: { off: number; spanId: string }[] }): Buffer {
  const v = Buffer.alloc(SK_INJECT_PENDING.size);
  v.writeBigUInt64LE(process.hrtime.bigint() - (opts.ageNs ?? 0n), SK_INJECT_PENDING.fields.ts_ns.offset);
  v.writeBigUInt64LE(opts.cookie, SK_INJECT_PENDING.fields.cookie.offset);
  const ctx = SK_INJECT_PENDING.fields.ctx.offset; // struct trace_context: trace_id[16], span_id[8], flags
  Buffer.from(TRACE, 'hex').copy(v, ctx);
  Buffer.from(SPAN, 'hex').copy(v, ctx + 16);
  v.writeUInt8(1, ctx + 24);
  v.writeUInt8(opts.flags ?? 0, SK_INJECT_PENDING.fields.flags.offset);
  const extra = opts.extra ?? [];
  v.writeUInt8(extra.length, SK_INJECT_PENDING.fields.extra.offset);
  extra.forEach((e, k) => {
    v.writeUInt16LE(e.off, SK_INJECT_PENDING.fields.extra_off.offset + 2 * k);
    Buffer.from(e.spanId, 'hex').copy(v, SK_INJECT_PENDING.fields.extra_span_ids.offset + 8 * k);
  });
  return v;
}

suite('sk_inject.bpf.o on the real kernel (libbpf attachSkMsg + attachCgroup)', () => {
  let obj: BpfObject;
  let links: BpfLink[] = [];
  let server: net.Server;
  let port: number;
  let received: Buffer[] = [];
  let conn: net.Socket;

  beforeAll(async () => {
    if (problem) throw new Error(`sk_inject BPF test: ${problem}`);
    ensureKernelFilesystems();
    const cg = ensureCgroup2();
    if (cg.status === 'failed') throw new Error(cg.reason);
    obj = createLibbpfBackend().open(OBJ);
    obj.load();
    links = [obj.program('sk_inject_msg').attachSkMsg!('sk_inject_socks'), obj.program('sk_inject_sockops').attachCgroup!(cg.path)];
    const tgid = Buffer.alloc(4);
    tgid.writeUInt32LE(process.pid);
    obj.map('sk_inject_tgids').update(tgid, Buffer.from([1]));
    server = net.createServer((s) => s.on('data', (d) => received.push(d)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as net.AddressInfo).port;
    conn = net.connect(port, '127.0.0.1');
    await new Promise<void>((r) => conn.on('connect', () => r()));
  });

  afterAll(async () => {
    conn?.destroy();
    await new Promise((r) => server?.close(r));
    for (const l of links.reverse()) l.destroy();
    await obj?.close();
  });

  const counter = (name: keyof typeof SK_INJECT_OUTCOME): number => {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(SK_INJECT_OUTCOME[name]);
    return (obj.map('sk_inject_counters').lookupPerCpu(k) ?? []).reduce((s, b) => s + Number(b.readBigUInt64LE(0)), 0);
  };

  const outcome = (cookie: bigint): number | null => {
    const k = Buffer.alloc(16);
    k.writeUInt32LE(process.pid, 0);
    k.writeBigUInt64LE(cookie, 8);
    const v = obj.map('spanbridge_sk_inject_result_v1').lookup(k);
    return v ? v.readUInt32LE(8) : null;
  };

  /** Writes `data` (each piece of an array with its own send, 20 ms apart) and returns what the server received. */
  const exchange = async (data: Buffer | string | string[]): Promise<string> => {
    received = [];
    const pieces = Array.isArray(data) ? data : [data];
    const want = pieces.reduce((n, p) => n + Buffer.byteLength(p), 0);
    for (const [i, p] of pieces.entries()) {
      if (i) await new Promise((r) => setTimeout(r, 20));
      conn.write(p);
    }
    const deadline = Date.now() + 5000;
    while (Buffer.concat(received).length < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50)); // anything more that arrives
    return Buffer.concat(received).toString('latin1');
  };

  it('registers the connection of a selected process in the SOCKHASH', () => {
    expect(counter('SK_INJECT_SOCK_ADDED')).toBeGreaterThanOrEqual(1);
  });

  it('inserts the pending context after the request line and reports DONE under the cookie', async () => {
    obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 101n, flags: F_HEADERS_CHECKED }));
    const got = await exchange('GET /x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(got).toBe(`GET /x?y=1 HTTP/1.1\r\ntraceparent: 00-${TRACE}-${SPAN}-01\r\nHost: a\r\n\r\n`);
    expect(outcome(101n)).toBe(SK_INJECT_OUTCOME.SK_INJECT_DONE);
    // taken: left in place for the thread's next request, with ts_ns 0 (none)
    expect(obj.map('spanbridge_sk_inject_pending_v2').lookup(threadKey())?.readBigUInt64LE(SK_INJECT_PENDING.fields.ts_ns.offset) ?? 0n).toBe(0n);
    const req = 'GET /again HTTP/1.1\r\nHost: a\r\n\r\n';
    expect(await exchange(req)).toBe(req); // never used twice
  });

  it('a head whose last header line is short is scanned to its end and injected (owner did not check it)', async () => {
    obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 108n }));
    expect(await exchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n')).toBe(`GET / HTTP/1.1\r\ntraceparent: 00-${TRACE}-${SPAN}-01\r\nHost: a\r\n\r\n`);
    expect(outcome(108n)).toBe(SK_INJECT_OUTCOME.SK_INJECT_DONE);
  });

  it('an owner that reads only skips (SK_INJECT_F_SKIPS_ONLY) gets no outcome for an inserted header, and the skip when one is left alone', async () => {
    const seen = counter('SK_INJECT_DONE');
    obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 109n, flags: F_HEADERS_CHECKED | F_SKIPS_ONLY }));
    expect(await exchange('GET /s HTTP/1.1\r\nHost: a\r\n\r\n')).toBe(`GET /s HTTP/1.1\r\ntraceparent: 00-${TRACE}-${SPAN}-01\r\nHost: a\r\n\r\n`);
    expect(counter('SK_INJECT_DONE')).toBe(seen + 1);
    expect(outcome(109n)).toBeNull();
    obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 110n, flags: F_SKIPS_ONLY }));
    const req = `GET /t HTTP/1.1\r\ntraceparent: 00-${'1'.repeat(32)}-${'2'.repeat(16)}-01\r\n\r\n`;
    expect(await exchange(req)).toBe(req);
    expect(outcome(110n)).toBe(SK_INJECT_OUTCOME.SK_INJECT_SKIP_HAS_TRACEPARENT);
  });

  it('without a pending context nothing changes', async () => {
    const req = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    expect(await exchange(req)).toBe(req);
  });

  it('a request carrying a traceparent (head scanned in the kernel) is left alone', async () => {
    obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 102n }));
    const req = `POST / HTTP/1.0\r\nTraceParent: 00-${'1'.repeat(32)}-${'2'.repeat(16)}-00\r\n\r\nbody`;
    expect(await exchange(req)).toBe(req);
    expect(outcome(102n)).toBe(SK_INJECT_OUTCOME.SK_INJECT_SKIP_HAS_TRACEPARENT);
  });

  it.each([
    ['TLS bytes', 'SK_INJECT_SKIP_NOT_HTTP', Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0])],
    ['lowercase method', 'SK_INJECT_SKIP_NOT_HTTP', 'get / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['HTTP/2 preface', 'SK_INJECT_SKIP_NOT_HTTP', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['no end of request line within the 4 KiB window', 'SK_INJECT_SKIP_LINE_TOO_LONG', `GET /${'a'.repeat(5000)}`],
    ['head not ended within the 4 KiB window', 'SK_INJECT_SKIP_HEAD_TOO_LONG', `GET / HTTP/1.1\r\nX-Big: ${'b'.repeat(5000)}\r\n\r\n`],
  ] as const)('%s: forwarded untouched, outcome %s', async (_what, expected, data) => {
    const cookie = BigInt(200 + Math.floor(Math.random() * 1e6));
    obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie }));
    const got = await exchange(data);
    expect(Buffer.from(got, 'latin1').equals(Buffer.from(data as string | Buffer))).toBe(true);
    expect(outcome(cookie)).toBe(SK_INJECT_OUTCOME[expected]);
  });

  it('a stale pending context (older than 200 ms) is dropped and counted', async () => {
    obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 103n, ageNs: 1_000_000_000n }));
    const req = 'GET / HTTP/1.1\r\n\r\n';
    expect(await exchange(req)).toBe(req);
    expect(outcome(103n)).toBe(SK_INJECT_OUTCOME.SK_INJECT_SKIP_STALE);
  });

  const tracestate = (value: string): Buffer => {
    const v = Buffer.alloc(8 + 512);
    v.writeUInt32LE(Buffer.byteLength(value, 'latin1'), 0);
    v.write(value, 8, 'latin1');
    return v;
  };

  it('a tracestate waiting for the thread follows the traceparent; one with CR/LF is never sent', async () => {
    const ts = obj.map('spanbridge_sk_inject_tracestate_v2');
    ts.update(threadKey(), tracestate('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE'));
    obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 104n, flags: F_HEADERS_CHECKED | F_TRACESTATE }));
    expect(await exchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n')).toBe(
      `GET / HTTP/1.1\r\ntraceparent: 00-${TRACE}-${SPAN}-01\r\ntracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE\r\nHost: a\r\n\r\n`,
    );
    const doneBefore = counter('SK_INJECT_TRACESTATE_DONE');
    ts.update(threadKey(), tracestate('a=b\r\nX-Evil: 1'));
    obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 105n, flags: F_HEADERS_CHECKED | F_TRACESTATE }));
    expect(await exchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n')).toBe(`GET / HTTP/1.1\r\ntraceparent: 00-${TRACE}-${SPAN}-01\r\nHost: a\r\n\r\n`);
    expect(counter('SK_INJECT_TRACESTATE_DONE')).toBe(doneBefore);
    expect(counter('SK_INJECT_TRACESTATE_SKIPPED')).toBeGreaterThanOrEqual(1);
  });

  it('requests pipelined in one send: each one the owner found gets its own header (with the tracestate); one with its own traceparent is left alone', async () => {
    const r1 = 'GET /1 HTTP/1.1\r\nHost: a\r\n\r\n';
    const r2 = 'POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello';
    const r3 = `GET /3 HTTP/1.1\r\ntraceparent: 00-${'1'.repeat(32)}-${'2'.repeat(16)}-01\r\n\r\n`;
    const r4 = 'HEAD /4 HTTP/1.1\r\nHost: a\r\n\r\n';
    const spans = ['1111111111111111', '3333333333333333', '4444444444444444'];
    obj.map('spanbridge_sk_inject_tracestate_v2').update(threadKey(), tracestate('k=v'));
    obj.map('spanbridge_sk_inject_pending_v2').update(
      threadKey(),
      pending({
        cookie: 106n,
        flags: F_TRACESTATE,
        extra: [
          { off: r1.length, spanId: spans[0] },
          { off: r1.length + r2.length, spanId: spans[1] },
          { off: r1.length + r2.length + r3.length, spanId: spans[2] },
        ],
      }),
    );
    const pipelinedDone = counter('SK_INJECT_PIPELINED_DONE');
    const pipelinedSkipped = counter('SK_INJECT_PIPELINED_SKIPPED');
    const tp = (span: string): string => `traceparent: 00-${TRACE}-${span}-01\r\ntracestate: k=v\r\n`;
    expect(await exchange(r1 + r2 + r3 + r4)).toBe(
      `GET /1 HTTP/1.1\r\n${tp(SPAN)}Host: a\r\n\r\n` +
        `POST /2 HTTP/1.1\r\n${tp(spans[0])}Host: a\r\nContent-Length: 5\r\n\r\nhello` +
        r3 +
        `HEAD /4 HTTP/1.1\r\n${tp(spans[2])}Host: a\r\n\r\n`,
    );
    expect(outcome(106n)).toBe(SK_INJECT_OUTCOME.SK_INJECT_DONE);
    expect(counter('SK_INJECT_PIPELINED_DONE') - pipelinedDone).toBe(2);
    expect(counter('SK_INJECT_PIPELINED_SKIPPED') - pipelinedSkipped).toBe(1);
  });

  it('an extra offset that is not a request start is left alone (body bytes are never changed)', async () => {
    const req = 'POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\nGET /x HTTP/1.1\r\n\r\n';
    obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 107n, flags: F_HEADERS_CHECKED, extra: [{ off: 10, spanId: '5555555555555555' }] }));
    expect(await exchange(req)).toBe(`POST / HTTP/1.1\r\ntraceparent: 00-${TRACE}-${SPAN}-01\r\nContent-Length: 20\r\n\r\nGET /x HTTP/1.1\r\n\r\n`);
  });

  describe('a head written with several send calls', () => {
    const tpLine = `traceparent: 00-${TRACE}-${SPAN}-01\r\n`;

    it('request line split over two sends: the header goes in before the blank line of the send that ends the head', async () => {
      const waits = counter('SK_INJECT_SPLIT_WAIT');
      const done = counter('SK_INJECT_SPLIT_DONE');
      obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 110n }));
      const got = await exchange(['GET /split/request-li', 'ne HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n']);
      expect(got).toBe(`GET /split/request-line HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n${tpLine}\r\n`);
      expect(outcome(110n)).toBe(SK_INJECT_OUTCOME.SK_INJECT_SPLIT_WAIT);
      expect(counter('SK_INJECT_SPLIT_WAIT') - waits).toBe(1);
      expect(counter('SK_INJECT_SPLIT_DONE') - done).toBe(1);
    });

    it('headers over three sends, with the tracestate, and a body after', async () => {
      obj.map('spanbridge_sk_inject_tracestate_v2').update(threadKey(), tracestate('k=v'));
      obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 111n, flags: F_TRACESTATE }));
      const got = await exchange(['POST /p HTTP/1.1\r\nHost: a\r\n', 'Content-Type: text/plain\r\nContent-Le', 'ngth: 4\r\n\r\nbody']);
      expect(got).toBe(`POST /p HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n${tpLine}tracestate: k=v\r\n\r\nbody`);
      // The longest value sent (512 bytes) waits with the socket whole.
      const longest = `k=${'v'.repeat(510)}`;
      obj.map('spanbridge_sk_inject_tracestate_v2').update(threadKey(), tracestate(longest));
      obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 118n, flags: F_TRACESTATE }));
      expect(await exchange(['GET / HTTP/1.1\r\n', 'Host: a\r\n\r\n'])).toBe(`GET / HTTP/1.1\r\nHost: a\r\n${tpLine}tracestate: ${longest}\r\n\r\n`);
    });

    it('a traceparent in a later send (even with its name split over two sends) leaves the request alone', async () => {
      for (const pieces of [
        ['GET / HTTP/1.1\r\nHost: a\r\n', `TraceParent: 00-${'1'.repeat(32)}-${'2'.repeat(16)}-01\r\n\r\n`],
        ['GET / HTTP/1.1\r\nHost: a\r\ntrace', `parent: 00-${'1'.repeat(32)}-${'2'.repeat(16)}-01\r\n\r\n`],
      ]) {
        obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 112n }));
        expect(await exchange(pieces)).toBe(pieces.join(''));
      }
    });

    it('the blank line split between later sends (its CR already sent) is left alone and counted; the next request is injected again', async () => {
      const skipped = counter('SK_INJECT_SPLIT_SKIPPED');
      obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 113n }));
      const pieces = ['GET / HTTP/1.1\r\nHost: a\r\n', 'X: b\r\n\r', '\n'];
      expect(await exchange(pieces)).toBe(pieces.join(''));
      expect(counter('SK_INJECT_SPLIT_SKIPPED') - skipped).toBe(1);
      obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 114n }));
      expect(await exchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n')).toBe(`GET / HTTP/1.1\r\n${tpLine}Host: a\r\n\r\n`);
    });

    it('a head left open is abandoned by the next request (never injected into it late)', async () => {
      const skipped = counter('SK_INJECT_SPLIT_SKIPPED');
      obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 115n }));
      expect(await exchange('GET /open HTTP/1.1\r\nHost: a\r\n')).toBe('GET /open HTTP/1.1\r\nHost: a\r\n');
      obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 116n, flags: F_HEADERS_CHECKED }));
      expect(await exchange('GET /next HTTP/1.1\r\n\r\n')).toBe(`GET /next HTTP/1.1\r\n${tpLine}\r\n`);
      expect(counter('SK_INJECT_SPLIT_SKIPPED') - skipped).toBe(1);
      expect(await exchange('X: y\r\n\r\n')).toBe('X: y\r\n\r\n'); // nothing waits any more
    });

    it('a stale open head (over 1 s) is dropped', async () => {
      obj.map('spanbridge_sk_inject_pending_v2').update(threadKey(), pending({ cookie: 117n, ageNs: 150_000_000n }));
      expect(await exchange('GET /slow HTTP/1.1\r\nHost: a\r\n')).toBe('GET /slow HTTP/1.1\r\nHost: a\r\n');
      await new Promise((r) => setTimeout(r, 900));
      expect(await exchange('\r\n')).toBe('\r\n');
    });
  });

  it('attach errors name what failed', () => {
    expect(() => obj.program('sk_inject_msg').attachSkMsg!('sk_inject_counters')).toThrow(/not a SOCKMAP or SOCKHASH/);
    expect(() => obj.program('sk_inject_sockops').attachCgroup!('/nonexistent/cgroup')).toThrow(/attach sk_inject_sockops to cgroup \/nonexistent\/cgroup: open: No such file or directory/);
  });
});
