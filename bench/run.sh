#!/usr/bin/env bash
# `make bench` (after `make setup`): installs wrk if missing (Debian package, idempotent), builds
# the Go test server and the bench's Go programs into build/bench/bin, compiles the harness with the
# project's tsc into build/bench/js, and runs it pinned to the load CPU. Settings: bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y --no-install-recommends wrk >/dev/null; }
fi
for f in dist/src/cli/main.js build/bpf/go_http.bpf.o build/bpf/sys_http.bpf.o; do
  [[ -f $f ]] || { echo "bench: $f is missing: run make setup" >&2; exit 1; }
done

bin=build/bench/bin
mkdir -p "$bin"
(cd test/apps/goserver && CGO_ENABLED=0 go build -o "../../../$bin/goserver" .)
(cd test/apps/gochain && CGO_ENABLED=0 go build -o "../../../$bin/gochain" .)
(cd bench/go && CGO_ENABLED=0 go build -o "../../$bin/" ./loadgen ./microbench)
npx tsc -p bench/tsconfig.json

exec taskset -c "${SPANBRIDGE_BENCH_LOAD_CPU:-1}" node build/bench/js/bench/main.js
