#!/usr/bin/env bash
# Podman as the container engine for the testcontainers integration tests (no Docker engine and no
# image registry here; see shared/PLATFORM.md "Containers"). Idempotent:
#   - Debian packages podman + runc (crun fails on hybrid cgroups)
#   - /etc/containers/containers.conf: runtime runc, cgroupfs, ulimits no higher than the current
#     ones (higher values fail with EPERM), file events logger (no journald here)
#   - the Docker-compatible API on unix:///run/podman/podman.sock, started only if not answering
# The tests point testcontainers at it with DOCKER_HOST (test/integration/helpers/containers.ts).
# Skipped (with a message) when not root: rootful podman is what the tests use.
set -euo pipefail
log() { printf 'setup-podman: %s\n' "$*" >&2; }
SOCK=${SPANBRIDGE_PODMAN_SOCK:-/run/podman/podman.sock}

if [ "$(id -u)" != 0 ]; then
  log "not root: skipping podman (container tests will be skipped)"; exit 0
fi

need=()
for p in podman runc; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  log "installing Debian packages: ${need[*]}"
  # Others may be installing at the same time: wait for the dpkg lock instead of failing.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" \
    slirp4netns uidmap fuse-overlayfs containernetworking-plugins iptables catatonit >/dev/null
fi

conf=/etc/containers/containers.conf
marker='# spanbridge: written by scripts/setup-podman.sh'
if ! grep -qF "$marker" "$conf" 2>/dev/null; then
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
  # Never ask for more than the current hard limits, and keep to the proven 1024 when higher.
  [ "$nofile" = unlimited ] || [ "$nofile" -gt 1024 ] && nofile=1024
  [ "$nproc" = unlimited ] || [ "$nproc" -gt 1024 ] && nproc=1024
  mkdir -p /etc/containers
  [ -f "$conf" ] && cp "$conf" "$conf.spanbridge-backup"
  cat > "$conf" <<CONF
$marker
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  log "wrote $conf (runc, cgroupfs, ulimits nofile=${nofile} nproc=${nproc})"
fi

answering() {
  curl -sf --max-time 3 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1
}
if ! answering; then
  mkdir -p "$(dirname "$SOCK")"
  rm -f "$SOCK"
  log "starting podman system service on unix://$SOCK"
  setsid nohup podman system service --time=0 "unix://$SOCK" >/var/log/spanbridge-podman-service.log 2>&1 < /dev/null &
  for _ in $(seq 1 50); do answering && break; sleep 0.2; done
  answering || { log "podman API did not answer on $SOCK (see /var/log/spanbridge-podman-service.log)"; exit 1; }
fi
log "podman API ready: DOCKER_HOST=unix://$SOCK"
