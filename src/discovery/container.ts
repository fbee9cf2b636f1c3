/**
 * Which container a process runs in, from its cgroup path (/proc/<pid>/cgroup). Engines name the
 * cgroup of a container after its 64-hex id, in a few shapes:
 *
 *   docker (cgroupfs)        /docker/<id>
 *   docker (systemd)         /system.slice/docker-<id>.scope
 *   podman (cgroupfs)        /libpod_parent/libpod-<id>          (+ /container when it runs systemd)
 *   podman (systemd)         /machine.slice/libpod-<id>.scope    (rootless: .../user.slice/libpod-<id>.scope)
 *   containerd (k8s)         /kubepods/burstable/pod<uid>/<id>   or .../cri-containerd-<id>.scope
 *   cri-o (k8s)              /kubepods.slice/.../crio-<id>.scope
 *   nerdctl / ECS            /default/<id>, /ecs/<task>/<id>
 *
 * The engines' monitor processes (podman's conmon: libpod-conmon-<id>.scope, cri-o's
 * crio-conmon-<id>.scope) are not in the container and are not matched. With nested cgroups
 * (docker in docker) the innermost id wins: that is the container the process runs in.
 */
/** One path segment naming a container: an optional engine prefix, the id, an optional `.scope`. */
const SEGMENT = /^(?:(?:docker|libpod|crio|cri-containerd|containerd)-)?([0-9a-f]{64})(?:\.scope)?$/;

/** The container id in one cgroup path (e.g. `/system.slice/docker-<id>.scope`), or undefined. */
export function containerIdFromCgroupPath(path: string): string | undefined {
  let found: string | undefined;
  for (const seg of path.split('/')) {
    const m = SEGMENT.exec(seg);
    if (m) found = m[1];
  }
  return found;
}

/**
 * The container id from the text of /proc/<pid>/cgroup (v1 lines `N:controllers:/path`, v2 line
 * `0::/path`, or both on hybrid hosts), or undefined for a process outside any container.
 */
export function parseContainerId(cgroupText: string): string | undefined {
  for (const line of cgroupText.split('\n')) {
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    if (second < 0) continue;
    const id = containerIdFromCgroupPath(line.slice(second + 1).trim());
    if (id) return id;
  }
  return undefined;
}

/** A `--container` value: 1 to 64 hex digits (an id or a prefix of one, as engines print them). */
export function isContainerIdPrefix(value: string): boolean {
  return /^[0-9a-f]{1,64}$/.test(value);
}

export function normalizeContainerIdPrefix(value: string): string {
  return value.trim().toLowerCase();
}

export function containerMatches(prefix: string, containerId: string | undefined): boolean {
  return containerId !== undefined && containerId.startsWith(prefix);
}
