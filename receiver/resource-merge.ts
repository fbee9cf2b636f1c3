/**
 * OTEL_RESOURCE_ATTRIBUTES of the agent, merged into every resource it exports.
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
import { envValue, type Env, type Warn } from './otlp/config';

/** `k1=v1,k2=v2`, keys and values trimmed and percent-decoded; bad entries warned about and skipped. */
export function parseResourceAttributesEnv(raw: string | undefined, warn: Warn, source = 'OTEL_RESOURCE_ATTRIBUTES'): Attributes {
  const out: Attributes = {};
  if (!raw) return out;
  for (const entry of raw.split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      warn(`resource: ignoring entry ${JSON.stringify(entry.trim())} in ${source}: expected key=value`);
      continue;
    }
    try {
      const key = decodeURIComponent(entry.slice(0, eq).trim());
      if (key === '') throw new URIError('empty key');
      out[key] = decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      warn(`resource: ignoring entry ${JSON.stringify(entry.trim())} in ${source}: invalid percent-encoding`);
    }
  }
  return out;
}

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

/** The agent's own resource, for its self-metrics. */
export function agentResource(extra: Readonly<Attributes>, env: Env): Resource {
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
      ...(envValue(env, 'OTEL_SERVICE_NAME') ? { 'service.name': envValue(env, 'OTEL_SERVICE_NAME') as string } : {}),
    },
  };
}
