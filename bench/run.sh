#!/usr/bin/env bash
# `make bench` (after `make setup`): installs wrk if missing (Debian package, idempotent), builds
# the Go test server, the bench's Go programs and a 100+ MiB Go binary into build/bench/bin, compiles the harness with the
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
(cd bench/go && CGO_ENABLED=0 go build -o "../../$bin/" ./loadgen ./microbench ./chain)
# A Go binary of over 100 MiB (issue 15's RSS peak target: the agent inspects it at attach): the Go
# test server with 96 MiB of embedded data. Built once; rebuilt when the test server changes.
big=build/bench/gobig
if [[ ! -x $bin/gobig || test/apps/goserver/main.go -nt $bin/gobig ]]; then
  rm -rf "$big" && mkdir -p "$big"
  cp test/apps/goserver/*.go test/apps/goserver/go.mod "$big/"
  head -c $((96 << 20)) /dev/zero > "$big/blob.bin"
  printf 'package main\n\nimport _ "embed"\n\n//go:embed blob.bin\nvar blob []byte\n\nfunc init() {\n\tif len(blob) == 0 {\n\t\tpanic("no blob")\n\t}\n}\n' > "$big/blob.go"
  (cd "$big" && CGO_ENABLED=0 go build -o "../bin/gobig" .)
  rm -f "$big/blob.bin"
fi
# The tracepoint floor's empty programs (section tpfloor), built like the agent's objects.
make -s bench-bpf
npx tsc -p bench/tsconfig.json

exec taskset -c "${SPANBRIDGE_BENCH_LOAD_CPU:-1}" node build/bench/js/bench/main.js
