import * as catalogue from '../../../src/metrics/catalogue';
import { Counter, Gauge } from '../../../src/metrics/catalogue';
import { SelfMetrics } from '../../../src/metrics/counters';
import * as receiverMetrics from '../../../receiver/self-metrics';

interface Handle {
  readonly name: string;
  readonly help: string;
}
const handles: Handle[] = (Object.values(catalogue) as unknown[]).filter((v): v is Handle => v instanceof Counter || v instanceof Gauge);

describe('self-metrics catalogue', () => {
  it('declares each metric once, with Prometheus-style names (counters end in _total)', () => {
    const names = handles.map((h) => h.name);
    expect(new Set(names).size).toBe(names.length);
    for (const h of handles) {
      expect(h.name).toMatch(/^spanbridge_[a-z_]+$/);
      expect(h.help.length).toBeGreaterThan(10);
      if (h instanceof Counter) expect(h.name).toMatch(/_total$/);
      else expect(h.name).not.toMatch(/_total$/);
    }
  });

  it('shares only spanbridge_spans_dropped_total with receiver/, whose help text it keeps', () => {
    const receiverNames = new Set((Object.values(receiverMetrics) as unknown[]).filter((v): v is string => typeof v === 'string'));
    expect(handles.filter((h) => receiverNames.has(h.name)).map((h) => h.name)).toEqual(['spanbridge_spans_dropped_total']);
    const metrics = new SelfMetrics();
    receiverMetrics.countDropped(metrics, 'queue_full');
    const fromReceiver = metrics.snapshot()[0].description;
    expect(catalogue.spansDropped.help).toBe(fromReceiver);
  });

  it('counts and sets through the handles, with the declared name and help', () => {
    const metrics = new SelfMetrics();
    catalogue.kernelDrops.set(metrics, { reason: 'ring_full' }, 7);
    catalogue.kernelDrops.set(metrics, { reason: 'ring_full' }, 9);
    catalogue.recordsDecoded.add(metrics, { type: 'sys_http_data' });
    catalogue.recordsDecoded.add(metrics, { type: 'sys_http_data' }, 2);
    expect(catalogue.kernelDrops.get(metrics, { reason: 'ring_full' })).toBe(9);
    expect(catalogue.recordsDecoded.total(metrics)).toBe(3);
    expect(metrics.snapshot()).toEqual([
      { name: 'spanbridge_kernel_drops', description: catalogue.kernelDrops.help, kind: 'gauge', labels: { reason: 'ring_full' }, value: 9 },
      { name: 'spanbridge_records_total', description: catalogue.recordsDecoded.help, kind: 'counter', labels: { type: 'sys_http_data' }, value: 3 },
    ]);
  });
});
