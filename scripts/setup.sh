#!/usr/bin/env bash
# `make setup`: installs what a fresh Debian 12 machine lacks, idempotently, then builds.
#   - Debian packages: clang, llvm, libbpf-dev, bpftool, binutils, make, gcc, curl, chromium (web view test)
#   - npm dependencies (npm ci, re-run only when package-lock.json changes)
#   - Go toolchains used by the tests (the machine's Go, plus go1.22 through the module proxy)
#   - the stock OpenTelemetry Collector (built from upstream modules; cached, see build-collector.sh)
#   - podman (runc, cgroupfs) and its Docker-compatible API socket (scripts/setup-podman.sh)
#   - BPF objects and the TypeScript build
# Heavy results are cached under ${SPANBRIDGE_CACHE_DIR:-~/.cache/spanbridge}, keyed by their inputs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf 'setup: %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------
need_pkgs=()
for p in clang llvm libbpf-dev bpftool binutils make gcc curl iproute2 util-linux chromium; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
done
if ((${#need_pkgs[@]})); then
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${need_pkgs[*]} (run make setup as root, or install them)"; exit 1
  fi
  log "installing Debian packages: ${need_pkgs[*]}"
  apt-get update -qq
  # A mirror can briefly miss an archive of a recommended package (seen with chromium): retry
  # once with fresh lists and without recommends before giving up.
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null; then
    log "apt-get install failed; retrying without recommended packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  fi
fi

# --- Node.js ---------------------------------------------------------------------------------
if ! command -v node >/dev/null || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=18)?0:1)'; then
  log "Node.js >= 20.18 is required (found: $(node --version 2>/dev/null || echo none))"; exit 1
fi
stamp=node_modules/.spanbridge-lock-hash
want=$(sha256sum package-lock.json | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# --- Go --------------------------------------------------------------------------------------
if ! command -v go >/dev/null; then
  log "Go is required (>= 1.25 to build the Collector); not found on PATH"; exit 1
fi
# Older Go used by the tests to prove per-version offsets; the go command fetches it from the
# module proxy once and caches it in the module cache.
GOTOOLCHAIN=go1.22.12 go version >/dev/null
for mod in test/apps/*/ demo/*/; do
  [ -f "$mod/go.mod" ] && (cd "$mod" && go mod download)
done

# --- the stock Collector, BPF objects, TypeScript ------------------------------------------------
bash scripts/build-collector.sh
# --- podman + its Docker-compatible API for the testcontainers suites (test/integration/containers*)
bash scripts/setup-podman.sh
# --- third-party frameworks the integration tests trace (pinned; test/frameworks/README.md)
bash scripts/setup-frameworks.sh
# -s: quiet recipes, but compiler errors stay visible.
make --no-print-directory -s bpf ts
log "ready"
