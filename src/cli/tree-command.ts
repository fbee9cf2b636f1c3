/**
 * `spanbridge tree [FILE]`: spans recorded with `--print-spans json` (a file, or stdin) printed as
 * one indented tree per trace, in order of each trace's first span. Lines that are not span JSON
 * (logs mixed in) are skipped and counted.
 */
import type { PrintedSpan } from '../spans/print-json';
import type { Resource, Span } from '../spans/span';
import { formatTraceTree, printedToSpan } from '../spans/trace-tree';

export const TREE_USAGE = `Usage: spanbridge tree [FILE]

Prints spans recorded with \`spanbridge run --print-spans json\` (FILE, or stdin) as one indented
tree per trace: service, span name, status, a duration bar.

  spanbridge run --exe api --print-spans json > spans.jsonl    # record
  spanbridge tree spans.jsonl                                   # look later
`;

export function treesFromJsonLines(text: string, color = false): { text: string; traces: number; skipped: number } {
  const traces = new Map<string, Span[]>();
  const resources = new Map<string, Resource>();
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let span: Span;
    try {
      const p = JSON.parse(line) as PrintedSpan;
      if (typeof p.traceId !== 'string' || typeof p.spanId !== 'string' || typeof p.startTimeUnixNano !== 'string') throw new Error('not a span');
      span = printedToSpan(p, resources);
    } catch {
      skipped++;
      continue;
    }
    const list = traces.get(span.traceId) ?? [];
    list.push(span);
    traces.set(span.traceId, list);
  }
  const blocks = [...traces.values()].map((spans) => formatTraceTree(spans, { color }));
  return { text: blocks.map((b) => `${b}\n\n`).join(''), traces: traces.size, skipped };
}
