#!/usr/bin/env bash
# `make test`: every test layer (unit, unit-built, BPF, integration) in one jest run, then one closing line
# "N passed, N failed, N skipped" that CI reads. Integration and BPF tests need root and a real
# kernel; they fail (not skip) when a capability they cover is missing, unless a test says why.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p build
out=build/jest-results.json
rm -f "$out"
# Default: the host layers; the VM suite runs through `make test-vm` inside a guest kernel.
if [ $# -eq 0 ]; then set -- --selectProjects unit unit-built integration; fi
npx jest --runInBand --json --outputFile="$out" "$@"
status=$?
if [ -f "$out" ]; then
  node -e '
    const r = require(process.argv[1]);
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
    if (r.numTotalTests === 0) { console.log("no test ran"); process.exit(1); }
  ' "$root/$out" || status=1
fi
exit $status
