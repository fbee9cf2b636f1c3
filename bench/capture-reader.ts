/**
 * The minimal capture's user-space reader (bench/sections/capture-floor.ts), a process of its own
 * pinned to the load CPU like the agent: loads build/bench/min_capture.bpf.o, selects one process,
 * attaches the capture programs to the given syscall tracepoints and consumes the ring through the
 * agent's own ring path (src/bpf: koffi + libbpf, records copied to Node's main thread, read every
 * 50 ms or on a wakeup once 64 KiB wait). Each record is discarded, after `busyUs` microseconds
 * of CPU spent on it (0: none): calibrated busy work standing in for an agent's user space at a
 * given CPU cost per record.
 *
 *   node capture-reader.js <object> <pid> <busyUsPerRecord> <tracepoint>...
 *
 * Prints one JSON line once attached ({"ready":true,...}) and one when SIGTERM stops it
 * ({"records":N,"drops":N,...}).
 */
import { createLibbpfBackend } from '../src/bpf/libbpf';

/** Busy work the optimiser cannot drop: an LCG over `x`, `n` steps. */
function spin(n: number, x: number): number {
  for (let i = 0; i < n; i++) x = (Math.imul(x, 1664525) + 1013904223) | 0;
  return x;
}

/** Steps of spin() per microsecond of CPU time (process.cpuUsage, so preemption does not count):
 * the best of 5 runs of ~20 ms once the function is optimised. */
function calibrate(): number {
  let x = spin(2_000_000, 1);
  let best = 0;
  for (let i = 0; i < 5; i++) {
    const n = 2_000_000;
    const c0 = process.cpuUsage();
    x = spin(n, x);
    const c = process.cpuUsage(c0);
    best = Math.max(best, n / Math.max(1, c.user + c.system));
  }
  if (x === 42) process.stderr.write(''); // keeps x live
  return best;
}

function main(): void {
  const [objPath, pidArg, busyArg, ...tracepoints] = process.argv.slice(2);
  const busyUs = Number(busyArg);
  const stepsPerUs = busyUs > 0 ? calibrate() : 0;
  const steps = Math.round(busyUs * stepsPerUs);
  const obj = createLibbpfBackend().open(objPath);
  obj.load();
  const key = Buffer.alloc(4);
  key.writeUInt32LE(Number(pidArg));
  obj.map('selected_tgids').update(key, Buffer.from([1]));
  for (const tp of tracepoints) obj.program(`cap_${tp}`).attachTracepoint('syscalls', tp);
  let records = 0;
  let bytes = 0;
  let x = 1;
  // Each record in place (the agent's reader hands records over without a copy, too).
  const ring = obj.ringBuffer('records', (b, o, n) => {
    records++;
    bytes += n;
    x ^= b[o + n - 1];
    if (steps > 0) x = spin(steps, x);
  });
  ring.start();
  process.stdout.write(`${JSON.stringify({ ready: true, busyUs, stepsPerUs, tracepoints: tracepoints.length })}\n`);
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    const d = obj.map('drops').lookup(Buffer.alloc(4));
    const drops = d ? Number(d.readBigUInt64LE(0)) : -1;
    void obj.close().then(() => {
      process.stdout.write(`${JSON.stringify({ records, bytes, drops, x: x & 1 })}\n`);
      process.exit(0);
    });
  });
}

main();
