/**
 * The instrumentation scope of everything spanbridge reports: one object, shared, so that spans
 * and metrics of a resource land in one ScopeSpans / ScopeMetrics. Its own module so the metrics
 * path reaches it without loading the SDK span shape (to-readable-span.ts and @opentelemetry/api).
 */
import { version as packageVersion } from '../../package.json';
import type { OtelInstrumentationScope } from './readable-span-types';

export const INSTRUMENTATION_SCOPE: OtelInstrumentationScope = Object.freeze({
  name: 'spanbridge',
  version: packageVersion,
});
