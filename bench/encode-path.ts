/**
 * The OTLP trace encoder alone, in process: span-path.ts's Go-server-like spans (decoded, assembled
 * and routed once, then kept) pushed into TraceBatches of 2048 framed in place and released, as the
 * exporter does. CPU time per span over each pass (process.cpuUsage), min and median.
 *
 * ENC_ROOT=<checkout> encodes with that checkout's built encoder (its
 * build/bench/js/receiver/otlp/trace-encoder.js) over this checkout's span objects, so two
 * encoders see the same spans: run them alternately, pinned.
 *
 *   npx tsc -p bench/tsconfig.json && ENC_ROOT=/path/to/checkout taskset -c 1 node build/bench/js/bench/encode-path.js [passes]
 */
import * as path from 'node:path';
import type * as Encoder from '../receiver/otlp/trace-encoder';
import { decodeRecord } from '../src/events/decoder';
import { SelfMetrics } from '../src/metrics/counters';
import { DEFAULT_ROUTES } from '../src/spans/routes/route-policy';
import { RouteStage } from '../src/spans/routes/route-stage';
import type { Span } from '../src/spans/span';
import { SysHttpAssembler } from '../src/spans/sys-http-assembler';
import { FixedClock } from '../src/time/clock';
import { records } from './span-path';

function spans(): Span[] {
  const metrics = new SelfMetrics();
  const resource = { attributes: { 'service.name': 'goserver', 'process.pid': 7 } };
  const routes = new RouteStage(DEFAULT_ROUTES, metrics);
  routes.register(resource, undefined, 'go');
  const out: Span[] = [];
  const asm = new SysHttpAssembler({ clock: new FixedClock(1_700_000_000_000_000_000n), metrics, resourceOf: () => resource, onSpan: (s) => out.push(routes.apply(s)) });
  for (const r of records()) {
    const rec = decodeRecord(r, metrics);
    if (rec && (rec.type === 'sys_http_data' || rec.type === 'sys_http_conn_open' || rec.type === 'sys_http_conn_close' || rec.type === 'sys_http_route')) asm.onRecord(rec);
  }
  return out;
}

function main(): void {
  const passes = Number(process.argv[2] ?? 30);
  const root = process.env.ENC_ROOT ? path.resolve(process.env.ENC_ROOT) : path.resolve(__dirname, '..', '..', '..', '..');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { TraceBatch } = require(path.join(root, 'build', 'bench', 'js', 'receiver', 'otlp', 'trace-encoder.js')) as typeof Encoder;
  const all = spans();
  let bytes = 0;
  const results: number[] = [];
  for (let p = 0; p < passes + 5; p++) {
    const c0 = process.cpuUsage();
    let batch = new TraceBatch();
    for (const s of all) {
      if (batch.push(s) >= 2048) {
        const req = batch.finishInPlace();
        bytes = req.body.length;
        req.release();
        batch = new TraceBatch();
      }
    }
    batch.discard();
    const c = process.cpuUsage(c0);
    if (p >= 5) results.push(((c.user + c.system) * 1000) / all.length);
  }
  results.sort((a, b) => a - b);
  console.log(`encode path (${root}): min ${results[0]!.toFixed(0)} ns/span, median ${results[results.length >> 1]!.toFixed(0)} ns/span over ${passes} passes of ${all.length} spans (${bytes} bytes per request of 2048)`);
}

main();
