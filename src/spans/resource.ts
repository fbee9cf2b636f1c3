/**
 * The resource of a traced process, per OpenTelemetry semantic conventions. service.name comes
 * from the target's own OTEL_SERVICE_NAME (or service.name in its OTEL_RESOURCE_ATTRIBUTES), then
 * a configured override, then the executable name.
 */
import { hostname } from 'node:os';
import type { ProcessInfo } from '../discovery/process-info';
import type { Attributes, Resource } from './span';
import { AGENT_VERSION } from '../version';

export interface ResourceOptions {
  /** From a selection's service name override; used when the process sets none itself. */
  readonly serviceNameOverride?: string;
  /** Runtime of the target: process.runtime.* attributes. */
  readonly runtime?: { name: string; version?: string };
  /** Language of the target, for telemetry.sdk.language. */
  readonly language?: string;
}

/** Parses OTEL_RESOURCE_ATTRIBUTES (`k=v,k2=v2`, values percent-encoded). Bad entries skipped. */
export function parseResourceAttributes(raw: string | undefined): Attributes {
  const out: Attributes = {};
  if (!raw) return out;
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    try {
      out[key] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      // malformed percent-encoding: skip this entry only
    }
  }
  return out;
}

export function processResource(proc: ProcessInfo, options: ResourceOptions = {}): Resource {
  const fromEnv = parseResourceAttributes(proc.env.OTEL_RESOURCE_ATTRIBUTES);
  const serviceName =
    proc.env.OTEL_SERVICE_NAME?.trim() ||
    (typeof fromEnv['service.name'] === 'string' ? (fromEnv['service.name'] as string) : '') ||
    options.serviceNameOverride ||
    proc.exeName;
  const host = hostname();
  const attributes: Attributes = {
    ...fromEnv,
    'service.name': serviceName,
    'service.instance.id': `${host}-${proc.pid}-${proc.startTicks}`,
    'telemetry.sdk.name': 'spanbridge',
    'telemetry.sdk.version': AGENT_VERSION,
    'telemetry.sdk.language': options.language ?? 'unknown',
    'host.name': host,
    'process.pid': proc.pid,
    'process.executable.name': proc.exeName,
    'process.executable.path': proc.exePath,
  };
  // A containerised process: its id from the cgroup path (process.pid stays the host pid).
  if (proc.containerId) attributes['container.id'] = proc.containerId;
  if (options.runtime) {
    attributes['process.runtime.name'] = options.runtime.name;
    if (options.runtime.version) attributes['process.runtime.version'] = options.runtime.version;
  }
  return { attributes };
}

/**
 * The resource of a child forked (not exec'd) by a traced process, from its parent's: the same
 * program, environment and service, another pid. Used for a child that is gone before the agent
 * could read /proc (a short-lived fork); its start time comes from the fork's monotonic time in
 * clock ticks (USER_HZ 100), what /proc/<pid>/stat says on a host that never suspended.
 */
export function forkedResource(parent: Resource, pid: number, forkNs: bigint): Resource {
  const host = String(parent.attributes['host.name'] ?? hostname());
  return {
    attributes: {
      ...parent.attributes,
      'service.instance.id': `${host}-${pid}-${forkNs / 10_000_000n}`,
      'process.pid': pid,
    },
  };
}
