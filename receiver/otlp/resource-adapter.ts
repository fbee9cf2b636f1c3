/**
 * Our `Resource` seen through the SDK `Resource` interface the OTLP serializer reads.
 *
 * The serializer puts spans into one `ResourceSpans` per distinct resource OBJECT (a `Map` keyed
 * by identity). Our model already gives every span of a process the same `Resource` object; this
 * module keeps that property across the conversion by caching one adapter per `Resource` in a
 * `WeakMap`, so the adapter lives exactly as long as the process's resource does and converting
 * the same span twice yields the same adapter.
 */
import type { Attributes as OtelAttributes } from '@opentelemetry/api';
import type { Attributes, Resource } from '../model';
import type { OtelResource } from './readable-span-types';

type RawResourceAttribute = ReturnType<OtelResource['getRawAttributes']>[number];

class ResourceAdapter implements OtelResource {
  /** Our attributes are resolved synchronously by discovery; nothing is ever pending. */
  readonly asyncAttributesPending = false;
  /** Semantic-conventions schema URL: not tracked by our model (see the receiver report). */
  readonly schemaUrl: string | undefined = undefined;

  /** The same object as our resource's attributes (no copy; read-only by our model's contract). */
  constructor(readonly attributes: OtelAttributes) {}

  /** Required by the interface; the serializer never calls it. Attributes of `other` win. */
  merge(other: OtelResource | null): OtelResource {
    if (!other) return this;
    return new ResourceAdapter({ ...this.attributes, ...other.attributes });
  }

  getRawAttributes(): RawResourceAttribute[] {
    return Object.entries(this.attributes);
  }
}

const adapters = new WeakMap<Resource, OtelResource>();

/** The one SDK-shaped resource for `resource`; the same object for the same input, always. */
export function toOtelResource(resource: Resource): OtelResource {
  let adapter = adapters.get(resource);
  if (!adapter) {
    adapter = new ResourceAdapter(resource.attributes satisfies Attributes);
    adapters.set(resource, adapter);
  }
  return adapter;
}
