/**
 * The live trace view: sampled spans grouped into traces; a trace quiet for a moment is finished,
 * printed as a tree (--print-spans tree) and kept for the web page (--web-port).
 */
import type { SpanSink } from './sink';
import { isSampled } from '../spans/span';
import type { TraceBuffer } from '../spans/trace-tree-buffer';
import type { WebServer } from '../web/server';

export function traceViewSink(buffer: TraceBuffer, web: WebServer | undefined): SpanSink {
  buffer.start();
  return {
    add(span) {
      if (isSampled(span)) buffer.add(span);
    },
    async shutdown() {
      buffer.stop();
      buffer.flush();
      await web?.close();
      await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    },
  };
}
