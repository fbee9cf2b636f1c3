/**
 * Maps pinned by name (LIBBPF_PIN_BY_NAME: shared between the agent's objects through bpffs) are
 * created and pinned here, one object at a time on the main thread, before its load. libbpf then
 * reuses every such map instead of creating it.
 *
 * Why: objects load concurrently (LibbpfObject.loadAsync), and libbpf creates a missing pinned
 * map during the load: two loads on a host without the pin yet would both create it and one would
 * fail to pin it (EEXIST). And a load that fails unpins the maps it created itself, while another
 * object may already use them: the next load would then create a second map, and the two objects
 * would no longer share one. A map pinned here is never one that libbpf created, so neither
 * happens. libbpf checks a reused map's type, key and value sizes, max_entries, flags and
 * map_extra: those are the object's own definitions.
 */
import { existsSync } from 'node:fs';
import type { Native, Ptr } from './native';

/** struct bpf_map_create_opts (libbpf 1.1): sz, btf_fd, 4 type ids/fds, map_flags, map_extra, numa_node, map_ifindex. */
const CREATE_OPTS_SIZE = 48;
const CREATE_OPTS_MAP_FLAGS = 28;
const CREATE_OPTS_MAP_EXTRA = 32;

export interface PinOutcome {
  /** Pins created by this call. */
  readonly created: string[];
  /**
   * Pins that could not be created, with why: libbpf then creates (or fails to reuse) the map
   * itself during the load, as it would without this step, and reports it.
   */
  readonly failed: string[];
}

/** Creates and pins every map of `obj` (opened, not loaded) whose pin path does not exist yet. */
export function createMissingPins(n: Native, obj: bigint): PinOutcome {
  const created: string[] = [];
  const failed: string[] = [];
  for (let m = n.nextMap(obj, null) as Ptr; m !== null; m = n.nextMap(obj, m) as Ptr) {
    const path = n.mapPinPath(m) as string | null;
    if (!path || existsSync(path)) continue;
    const opts = Buffer.alloc(CREATE_OPTS_SIZE);
    opts.writeBigUInt64LE(BigInt(CREATE_OPTS_SIZE), 0);
    opts.writeUInt32LE(n.mapFlags(m) as number, CREATE_OPTS_MAP_FLAGS);
    opts.writeBigUInt64LE(BigInt(n.mapExtra(m) as number | bigint), CREATE_OPTS_MAP_EXTRA);
    const fd = n.mapCreate(n.mapType(m), n.mapName(m), n.mapKeySize(m), n.mapValueSize(m), n.mapMaxEntries(m), opts) as number;
    if (fd < 0) {
      failed.push(`${path}: create: errno ${-fd}`);
      continue;
    }
    const r = n.objPin(fd, path) as number;
    n.close(fd);
    // EEXIST: another agent pinned it meanwhile; libbpf reuses that one.
    if (r === 0) created.push(path);
    else if (-r !== 17) failed.push(`${path}: pin: errno ${-r}`);
  }
  return { created, failed };
}
