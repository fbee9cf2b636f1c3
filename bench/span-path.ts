/**
 * The agent's per-span user-space path in process, without the ring or the network: Go-server-like
 * sys_http records (16 keep-alive connections, a request read and a response write per span, the
 * route in the response's record, a third with an incoming traceparent) decoded as the ring's
 * handler decodes them, assembled into spans, routed, recorded in the RED metrics and encoded into
 * OTLP batches of 2048 spans (the request framed in place, its writer released), as the agent does.
 * CPU time per span over each pass (process.cpuUsage), pinned: a figure to compare two checkouts'
 * code (run each checkout's build alternately), not the agent's whole cost (no ring read, export,
 * GC of a long-running process, kernel).
 *
 *   npx tsc -p bench/tsconfig.json && taskset -c 1 node build/bench/js/bench/span-path.js [passes]
 */
import { HistogramStore } from '../receiver/metrics/histogram-store';
import { HTTP_DURATION_BUCKETS } from '../receiver/metrics/http-duration';
import { RedMetricsSink } from '../receiver/metrics/red-sink';
import { TraceBatch } from '../receiver/otlp/trace-encoder';
import { PrometheusRegistry } from '../receiver/prometheus/registry';
import { decodeRecord } from '../src/events/decoder';
import { RECORD_TYPE } from '../src/events/structs.generated';
import { SelfMetrics } from '../src/metrics/counters';
import { DEFAULT_ROUTES } from '../src/spans/routes/route-policy';
import { RouteStage } from '../src/spans/routes/route-stage';
import type { Span } from '../src/spans/span';
import { SysHttpAssembler } from '../src/spans/sys-http-assembler';
import { FixedClock } from '../src/time/clock';
import { sysConnRecord, sysDataRecord, v4 } from '../test/fixtures/records';

const CONNS = 16;
const SPANS = 8192;

/** The records of SPANS Go-server-like exchanges on CONNS connections (encode-path.ts takes them too). */
export function records(): Buffer[] {
  const out: Buffer[] = [];
  let ts = 1_000_000n;
  for (let c = 0; c < CONNS; c++) out.push(sysConnRecord(RECORD_TYPE.RECORD_SYS_HTTP_CONN_OPEN, { conn_id: BigInt(1000 + c), remote_port: 40000 + c, local_addr: v4('127.0.0.1'), remote_addr: v4('127.0.0.1'), ts_ns: ts }));
  const ids = Buffer.alloc(32);
  for (let i = 0; i < SPANS; i++) {
    const c = BigInt(1000 + (i % CONNS));
    ids.writeUInt32LE(i * 2654435761 >>> 0, 0);
    ids.writeUInt32LE(i, 4);
    ids.writeUInt32LE((0xdeadbeef ^ i) >>> 0, 16);
    ids.writeUInt32LE((i * 7 + 1) >>> 0, 24);
    const remote = i % 3 === 0;
    const req = `GET /items/${i % 4} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: spanbridge-bench\r\n${remote ? `traceparent: 00-${ids.toString('hex', 0, 16)}-${ids.toString('hex', 24, 32)}-01\r\n` : ''}\r\n`;
    out.push(sysDataRecord(req, { conn_id: c, ts_ns: (ts += 20_000n), tid: 100 + (i % CONNS), flags: 1 | (remote ? 4 : 0), direction: 0, role: 1, trace_id: ids.subarray(0, 16), span_id: ids.subarray(16, 24), parent_span_id: ids.subarray(24, 32) }));
    const resp = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 07 Dec 2026 23:40:00 GMT\r\nContent-Length: 13\r\n\r\n{"id":"1234"}';
    out.push(sysDataRecord(resp, { conn_id: c, ts_ns: (ts += 40_000n), tid: 100 + (i % CONNS), flags: 2, direction: 1, role: 1 }, 'GET /items/{id}'));
  }
  return out;
}

function main(): void {
  const passes = Number(process.argv[2] ?? 20);
  const recs = records();
  const metrics = new SelfMetrics();
  const resource = { attributes: { 'service.name': 'goserver', 'process.pid': 7 } };
  const routes = new RouteStage(DEFAULT_ROUTES, metrics);
  routes.register(resource, undefined, 'go');
  const red = new RedMetricsSink(new HistogramStore(HTTP_DURATION_BUCKETS), metrics, new PrometheusRegistry());
  let batch = new TraceBatch();
  let bytes = 0;
  const onSpan = (span: Span): void => {
    const s = routes.apply(span);
    red.add(s);
    if (batch.push(s) >= 2048) {
      const req = batch.finishInPlace();
      bytes += req.body.length;
      req.release();
      batch = new TraceBatch();
    }
  };
  const results: number[] = [];
  for (let p = 0; p < passes + 5; p++) {
    // A fresh assembler per pass (connections opened again); the records are the ring's copies, reused.
    const asm = new SysHttpAssembler({ clock: new FixedClock(1_700_000_000_000_000_000n), metrics, resourceOf: () => resource, onSpan: (s) => onSpan(s) });
    const c0 = process.cpuUsage();
    for (const r of recs) {
      const rec = decodeRecord(r, metrics);
      if (rec && (rec.type === 'sys_http_data' || rec.type === 'sys_http_conn_open' || rec.type === 'sys_http_conn_close' || rec.type === 'sys_http_route')) asm.onRecord(rec);
    }
    const c = process.cpuUsage(c0);
    if (p >= 5) results.push(((c.user + c.system) * 1000) / SPANS);
  }
  results.sort((a, b) => a - b);
  console.log(`span path: min ${results[0]!.toFixed(0)} ns/span, median ${results[results.length >> 1]!.toFixed(0)} ns/span over ${passes} passes of ${SPANS} spans (${bytes} OTLP bytes)`);
}

// Run, not imported (encode-path.ts imports records()).
if (require.main === module) main();
