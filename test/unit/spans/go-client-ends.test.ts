import type { GoHttpClientRecord } from '../../../src/events/go-http-client';
import { SelfMetrics } from '../../../src/metrics/counters';
import { goClientFields } from '../../fixtures/records';
import { GO_CLIENT_ENDED_EARLY, GO_CLIENT_END_UNMATCHED, GoClientEnds } from '../../../src/spans/go-client-ends';

const rec = (spanId: string, endNs: bigint, bodyOpen = true, pid = 1): GoHttpClientRecord =>
  goClientFields({ pid, startNs: 1n, endNs, spanId, parentSpanId: '', propagation: 'injected-socket', bodyOpen, host: 'h', path: '/', query: '' });

describe('Go client spans wait for their response body to close', () => {
  function setup(opts = {}) {
    const out: [string, bigint, boolean][] = [];
    const metrics = new SelfMetrics();
    const ends = new GoClientEnds((r, end, closed) => out.push([r.spanId, end, closed]), metrics, opts);
    const count = (name: string, reason?: string) =>
      metrics
        .snapshot()
        .filter((m) => m.name === name && (reason === undefined || m.labels.reason === reason))
        .reduce((n, m) => n + m.value, 0);
    return { out, ends, count };
  }

  it('without a body: at once, ending at the response head', () => {
    const { out, ends } = setup();
    ends.add(rec('s1', 100n, false));
    expect(out).toEqual([['s1', 100n, true]]);
    expect(ends.size).toBe(0);
  });

  it('with a body: ends at the close of its body (same pid and span id only)', () => {
    const { out, ends, count } = setup();
    ends.add(rec('s1', 100n));
    ends.add(rec('s1', 100n, true, 2));
    expect(out).toEqual([]);
    ends.end({ type: 'go_http_client_end', pid: 1, spanId: 's1', endNs: 250n });
    expect(out).toEqual([['s1', 250n, true]]);
    ends.end({ type: 'go_http_client_end', pid: 1, spanId: 's1', endNs: 260n });
    expect(count(GO_CLIENT_END_UNMATCHED)).toBe(1);
    expect(ends.size).toBe(1);
  });

  it('a body never closed: ends at the head after the wait, marked and counted; also at stop and overflow', () => {
    const { out, ends, count } = setup({ maxWaitMs: 1, maxPending: 2 });
    ends.add(rec('old', 100n));
    ends.add(rec('new', 5_000_000n));
    ends.sweep(1_500_000n);
    expect(out).toEqual([['old', 100n, false]]);
    expect(count(GO_CLIENT_ENDED_EARLY, 'timeout')).toBe(1);
    ends.add(rec('n2', 5_000_001n));
    ends.add(rec('n3', 5_000_002n)); // over maxPending: the oldest ends now
    expect(out[1]).toEqual(['new', 5_000_000n, false]);
    expect(count(GO_CLIENT_ENDED_EARLY, 'overflow')).toBe(1);
    ends.add(rec('other', 5_000_003n, true, 7)); // over maxPending again: n2 ends
    ends.flush(7); // process 7 is gone
    expect(out.slice(2)).toEqual([['n2', 5_000_001n, false], ['other', 5_000_003n, false]]);
    expect(count(GO_CLIENT_ENDED_EARLY, 'process_gone')).toBe(1);
    ends.flush();
    expect(out.slice(4).map((o) => o[0])).toEqual(['n3']);
    expect(count(GO_CLIENT_ENDED_EARLY)).toBe(5);
    expect(ends.size).toBe(0);
  });
});
