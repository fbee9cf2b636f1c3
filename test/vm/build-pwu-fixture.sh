#!/usr/bin/env bash
# Builds the bpf_probe_write_user fixture used by the VM harness tests and prints two lines:
#   <path of the BPF object>      build/test-bpf/probe_write_user_test.bpf.o (via make)
#   <path of the loader binary>   OUTDIR/probe_write_user (test/fixtures/c/probe_write_user.c)
#   test/vm/build-pwu-fixture.sh OUTDIR
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
out=${1:?usage: build-pwu-fixture.sh OUTDIR}
mkdir -p "$out"
obj=$root/build/test-bpf/probe_write_user_test.bpf.o
make -s -C "$root" --no-print-directory "$obj" >&2
${CC:-cc} -O0 -g -Wall -Werror -o "$out/probe_write_user" "$root/test/fixtures/c/probe_write_user.c" -lbpf >&2
echo "$obj"
echo "$(cd "$out" && pwd -P)/probe_write_user"
