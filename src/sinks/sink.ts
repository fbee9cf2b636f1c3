/**
 * Where finished spans go after the route stage: every sink gets every span (sampling is each
 * sink's business: RED metrics count unsampled requests, trace outputs drop them) and is flushed
 * last at stop, once every tracer is closed.
 */
import type { Span } from '../spans/span';

export interface SpanSink {
  add(span: Span): void;
  shutdown(): Promise<void>;
}
