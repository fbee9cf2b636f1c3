/**
 * The agent's resource attributes (OTEL_RESOURCE_ATTRIBUTES, resolved by its config layer), merged
 * into every resource it exports.
 *
 * Precedence (documented in docs/collector.md): a traced process's own attributes win — its
 * service.name, process.*, and anything it set in its own OTEL_RESOURCE_ATTRIBUTES — and the
 * agent's variable fills in what the process does not say (deployment.environment,
 * k8s.cluster.name, ...). The agent describes where it runs; it must not rename the services it
 * observes. For the agent's own resource (self-metrics) the variable applies in full.
 *
 * Merged resources are cached per input object (WeakMap), so spans of one process still share one
 * resource object, which the OTLP serializer groups by.
 */
import { hostname } from 'node:os';
import { version as packageVersion } from '../package.json';
import type { Attributes, Resource } from './model';

export class ResourceMerger {
  private readonly cache = new WeakMap<Resource, Resource>();
  private readonly empty: boolean;

  constructor(private readonly extra: Readonly<Attributes>) {
    this.empty = Object.keys(extra).length === 0;
  }

  /** `resource` with the agent's attributes filled in; the same object for the same input. */
  merge(resource: Resource): Resource {
    if (this.empty) return resource;
    let merged = this.cache.get(resource);
    if (!merged) {
      merged = { attributes: { ...this.extra, ...resource.attributes } };
      this.cache.set(resource, merged);
    }
    return merged;
  }
}

/** The agent's own resource, for its self-metrics; `serviceName` (OTEL_SERVICE_NAME) wins. */
export function agentResource(extra: Readonly<Attributes>, serviceName?: string): Resource {
  const host = hostname();
  return {
    attributes: {
      'service.name': 'spanbridge',
      'service.instance.id': `${host}-${process.pid}`,
      'telemetry.sdk.name': 'spanbridge',
      'telemetry.sdk.language': 'nodejs',
      'telemetry.sdk.version': packageVersion,
      'host.name': host,
      'process.pid': process.pid,
      'process.runtime.name': 'nodejs',
      'process.runtime.version': process.versions.node,
      ...extra,
      ...(serviceName ? { 'service.name': serviceName } : {}),
    },
  };
}
