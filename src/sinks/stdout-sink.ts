/**
 * `--print-spans json`: one JSON line per finished, sampled span on stdout (metrics still count
 * unsampled ones: that is the bridge's business).
 */
import type { SpanSink } from './sink';
import { spanToJsonLine } from '../spans/print-json';
import { isSampled } from '../spans/span';

export function stdoutSink(): SpanSink {
  return {
    add(span) {
      if (isSampled(span)) process.stdout.write(`${spanToJsonLine(span)}\n`);
    },
    async shutdown() {
      await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    },
  };
}
