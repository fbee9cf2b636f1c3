/**
 * The libbpf binding against the real kernel (root, BTF). Fixtures: test/fixtures/bpf/
 * libbpf_test.bpf.c (rodata, ring buffer, maps, a getppid tracepoint and a uprobe) and
 * libbpf_test_bad.bpf.c (one program the verifier rejects), built here with
 * `make test-bpf-objects`; a small C program (built with gcc into a temp dir) is the uprobe target
 * and the source of getppid() floods.
 *
 * Without root or /sys/kernel/btf/vmlinux this suite FAILS with the reason, unless
 * SPANBRIDGE_ALLOW_SKIP=1 (then it is skipped).
 *
 * Measurements (records/s through the callback path, event-loop gaps) are printed as
 * `[measure] {...}` lines and written to build/test-bpf/libbpf-measurements.json.
 */
import { execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLibbpfBackend, type RingWaitMode } from '../../src/bpf/libbpf';
import { openObjectCount } from '../../src/bpf/lifecycle';
import { BpfLoadError } from '../../src/errors';
import { ensureKernelFilesystems, missingRequiredFilesystems } from '../../src/bpf/mounts';
import type { BpfBackend, BpfObject, RingBufferSource } from '../../src/bpf/types';
import { bpfLoadProblem, buildCProgram, startCTarget, symbolFileOffset, type CTarget } from '../helpers/c-target';
import { sleep, waitForSoon as waitFor } from '../helpers/child-process';
import { thrownSpanbridgeError } from '../helpers/errors';

jest.setTimeout(120_000);

const ROOT = join(__dirname, '..', '..');
const OBJ = join(ROOT, 'build/test-bpf/libbpf_test.bpf.o');
const BAD_OBJ = join(ROOT, 'build/test-bpf/libbpf_test_bad.bpf.o');
const MEASUREMENTS = join(ROOT, 'build/test-bpf/libbpf-measurements.json');
const RECORD_TRACEPOINT = 1;
const RECORD_UPROBE = 2;
const MAGIC = 0x5eb41d9e;
const ZERO_KEY = Buffer.alloc(4);
/** A ring's record in place (valid during its handler's call only), as a buffer of its own. */
const copyOf = (b: Buffer, o: number, n: number): Buffer => Buffer.from(b.subarray(o, o + n));

const problem = bpfLoadProblem();
const suite = problem && process.env.SPANBRIDGE_ALLOW_SKIP === '1' ? describe.skip : describe;

// ------------------------------------------------------------------------------------------------
// The target program: a line protocol on stdin ("probe N", "getppid N"), "done" on stdout.

const TARGET_C = `
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
__attribute__((noinline)) long spanbridge_probe_target(long v) { __asm__ volatile("" ::: "memory"); return v + 1; }
int main(void) {
  char line[128]; long sum = 0;
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("ready\\n");
  while (fgets(line, sizeof line, stdin)) {
    long n = 0;
    if (sscanf(line, "probe %ld", &n) == 1) { for (long i = 1; i <= n; i++) sum += spanbridge_probe_target(i); }
    else if (sscanf(line, "getppid %ld", &n) == 1) { for (long i = 0; i < n; i++) sum += syscall(SYS_getppid); }
    else break;
    printf("done %ld\\n", sum & 1);
  }
  return 0;
}
`;

type Target = CTarget;

let workDir = '';
let targetPath = '';
let targetOffset = 0;
const children: ChildProcessWithoutNullStreams[] = [];

const startTarget = (): Promise<Target> => startCTarget(targetPath, children);


interface Gaps {
  /** Longest wall-clock gap between ticks. */
  maxGapMs: number;
  p99GapMs: number;
  /**
   * Longest gap minus the time the main thread sat runnable but not running (run-queue wait,
   * from /proc/self/task/<tid>/schedstat): the part of a gap spent executing on this thread, i.e.
   * what our code can be blamed for. On a loaded machine (other jobs on 2 cores) wall-clock gaps
   * include preemption that no user-space design can prevent.
   */
  maxOnCpuGapMs: number;
  ticks: number;
}

const SCHEDSTAT = `/proc/self/task/${process.pid}/schedstat`;
function runQueueWaitMs(): number {
  const fields = readFileSync(SCHEDSTAT, 'utf8').trim().split(/\s+/);
  return Number(fields[1] ?? 0) / 1e6;
}

/** Gaps between ticks of a 1 ms interval: how long the event loop was ever kept from timers. */
function gapMeter(): { stop(): Gaps } {
  let last = performance.now();
  let lastWait = runQueueWaitMs();
  const gaps: number[] = [];
  let maxOnCpu = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const wait = runQueueWaitMs();
    gaps.push(now - last);
    maxOnCpu = Math.max(maxOnCpu, now - last - (wait - lastWait));
    last = now;
    lastWait = wait;
  }, 1);
  return {
    stop: () => {
      clearInterval(timer);
      const sorted = [...gaps].sort((a, b) => a - b);
      const round = (x: number | undefined): number => +(x ?? 0).toFixed(2);
      return {
        maxGapMs: round(sorted[sorted.length - 1]),
        p99GapMs: round(sorted[Math.floor(sorted.length * 0.99)]),
        maxOnCpuGapMs: round(maxOnCpu),
        ticks: gaps.length,
      };
    },
  };
}

/** CPU pressure of the machine over the last 10 s (PSI), to read gap numbers in context. */
function cpuPressure(): string {
  try {
    return readFileSync('/proc/pressure/cpu', 'utf8').split('\n')[0] ?? '';
  } catch {
    return 'n/a';
  }
}

/** Longest consume turn of a libbpf ring buffer (an extra the binding exposes for measurements). */
function maxTurnMs(rb: RingBufferSource): number {
  return +((rb as RingBufferSource & { maxTurnMs?: number }).maxTurnMs ?? NaN).toFixed(2);
}

function sumPerCpu(obj: BpfObject, map: string, width: 4 | 8): bigint {
  const values = obj.map(map).lookupPerCpu(ZERO_KEY) ?? [];
  return values.reduce((acc, v) => acc + (width === 8 ? v.readBigUInt64LE(0) : BigInt(v.readUInt32LE(0))), 0n);
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** BPF link ids held by this process (from /proc/self/fdinfo). */
function ownLinkIds(): number[] {
  const ids: number[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^link_id:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (m?.[1]) ids.push(Number(m[1]));
    } catch {
      // fd closed meanwhile
    }
  }
  return ids;
}

function linkExists(id: number): boolean {
  try {
    execFileSync('bpftool', ['link', 'show', 'id', String(id)], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

const measurements: Record<string, unknown> = {};
function measure(name: string, value: unknown): void {
  measurements[name] = value;
  process.stdout.write(`[measure] ${JSON.stringify({ [name]: value })}\n`);
}

// ------------------------------------------------------------------------------------------------

suite('libbpf binding (real kernel)', () => {
  let backend: BpfBackend;

  beforeAll(() => {
    if (problem) throw new Error(`libbpf integration tests ${problem}; set SPANBRIDGE_ALLOW_SKIP=1 to skip`);
    execFileSync('make', ['-s', 'test-bpf-objects'], { cwd: ROOT, stdio: 'pipe' });
    const mounts = ensureKernelFilesystems();
    const missing = missingRequiredFilesystems(mounts);
    if (missing.length > 0) throw new Error(`kernel filesystems missing: ${JSON.stringify(missing)}`);
    workDir = mkdtempSync(join(tmpdir(), 'spanbridge-libbpf-'));
    targetPath = buildCProgram(workDir, 'target', TARGET_C);
    targetOffset = symbolFileOffset(targetPath, 'spanbridge_probe_target');
    backend = createLibbpfBackend();
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    if (Object.keys(measurements).length > 0) writeFileSync(MEASUREMENTS, JSON.stringify(measurements, null, 2) + '\n');
  });

  test('rodata set by name reaches the program; records and per-CPU counter agree', async () => {
    const wide = 0x0102030405060708n;
    const target = await startTarget();
    const obj = backend.open(OBJ, { rodata: { magic: MAGIC, filter_tgid: target.pid, small_flag: true, wide_value: wide } });
    try {
      obj.load();
      const records: Buffer[] = [];
      const rb = obj.ringBuffer('events', (b, o, n) => records.push(copyOf(b, o, n)));
      rb.start();
      obj.program('on_getppid').attachTracepoint('syscalls', 'sys_enter_getppid');
      await target.run('getppid 3');
      await waitFor('3 records', () => records.length >= 3);
      await sleep(20);
      expect(records).toHaveLength(3);
      for (const r of records) {
        expect(r.length).toBe(16);
        expect(r[0]).toBe(RECORD_TRACEPOINT);
        expect(r[1]).toBe(1); // small_flag
        expect(r.readUInt32LE(4)).toBe(MAGIC);
      }
      expect(sumPerCpu(obj, 'calls', 8)).toBe(3n);
      expect(sumPerCpu(obj, 'drops', 4)).toBe(0n);
      expect(rb.delivered).toBe(3);
      // The frozen .rodata map holds exactly what we wrote (8-byte LE value included).
      const rodata = obj.map('.rodata').lookup(ZERO_KEY);
      const wideLe = Buffer.alloc(8);
      wideLe.writeBigUInt64LE(wide);
      expect(rodata?.includes(wideLe)).toBe(true);
    } finally {
      await obj.close();
      await target.stop();
    }
  });

  test('map update / lookup / delete round trip, sizes checked, per-CPU values', async () => {
    const obj = backend.open(OBJ);
    try {
      obj.load();
      const kv = obj.map('kv');
      expect([kv.keySize, kv.valueSize]).toEqual([4, 8]);
      const key = Buffer.from([7, 0, 0, 0]);
      const value = Buffer.alloc(8);
      value.writeBigUInt64LE(42n);
      expect(kv.lookup(key)).toBeNull();
      kv.update(key, value);
      expect(kv.lookup(key)?.readBigUInt64LE(0)).toBe(42n);
      expect(kv.delete(key)).toBe(true);
      expect(kv.delete(key)).toBe(false);
      expect(kv.lookup(key)).toBeNull();
      expect(thrownSpanbridgeError(() => kv.update(Buffer.alloc(3), value)).message).toBe('update map kv: key is 3 bytes, map wants 4');
      expect(thrownSpanbridgeError(() => kv.lookupPerCpu(key)).code).toBe('ERR_BPF_MAP');

      const drops = obj.map('drops'); // per-CPU u32: 8-byte stride in the kernel layout
      const cpus = backend.possibleCpus();
      drops.update(ZERO_KEY, Buffer.from([5, 0, 0, 0]));
      const perCpu = drops.lookupPerCpu(ZERO_KEY);
      expect(perCpu).toHaveLength(cpus);
      expect(perCpu?.map((b) => [b.length, b.readUInt32LE(0)])).toEqual(Array.from({ length: cpus }, () => [4, 5]));
      expect(thrownSpanbridgeError(() => drops.lookup(ZERO_KEY)).message).toMatch(/use lookupPerCpu/);
      expect(thrownSpanbridgeError(() => obj.map('nope')).code).toBe('ERR_BPF_MAP');
      expect(thrownSpanbridgeError(() => obj.ringBuffer('kv', () => undefined)).message).toMatch(/not a ring buffer/);
    } finally {
      await obj.close();
    }
  });

  test('uprobe on a function of a C program delivers its argument; attach errors carry errno', async () => {
    const target = await startTarget();
    const obj = backend.open(OBJ, { rodata: { magic: MAGIC } });
    try {
      obj.load();
      const records: Buffer[] = [];
      obj.ringBuffer('events', (b, o, n) => records.push(copyOf(b, o, n))).start();
      const prog = obj.program('on_uprobe');
      const link = prog.attachUprobe({ binaryPath: targetPath, offset: targetOffset, pid: target.pid });
      expect(link.description).toBe(`uprobe:${targetPath}+0x${targetOffset.toString(16)} pid=${target.pid}`);
      await target.run('probe 5');
      await waitFor('5 uprobe records', () => records.length >= 5);
      expect(records.map((r) => [r[0], r.readUInt32LE(4), Number(r.readBigUInt64LE(8))])).toEqual(
        [1, 2, 3, 4, 5].map((i) => [RECORD_UPROBE, MAGIC, i]),
      );

      const noPid = thrownSpanbridgeError(() => prog.attachUprobe({ binaryPath: targetPath, offset: targetOffset, pid: 4_194_000 }));
      expect(noPid.code).toBe('ERR_BPF_ATTACH');
      expect(noPid.message).toBe(
        `attach uprobe ${targetPath}+0x${targetOffset.toString(16)} pid 4194000: No such process (errno 3)`,
      );
      expect(noPid.errno).toBe(3);
      expect(String((noPid.cause as Error | undefined)?.message)).toMatch(/libbpf: prog 'on_uprobe'/);
      const noFile = thrownSpanbridgeError(() => prog.attachUprobe({ binaryPath: '/nonexistent/app', offset: 0x10 }));
      expect(noFile.message).toBe('attach uprobe /nonexistent/app+0x10: No such file or directory (errno 2)');
      const noTp = thrownSpanbridgeError(() => obj.program('on_getppid').attachTracepoint('syscalls', 'sys_enter_no_such_call'));
      expect(noTp.code).toBe('ERR_BPF_ATTACH');
      expect(noTp.message).toBe('attach tracepoint syscalls/sys_enter_no_such_call: No such file or directory (errno 2)');
    } finally {
      await obj.close();
      await target.stop();
    }
  });

  test('a program the verifier rejects: ERR_BPF_LOAD with the verifier log; disabled, the object loads', async () => {
    const bad = backend.open(BAD_OBJ);
    try {
      const err = thrownSpanbridgeError(() => bad.load());
      expect(err.code).toBe('ERR_BPF_LOAD');
      expect(err.message).toMatch(/^load .*libbpf_test_bad\.bpf\.o: program rejected: Permission denied \(errno 13\)\nverifier log:\n/);
      expect(err.message).toContain("R0 invalid mem access 'map_value_or_null'");
      expect(err.errno).toBe(13);
      // Typed: callers choose fallbacks from the failing program and the log, not the message.
      expect(err).toBeInstanceOf(BpfLoadError);
      expect((err as BpfLoadError).program).toBe('rejected');
      expect((err as BpfLoadError).verifierLog).toContain("R0 invalid mem access 'map_value_or_null'");
    } finally {
      await bad.close();
    }
    const ok = backend.open(BAD_OBJ, { disablePrograms: ['rejected'] });
    try {
      ok.load();
      expect(thrownSpanbridgeError(() => ok.program('rejected').attachTracepoint('syscalls', 'sys_enter_getppid')).message).toMatch(
        /program rejected is disabled/,
      );
      ok.program('accepted').attachTracepoint('syscalls', 'sys_enter_getppid').destroy();
    } finally {
      await ok.close();
    }
  });

  test('loadAsync: a rejected program gives the same typed error as load(), and libbpf messages are captured again after', async () => {
    const bad = backend.open(BAD_OBJ);
    try {
      const err = await bad.loadAsync().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BpfLoadError);
      const e = err as BpfLoadError;
      expect(e.message).toMatch(/^load .*libbpf_test_bad\.bpf\.o: program rejected: Permission denied \(errno 13\)\nverifier log:\n/);
      expect([e.code, e.errno, e.program]).toEqual(['ERR_BPF_LOAD', 13, 'rejected']);
      expect(e.verifierLog).toContain("R0 invalid mem access 'map_value_or_null'");
    } finally {
      await bad.close();
    }
    // The print hook is set again: a failing call still carries libbpf's own words.
    const obj = backend.open(OBJ);
    try {
      await obj.loadAsync();
      const noTp = thrownSpanbridgeError(() => obj.program('on_getppid').attachTracepoint('syscalls', 'sys_enter_no_such_call'));
      expect(String((noTp.cause as Error | undefined)?.message)).toMatch(/libbpf: /);
    } finally {
      await obj.close();
    }
  });

  test('loadAsync: objects load at once and share a map pinned by name on a host without the pin; close() waits for a load in flight', async () => {
    const pin = '/sys/fs/bpf/spanbridge_test_pinned';
    rmSync(pin, { force: true });
    const before = openObjectCount();
    const a = backend.open(OBJ);
    const b = backend.open(OBJ);
    const c = backend.open(OBJ);
    try {
      const loads = Promise.all([a.loadAsync(), b.loadAsync(), c.loadAsync()]);
      const closing = c.close(); // while its load runs on a worker thread
      await loads;
      await closing;
      expect(existsSync(pin)).toBe(true);
      const key = Buffer.alloc(4);
      const value = Buffer.alloc(8);
      value.writeBigUInt64LE(7n);
      a.map('spanbridge_test_pinned').update(key, value);
      expect(b.map('spanbridge_test_pinned').lookup(key)?.readBigUInt64LE(0)).toBe(7n);
      // Both loaded for real: their programs attach.
      a.program('on_getppid').attachTracepoint('syscalls', 'sys_enter_getppid').destroy();
      b.program('on_getppid').attachTracepoint('syscalls', 'sys_enter_getppid').destroy();
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
    expect(openObjectCount()).toBe(before);
  });

  test('open errors: missing file, unknown rodata, oversized value, unknown program to disable', () => {
    const missing = thrownSpanbridgeError(() => backend.open('/nonexistent/x.bpf.o'));
    expect([missing.code, missing.message]).toEqual(['ERR_BPF_OPEN', 'open /nonexistent/x.bpf.o: No such file or directory (errno 2)']);
    expect(thrownSpanbridgeError(() => backend.open(OBJ, { rodata: { nope: 1 } })).message).toBe(
      `set rodata nope in ${OBJ}: no such variable (known: magic, filter_tgid, small_flag, wide_value, ring_wakeup_bytes)`,
    );
    expect(thrownSpanbridgeError(() => backend.open(OBJ, { rodata: { small_flag: 256 } })).message).toMatch(/256 does not fit a 1-byte variable/);
    expect(thrownSpanbridgeError(() => backend.open(OBJ, { rodata: { magic: Buffer.alloc(5) } })).code).toBe('ERR_BPF_OPEN');
    expect(thrownSpanbridgeError(() => backend.open(OBJ, { disablePrograms: ['nope'] })).message).toBe(`disable program nope: not in ${OBJ}`);
  });

  test('handler exceptions are counted, never escape, and delivery goes on', async () => {
    const target = await startTarget();
    const obj = backend.open(OBJ, { rodata: { filter_tgid: target.pid } });
    try {
      obj.load();
      let seen = 0;
      const rb = obj.ringBuffer('events', () => {
        seen++;
        if (seen % 2 === 1) throw new Error('handler bug');
      });
      rb.start();
      obj.program('on_getppid').attachTracepoint('syscalls', 'sys_enter_getppid');
      await target.run('getppid 4');
      await waitFor('4 records', () => rb.delivered >= 4);
      expect(rb.handlerErrors).toBe(2);
    } finally {
      await obj.close();
      await target.stop();
    }
  });

  describe.each<[RingWaitMode]>([['uv-poll'], ['worker']])('ring buffer wait mode %s', (mode) => {
    const N = 100_000;

    async function withFlood<T>(fn: (ctx: { obj: BpfObject; target: Target; rb: RingBufferSource; records: () => number }) => Promise<T>): Promise<T> {
      const be = createLibbpfBackend({ ringWait: mode });
      const target = await startTarget();
      const obj = be.open(OBJ, { rodata: { magic: MAGIC, filter_tgid: target.pid } });
      try {
        obj.load();
        let count = 0;
        let bad = 0;
        const rb = obj.ringBuffer('events', (b, o) => {
          count++;
          if (b[o] !== RECORD_TRACEPOINT || b.readUInt32LE(o + 4) !== MAGIC) bad++;
        });
        obj.program('on_getppid').attachTracepoint('syscalls', 'sys_enter_getppid');
        const out = await fn({ obj, target, rb, records: () => count });
        expect(bad).toBe(0);
        return out;
      } finally {
        await obj.close();
        await target.stop();
      }
    }

    test(`event loop keeps ticking while idle and while ${N} records stream in; none lost`, async () => {
      await withFlood(async ({ obj, target, rb, records }) => {
        rb.start();
        const idle = gapMeter();
        await sleep(1000);
        const idleGaps = idle.stop();
        const load = gapMeter();
        const t0 = performance.now();
        await target.run(`getppid ${N}`);
        await waitFor(`${N} records`, () => records() >= N, 30_000);
        const elapsed = performance.now() - t0;
        const loadGaps = load.stop();
        await sleep(50);
        expect(records()).toBe(N);
        expect(sumPerCpu(obj, 'calls', 8)).toBe(BigInt(N));
        expect(sumPerCpu(obj, 'drops', 4)).toBe(0n);
        measure(`${mode}.idle`, { ...idleGaps });
        measure(`${mode}.streaming`, {
          records: N,
          msProducerStartToLastRecord: +elapsed.toFixed(1),
          ...loadGaps,
          maxConsumeTurnMs: maxTurnMs(rb),
          cpuPressure: cpuPressure(),
        });
        // See Gaps.maxOnCpuGapMs: wall-clock max gaps are reported; the assertion is on the part of
        // each gap this process spent running, which is what "not blocking the loop" means.
        expect(idleGaps.maxOnCpuGapMs).toBeLessThan(50);
        expect(loadGaps.maxOnCpuGapMs).toBeLessThan(50);
      });
    });

    test(`consumer throughput: ${N} records already in the ring, drained through the callback`, async () => {
      await withFlood(async ({ rb, target, records }) => {
        await target.run(`getppid ${N}`); // 100k x 24 bytes fit the 4 MiB ring: nothing consumed yet
        const meter = gapMeter();
        const t0 = performance.now();
        rb.start();
        await waitFor(`${N} records`, () => records() >= N, 30_000);
        const ms = performance.now() - t0;
        const gaps = meter.stop();
        expect(records()).toBe(N);
        measure(`${mode}.drain`, {
          records: N,
          ms: +ms.toFixed(1),
          recordsPerSecond: Math.round(N / (ms / 1000)),
          nsPerRecord: Math.round((ms * 1e6) / N),
          ...gaps,
          maxConsumeTurnMs: maxTurnMs(rb),
          cpuPressure: cpuPressure(),
        });
        expect(gaps.maxOnCpuGapMs).toBeLessThan(50);
      });
    });
  });

  test('close() destroys links (bpftool no longer lists them), is idempotent, and later use fails clearly', async () => {
    const target = await startTarget();
    const before = new Set(ownLinkIds());
    const obj = backend.open(OBJ, { rodata: { filter_tgid: target.pid } });
    obj.load();
    const records: Buffer[] = [];
    obj.ringBuffer('events', (b, o, n) => records.push(copyOf(b, o, n))).start();
    obj.program('on_getppid').attachTracepoint('syscalls', 'sys_enter_getppid');
    obj.program('on_uprobe').attachUprobe({ binaryPath: targetPath, offset: targetOffset, pid: target.pid });
    const ids = ownLinkIds().filter((id) => !before.has(id));
    expect(ids).toHaveLength(2);
    expect(ids.every(linkExists)).toBe(true);
    await target.run('probe 1');
    await waitFor('uprobe record', () => records.length >= 1);

    await Promise.all([obj.close(), obj.close()]);
    await obj.close();
    expect(ids.filter(linkExists)).toEqual([]);
    expect(ownLinkIds().filter((id) => !before.has(id))).toEqual([]);
    await target.run('probe 1'); // nothing attached any more: no new record (and no crash)
    await sleep(50);
    expect(records).toHaveLength(1);
    expect(thrownSpanbridgeError(() => obj.load()).code).toBe('ERR_BPF_LOAD');
    expect(thrownSpanbridgeError(() => obj.map('kv')).code).toBe('ERR_BPF_MAP');
    await target.stop();
  });

  test.each<[RingWaitMode]>([['uv-poll'], ['worker']])(
    'no fd leak over 10 open+load+attach+ring buffer+close cycles (%s); registry empties',
    async (mode) => {
      const be = createLibbpfBackend({ ringWait: mode });
      const target = await startTarget();
      const cycle = async (): Promise<void> => {
        const obj = be.open(OBJ, { rodata: { filter_tgid: target.pid } });
        obj.load();
        obj.ringBuffer('events', () => undefined).start();
        obj.program('on_getppid').attachTracepoint('syscalls', 'sys_enter_getppid');
        obj.program('on_uprobe').attachUprobe({ binaryPath: targetPath, offset: targetOffset, pid: target.pid });
        await target.run('probe 1');
        await target.run('getppid 1');
        await obj.close();
      };
      await cycle(); // warm-up: one-time lazily opened fds (if any) are not leaks
      const fdsBefore = openFds();
      const registryBefore = openObjectCount();
      for (let i = 0; i < 10; i++) await cycle();
      expect(openFds()).toBe(fdsBefore);
      expect(openObjectCount()).toBe(registryBefore);
      await target.stop();
    },
  );

  test('worker mode: close() does not wait out an in-flight epoll_wait (eventfd wake-up)', async () => {
    const be = createLibbpfBackend({ ringWait: 'worker', waitTimeoutMs: 5000 });
    const obj = be.open(OBJ);
    obj.load();
    const rb = obj.ringBuffer('events', () => undefined);
    rb.start();
    await sleep(50); // epoll_wait (5 s timeout) now blocks a worker thread
    const t0 = performance.now();
    await obj.close();
    const ms = performance.now() - t0;
    measure('worker.closeWhileWaitingMs', +ms.toFixed(1));
    expect(ms).toBeLessThan(1000);
  });

  test.each<[RingWaitMode]>([['uv-poll'], ['worker']])('a handler may close the object mid-consume (%s)', async (mode) => {
    const be = createLibbpfBackend({ ringWait: mode });
    const target = await startTarget();
    const obj = be.open(OBJ, { rodata: { filter_tgid: target.pid } });
    obj.load();
    let seen = 0;
    let closed: Promise<void> | undefined;
    obj.ringBuffer('events', () => {
      seen++;
      closed ??= obj.close();
    }).start();
    obj.program('on_getppid').attachTracepoint('syscalls', 'sys_enter_getppid');
    await target.run('getppid 1000');
    await waitFor('first record', () => closed !== undefined);
    await closed;
    expect(seen).toBe(1); // consumption stops right after the record that asked for close
    await target.stop();
  });

  describe('adaptive wakeups (bpf/common/ring_wakeup.h) and the periodic consume', () => {
    // A fixture record takes 24 bytes in the ring (8-byte header + 16).
    const RECORD_BYTES = 24;

    async function withRing<T>(
      options: { pollIntervalMs: number; wakeupBytes: number; mode?: RingWaitMode },
      fn: (ctx: { obj: BpfObject; target: Target; rb: RingBufferSource; records: Buffer[] }) => Promise<T>,
    ): Promise<T> {
      const be = createLibbpfBackend({ pollIntervalMs: options.pollIntervalMs, ringWait: options.mode });
      const target = await startTarget();
      const obj = be.open(OBJ, { rodata: { filter_tgid: target.pid, ring_wakeup_bytes: BigInt(options.wakeupBytes) } });
      try {
        obj.load();
        const records: Buffer[] = [];
        const rb = obj.ringBuffer('events', (b, o, n) => records.push(copyOf(b, o, n)));
        rb.start();
        obj.program('on_getppid').attachTracepoint('syscalls', 'sys_enter_getppid');
        return await fn({ obj, target, rb, records });
      } finally {
        await obj.close();
        await target.stop();
      }
    }

    test('threshold 0 (the kernel default): every record wakes us, no periodic consume needed', async () => {
      await withRing({ pollIntervalMs: 0, wakeupBytes: 0 }, async ({ target, records }) => {
        await target.run('getppid 3');
        await waitFor('3 records', () => records.length >= 3, 2000);
      });
    });

    test('below the threshold the kernel does not wake us; crossing it does; a draining close reads out the rest', async () => {
      const wakeupBytes = 100 * RECORD_BYTES;
      await withRing({ pollIntervalMs: 0, wakeupBytes }, async ({ obj, target, rb, records }) => {
        await target.run('getppid 20');
        await sleep(300);
        expect(records).toHaveLength(0); // NO_WAKEUP: waiting in the ring, nobody reads it
        await target.run('getppid 100'); // 120 records: the 100th forces a wakeup
        await waitFor('a wakeup at the threshold', () => records.length >= 100, 2000);
        // The woken consumer reads what is there; records that land after its read are below the
        // threshold again and wait (no timer here).
        await target.run('getppid 7');
        await sleep(200);
        const beforeClose = records.length;
        expect(beforeClose).toBeLessThanOrEqual(120);
        expect(sumPerCpu(obj, 'drops', 4)).toBe(0n);
        await obj.close({ drain: true }); // the links go first, then the ring is read empty
        expect(records).toHaveLength(127);
        expect((rb as RingBufferSource & { deliveredAtClose?: number }).deliveredAtClose).toBe(127 - beforeClose);
        expect(records.every((r) => r[0] === RECORD_TRACEPOINT)).toBe(true);
      });
    });

    test.each<[RingWaitMode]>([['uv-poll'], ['worker']])(
      'records below the threshold arrive within the poll period (%s)',
      async (mode) => {
        const POLL_MS = 40;
        await withRing({ pollIntervalMs: POLL_MS, wakeupBytes: 1 << 20, mode }, async ({ target, rb, records }) => {
          const latencies: number[] = [];
          for (let i = 0; i < 10; i++) {
            const want = records.length + 3;
            const t0 = performance.now();
            await target.run('getppid 3');
            await waitFor('3 records', () => records.length >= want, 2000);
            latencies.push(performance.now() - t0);
            await sleep(7 * (i + 1)); // vary the phase against the timer
          }
          expect(records).toHaveLength(30);
          // In 'worker' mode an epoll_wait timing out (200 ms) also consumes; in 'uv-poll' mode only the timer can.
          if (mode === 'uv-poll') expect((rb as RingBufferSource & { deliveredByPoll?: number }).deliveredByPoll).toBe(30);
          const sorted = [...latencies].sort((a, b) => a - b);
          measure(`${mode}.belowThresholdLatencyMs`, { pollMs: POLL_MS, median: +sorted[5].toFixed(1), max: +sorted[9].toFixed(1), cpuPressure: cpuPressure() });
          // One period plus scheduling noise on a shared 2-core machine.
          expect(sorted[5]).toBeLessThan(POLL_MS + 30);
        });
      },
    );

    test('many records below the threshold: the periodic consume continues past one turn', async () => {
      const N = 50_000; // 1.2 MB, below a 2 MiB threshold: only the timer reads them
      await withRing({ pollIntervalMs: 50, wakeupBytes: 2 << 20 }, async ({ target, records }) => {
        await target.run(`getppid ${N}`);
        await waitFor(`${N} records`, () => records.length >= N, 10_000);
        await sleep(100);
        expect(records).toHaveLength(N);
      });
    });
  });
});
