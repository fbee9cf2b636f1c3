/**
 * The one internal span model. Everything upstream produces it; conversion to OTLP (or to the
 * JSON lines of --print-spans) happens at the edge, as pure functions. Declared once, in the leaf
 * contract shared with the Collector-facing module (receiver/model.ts, which imports nothing), so
 * the span the agent builds is by definition the span receiver/ accepts.
 */
export { SAMPLED_FLAG, isSampled, type Attributes, type AttributeValue, type Resource, type Span, type SpanIdWords, type SpanKind, type StatusCode } from '../../receiver/model';
