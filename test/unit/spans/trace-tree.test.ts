/**
 * The tree printer and the trace buffer on spans recorded from the demo (frontend -> backend,
 * `--print-spans json`, linked by same-node black-box correlation on a locked-down kernel).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SelfMetrics } from '../../../src/metrics/counters';
import type { PrintedSpan } from '../../../src/spans/print-json';
import type { Span } from '../../../src/spans/span';
import { TraceBuffer, type FinishedTrace } from '../../../src/spans/trace-tree-buffer';
import { buildTraceTree, durationBar, flattenTree, formatDuration, formatTraceTree, printedToSpan, traceBounds } from '../../../src/spans/trace-tree';

const RECORDED: Span[] = readFileSync(join(__dirname, '../../fixtures/demo-spans.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => printedToSpan(JSON.parse(l) as PrintedSpan));

function trace(prefix: string): Span[] {
  return RECORDED.filter((s) => s.traceId.startsWith(prefix));
}

describe('trace tree', () => {
  it('builds the tree: frontend SERVER -> two CLIENT calls -> backend SERVER each, children by start time', () => {
    const rows = flattenTree(buildTraceTree(trace('335259f7')));
    expect(rows.map((r) => `${'  '.repeat(r.depth)}${r.span.resource.attributes['service.name']} ${r.span.kind} ${r.span.name}`)).toEqual([
      'demo-frontend SERVER GET /shop/{item}',
      '  demo-frontend CLIENT GET',
      '    demo-backend SERVER GET /price/{item}',
      '  demo-frontend CLIENT GET',
      '    demo-backend SERVER GET /stock/{item}',
    ]);
    expect(rows.every((r) => !r.orphan)).toBe(true);
  });

  it('prints service, span name, status and a duration bar, errors included', () => {
    const text = formatTraceTree(trace('b4c2fae5'), { barWidth: 20 });
    const lines = text.split('\n');
    expect(lines[0]).toBe('trace b4c2fae5ae4a3a7ba1c60b9c8ff9d0d2  5 spans, 2 services, 19.1 ms'.replace('b4c2fae5ae4a3a7ba1c60b9c8ff9d0d2', trace('b4c2fae5')[0].traceId));
    expect(lines).toHaveLength(6);
    expect(lines[1]).toMatch(/^ {2}demo-frontend {2}SERVER GET \/shop\/\{item\} +502 ERROR {2}\|█{20}\| +19\.1 ms$/);
    expect(lines[2]).toMatch(/^ {2}demo-frontend {4}CLIENT GET → 127\.0\.0\.1:27181 +500 ERROR {2}\|[ █]{20}\| +3\.85 ms$/);
    expect(lines[3]).toMatch(/^ {2}demo-backend {7}SERVER GET \/price\/\{item\} +500 ERROR/);
    expect(lines[5]).toMatch(/demo-backend {7}SERVER GET \/stock\/\{item\} +200 /);
    // every bar has the same width, inside the trace's range
    for (const l of lines.slice(1)) expect(/\|([ █]+)\|/.exec(l)![1]).toHaveLength(20);
  });

  it('colour only when asked', () => {
    expect(formatTraceTree(trace('b4c2fae5'))).not.toContain('\x1b[');
    expect(formatTraceTree(trace('b4c2fae5'), { color: true })).toContain('\x1b[31m502 ERROR');
  });

  it('a span whose parent is elsewhere is a root marked ↑; a lone span still prints', () => {
    const t = trace('dfe9acdf').filter((s) => s.kind !== 'SERVER' || s.parentSpanId !== ''); // drop the frontend root
    const roots = buildTraceTree(t);
    expect(roots).toHaveLength(2);
    expect(roots.every((r) => r.orphan)).toBe(true);
    expect(formatTraceTree(t)).toMatch(/CLIENT GET → 127\.0\.0\.1:27181 ↑/);
    expect(formatTraceTree([t[0]]).split('\n')).toHaveLength(2);
    expect(formatTraceTree([])).toBe('');
  });

  it('bars and durations', () => {
    const spans = trace('335259f7');
    const b = traceBounds(spans);
    const root = spans.find((s) => s.parentSpanId === '')!;
    expect(durationBar(root, b, 10)).toBe('██████████');
    expect(formatDuration(0.25)).toBe('250 µs');
    expect(formatDuration(12.34)).toBe('12.3 ms');
    expect(formatDuration(2500)).toBe('2.50 s');
  });
});

describe('trace buffer', () => {
  function setup(opts: { quietMs?: number; maxTraces?: number; maxSpansPerTrace?: number } = {}) {
    let now = 1000;
    const done: FinishedTrace[] = [];
    const metrics = new SelfMetrics();
    const buf = new TraceBuffer({ quietMs: opts.quietMs ?? 1500, maxTraces: opts.maxTraces ?? 100, maxSpansPerTrace: opts.maxSpansPerTrace, recentLimit: 2, onFinished: (t) => done.push(t), metrics, now: () => now });
    return { buf, done, metrics, advance: (ms: number) => (now += ms) };
  }

  it('a trace is finished after the quiet period, not before', () => {
    const { buf, done, advance } = setup();
    for (const s of trace('335259f7')) buf.add(s);
    advance(1499);
    buf.sweep();
    expect(done).toHaveLength(0);
    buf.add(trace('dfe9acdf')[0]);
    advance(1);
    buf.sweep();
    expect(done.map((t) => [t.traceId.slice(0, 8), t.spans.length])).toEqual([['335259f7', 5]]);
    advance(1500);
    buf.sweep();
    expect(done).toHaveLength(2);
    expect(buf.openTraces).toBe(0);
  });

  it('activity keeps a trace open; late spans start a new group marked late', () => {
    const { buf, done, advance } = setup();
    const [a, b, c] = trace('335259f7');
    buf.add(a);
    advance(1000);
    buf.add(b);
    advance(1000);
    buf.sweep();
    expect(done).toHaveLength(0);
    advance(600);
    buf.sweep();
    expect(done[0].spans).toHaveLength(2);
    buf.add(c);
    advance(2000);
    buf.sweep();
    expect(done[1]).toMatchObject({ late: true, spans: [c] });
  });

  it('bounded: too many open traces finishes the least recently active early, counted', () => {
    const { buf, done, metrics } = setup({ maxTraces: 2 });
    const [t1, t2, t3] = [trace('335259f7'), trace('dfe9acdf'), trace('b4c2fae5')];
    buf.add(t1[0]);
    buf.add(t2[0]);
    buf.add(t1[1]); // t1 is now the most recently active
    buf.add(t3[0]);
    expect(done.map((t) => [t.traceId.slice(0, 8), t.evicted])).toEqual([['dfe9acdf', true]]);
    expect(buf.evictions).toBe(1);
    expect(metrics.total('spanbridge_trace_view_evicted_total')).toBe(1);
  });

  it('bounded spans per trace, counted; recent keeps the newest finished traces', () => {
    const { buf, done, metrics } = setup({ maxSpansPerTrace: 3 });
    for (const s of trace('335259f7')) buf.add(s);
    buf.flush();
    expect(done[0]).toMatchObject({ droppedSpans: 2 });
    expect(done[0].spans).toHaveLength(3);
    expect(metrics.total('spanbridge_trace_view_spans_dropped_total')).toBe(2);
    for (const s of [...trace('dfe9acdf'), ...trace('b4c2fae5')]) buf.add(s);
    buf.flush();
    expect(buf.recent().map((t) => t.traceId.slice(0, 8))).toEqual(['b4c2fae5', 'dfe9acdf']);
  });
});
