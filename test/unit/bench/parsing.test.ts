import { parseWrk } from '../../../bench/lib/load';
import { startupGaps } from '../../../bench/sections/agent-self';
import { reportedLinking } from '../../../bench/sections/linking';
import { areaOf, topFrames } from '../../../bench/sections/profile';

describe('bench parsing', () => {
  test('wrk output: requests per second, count and errors', () => {
    const out = `Running 5s test @ http://127.0.0.1:18080/items/1
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    35.94ms   95.90ms 595.82ms   91.76%
    Req/Sec    17.76k    11.28k   42.77k    70.27%
  74241 requests in 5.26s, 8.35MB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 3
Requests/sec:  14113.51
Transfer/sec:      1.59MB`;
    expect(parseWrk(out)).toEqual({ rps: 14113.51, requests: 74241, errors: 10 });
    expect(() => parseWrk('garbage')).toThrow(/unexpected wrk output/);
  });

  test('cpu profile: self time by frame, idle and start-up left out', () => {
    const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(idle)') },
        { id: 2, callFrame: frame('decode', 'file:///x/dist/src/events/decoder.js', 9) },
        { id: 3, callFrame: frame('(garbage collector)') },
      ],
      samples: [2, 1, 2, 3, 2],
      timeDeltas: [100, 500, 100, 100, 200],
    };
    const all = topFrames(profile);
    expect(all[0]).toEqual({ frame: 'decode /x/dist/src/events/decoder.js:10', selfPct: 80 });
    expect(all[1]).toEqual({ frame: '(garbage collector)', selfPct: 20 });
    expect(all.some((f) => f.frame === '(idle)')).toBe(false);
    // the first sample (at 100 us) is start-up
    const later = topFrames(profile, 150);
    expect(later.find((f) => f.frame.startsWith('decode'))?.selfPct).toBeCloseTo(75);
  });
});

describe('bench profile areas', () => {
  test('frames map to the part of the agent they belong to', () => {
    expect(areaOf('file:///r/dist/src/spans/go-server-span.js', 'goServerSpan')).toBe('span assembly');
    expect(areaOf('file:///r/node_modules/@opentelemetry/otlp-transformer/build/x.js', 'writeString')).toBe('OTLP encoding');
    expect(areaOf('file:///r/dist/receiver/prometheus/registry.js', 'observeRed')).toBe('RED metrics / Prometheus');
    expect(areaOf('', '(garbage collector)')).toBe('(garbage collector)');
    expect(areaOf('', 'writev')).toBe('native (syscalls, libuv, builtins)');
  });
});

describe('agent start-up gaps', () => {
  test('time before the first log line and the largest gaps, named by the line ending them', () => {
    const log = [
      '2026-11-25T03:28:13.100Z INFO  prometheus: serving metrics',
      'verifier noise without a timestamp',
      '2026-11-25T03:28:13.200Z INFO  capabilities: kernel 6.18',
      '2026-11-25T03:28:14.400Z INFO  attached: go_http tracer loaded',
      '2026-11-25T03:28:14.500Z INFO  running',
    ].join('\n');
    const gaps = startupGaps(log, Date.parse('2026-11-25T03:28:12.600Z'), 2);
    expect(gaps).toEqual([
      { ms: 1200, before: 'attached: go_http tracer loaded' },
      { ms: 500, before: '(first log line) prometheus: serving metrics' },
    ]);
    expect(startupGaps('', 0)).toEqual([]);
  });
});

describe('linking report line', () => {
  const line =
    "2026-12-07T02:03:00.000Z INFO  strategy: client span as the child of the server request that made it (in-process): FALLBACK — Go: goroutine ancestry (uprobes); Python asyncio (CPython 3.10-3.13 (uprobes at Context.run; stripped builds: not linked)): the server request of the writing task; not linked: Node.js, Deno, Bun (event loops; their client spans start their own trace) (Node 20 keeps no async context)";

  test("picks the runtime's part, splitting only at '; ' outside parentheses", () => {
    expect(reportedLinking(line, /asyncio/i)).toBe('Python asyncio (CPython 3.10-3.13 (uprobes at Context.run; stripped builds: not linked)): the server request of the writing task');
    expect(reportedLinking(line, /node/i)).toBe('not linked: Node.js, Deno, Bun (event loops; their client spans start their own trace) (Node 20 keeps no async context)');
  });

  test('says so when the start-up report has no such line, and falls back to the whole line when nothing matches', () => {
    expect(reportedLinking('2026-12-07T02:03:00.000Z INFO  running', /node/i)).toMatch(/no in-process-linking line/);
    expect(reportedLinking(line, /java/i)).toMatch(/^FALLBACK: Go: goroutine ancestry/);
  });
});
