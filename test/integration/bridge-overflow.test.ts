/**
 * Queue overflow while the stock Collector is down: the bridge holds at most its memory cap (and
 * at most its span count), drops the rest with the exact count and reason, keeps the process's
 * memory near the cap instead of growing with the input, and delivers exactly what it held once
 * the Collector is back.
 */
import { bridgeFromEnv } from '../helpers/delivery';
import v8 from 'node:v8';
import vm from 'node:vm';
import { SPANS_DROPPED, SPANS_EXPORTED, type CollectorBridge } from '../../receiver/index';
import { SelfMetrics } from '../../src/metrics/counters';
import type { Span } from '../../src/spans/span';
import { startCollector, type RunningCollector } from './helpers/collector';
import { syntheticResource, syntheticSpan } from './helpers/bridge-driver';

jest.setTimeout(120_000);

const MiB = 1024 * 1024;
const CAP_BYTES = 4 * MiB;
const SPANS = 20_000;
/** Per-span payload: 4 KiB, so the input (~80 MiB) is 20 times the cap. */
const BLOB = 4096;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('bridge: queue overflow while the Collector is down', () => {
  let collector: RunningCollector | undefined;
  const bridges: CollectorBridge[] = [];

  afterAll(async () => {
    for (const b of bridges) await b.shutdown();
    await collector?.stop();
  });

  it('drops exactly the overflow by reason, stays under the memory cap, delivers what it held', async () => {
    collector = await startCollector();
    await collector.kill();
    const warnings: string[] = [];
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, SPANBRIDGE_PROMETHEUS_PORT: 'off', OTEL_METRICS_EXPORTER: 'none' };
    const log = { warn: (m: string) => warnings.push(m), info: () => {} };
    const byBytes = { metrics: new SelfMetrics(), sentIds: [] as string[] };
    const bytesBridge = bridgeFromEnv({ metrics: byBytes.metrics, log, env, bridge: { queue: { maxQueueBytes: CAP_BYTES, scheduledDelayMs: 100 } } });
    const byCount = { metrics: new SelfMetrics(), sent: [] as Span[] };
    const countBridge = bridgeFromEnv({ metrics: byCount.metrics, log, env, bridge: { queue: { maxQueueSize: 1000, scheduledDelayMs: 100 } } });
    bridges.push(bytesBridge, countBridge);
    await bytesBridge.start();
    await countBridge.start();

    const resource = syntheticResource('bulk');
    // Fixed-size spans (same attribute lengths), so "fits" is decided by position alone.
    const attributes = (i: number) => ({ 'http.request.method': 'GET', 'http.route': '/bulk', 'payload.blob': `${i % 10}`.repeat(BLOB) });

    const before = heapUsed();
    for (let i = 0; i < SPANS; i++) {
      const s = syntheticSpan(resource, { attributes: attributes(i) });
      byBytes.sentIds.push(s.spanId); // ids only: the test must not hold the spans itself
      bytesBridge.add(s);
    }
    await new Promise((r) => setTimeout(r, 500)); // the first batch is taken, serialized and retried
    const state = bytesBridge.batcher!.queueState();
    const after = heapUsed();
    const growth = after - before;
    const dropped = byBytes.metrics.get(SPANS_DROPPED, { reason: 'queue_memory' });
    console.log(
      `overflow: ${SPANS} spans of ~${BLOB} B payload (~${Math.round((SPANS * BLOB) / MiB)} MiB) into a ${CAP_BYTES / MiB} MiB queue: ` +
        `held ${state.spans} spans (${state.bytes} estimated bytes, peak ${bytesBridge.batcher!.peakQueueBytes}), ` +
        `dropped ${dropped} (queue_memory); heap grew by ${(growth / MiB).toFixed(1)} MiB`,
    );
    expect(state.bytes).toBeLessThanOrEqual(CAP_BYTES);
    expect(bytesBridge.batcher!.peakQueueBytes).toBeLessThanOrEqual(CAP_BYTES);
    expect(dropped + state.spans).toBe(SPANS);
    expect(byBytes.metrics.total(SPANS_DROPPED)).toBe(dropped);
    // Held spans plus one serialized request in flight, with room for V8's own overhead;
    // unbounded, the growth would be ~80 MiB.
    expect(growth).toBeLessThan(2 * CAP_BYTES + 8 * MiB);

    // The count bound, on its own bridge: exactly 1000 held, the rest dropped as queue_full.
    const small = syntheticResource('small');
    for (let i = 0; i < 3000; i++) {
      const s = syntheticSpan(small);
      byCount.sent.push(s);
      countBridge.add(s);
    }
    expect(byCount.metrics.get(SPANS_DROPPED, { reason: 'queue_full' })).toBe(2000);
    expect(countBridge.batcher!.queueState().spans).toBe(1000);

    // The Collector comes back: exactly the spans held arrive (the first ones sent), nothing else.
    await collector.restart();
    await bytesBridge.forceFlush();
    await countBridge.forceFlush();
    expect(byBytes.metrics.get(SPANS_EXPORTED)).toBe(state.spans);
    expect(byCount.metrics.get(SPANS_EXPORTED)).toBe(1000);
    const arrived = await collector.waitForSpans(
      (all) => new Set(all.map((s) => s.spanId)).size >= state.spans + 1000,
      30_000,
    );
    const bulk = new Set(arrived.filter((s) => s.resource['service.name'] === 'bulk').map((s) => s.spanId));
    const smallArrived = new Set(arrived.filter((s) => s.resource['service.name'] === 'small').map((s) => s.spanId));
    expect(bulk).toEqual(new Set(byBytes.sentIds.slice(0, state.spans)));
    expect(smallArrived).toEqual(new Set(byCount.sent.slice(0, 1000).map((s) => s.spanId)));
    expect(byBytes.metrics.total(SPANS_DROPPED)).toBe(SPANS - state.spans);
    expect(byCount.metrics.total(SPANS_DROPPED)).toBe(2000);
  });
});
