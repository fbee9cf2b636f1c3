#!/usr/bin/env bash
# Self-test of the VM harness (test/vm/run), one guest boot per check, on each kernel:
#   1. lockdown inside the guest reads [none]        5. a uprobe program calling bpf_probe_write_user
#   2. the command's exit status comes back (7)         loads in the guest and rewrites a user buffer
#   3. --share DIR: a file the guest writes shows up  6. stdout and stderr stay apart; no kernel noise
#      on the host                                    7. --timeout kills the guest: exit 124
#   4. node runs inside (same version as the host)    8. a guest that dies without a status: exit 125
# and, on the host, that the same BPF object is refused by the verifier (helper
# bpf_probe_write_user#36) while the host kernel is locked down.
#
#   test/vm/selftest.sh [--kernel 6.1|6.12|all]     (root; about a minute per kernel)
# Ends with the line "N passed, N failed"; exit status 0 only when nothing failed.
set -uo pipefail
# The whole script is one compound command, parsed before it runs: editing this file (git pull)
# while a run is under way cannot break that run.
{
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd "$here/../.." && pwd -P)
run=$here/run
kernels=(6.1 6.12)
case "${1:-}" in
  --kernel) [ "${2:-all}" = all ] || kernels=("$2") ;;
  --kernel=*) [ "${1#*=}" = all ] || kernels=("${1#*=}") ;;
  "") ;;
  *) echo "usage: $0 [--kernel 6.1|6.12|all]" >&2; exit 2 ;;
esac

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
show() { sed 's/^/     | /' "$@"; }

work=$(mktemp -d /tmp/spanbridge-vm-selftest.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$root"

# Host kernel: lockdown state and what the verifier says about the fixture.
mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
host_lockdown=$(cat /sys/kernel/security/lockdown 2>/dev/null || echo unknown)
echo "host kernel $(uname -r), lockdown: $host_lockdown"
if ! { read -r obj; read -r pwu; } < <("$here/build-pwu-fixture.sh" "$work/bin"); then
  bad "build the bpf_probe_write_user fixture (make build/test-bpf/probe_write_user_test.bpf.o, cc)"
  echo "$passed passed, $((failed)) failed"
  exit 1
fi
"$pwu" "$obj" >"$work/host.out" 2>"$work/host.err"
rc=$?
if [[ "$host_lockdown" == *"[none]"* ]]; then
  if [ "$rc" = 0 ] && grep -q '^buffer: REWRITTEN-BY-BPF$' "$work/host.out"; then
    ok "host (lockdown none): bpf_probe_write_user rewrote the buffer"
  else bad "host (lockdown none): expected the rewrite, exit $rc"; show "$work/host.out" "$work/host.err"; fi
else
  if [ "$rc" = 3 ] && grep -q 'bpf_probe_write_user#36' "$work/host.err" && grep -q '^before: original' "$work/host.out"; then
    ok "host (lockdown $host_lockdown): the verifier refuses helper bpf_probe_write_user#36"
  else bad "host: expected the load to fail with bpf_probe_write_user#36, exit $rc"; show "$work/host.out" "$work/host.err"; fi
  pin=/sys/fs/bpf/spanbridge-vm-selftest-$$
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null
  if bpftool prog load "$obj" "$pin" >"$work/bpftool.out" 2>&1; then
    rm -f "$pin"; bad "host: bpftool prog load unexpectedly succeeded"
  elif grep -q 'bpf_probe_write_user#36' "$work/bpftool.out"; then
    ok "host: bpftool prog load is refused too (bpf_probe_write_user#36)"
  else bad "host: bpftool prog load failed without the #36 message"; show "$work/bpftool.out"; fi
fi

for k in "${kernels[@]}"; do
  echo "--- kernel $k"
  t0=$(date +%s.%N)
  out=$("$run" --kernel "$k" -- cat /sys/kernel/security/lockdown 2>"$work/err")
  rc=$?
  t1=$(date +%s.%N)
  if [ "$rc" = 0 ] && [[ "$out" == *"[none]"* ]]; then
    ok "$k: lockdown in the guest: $out (boot + run $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s)"
  else bad "$k: lockdown: exit $rc, stdout '$out'"; show "$work/err"; fi

  "$run" --kernel "$k" -- sh -c 'exit 7' >/dev/null 2>"$work/err"
  rc=$?
  if [ "$rc" = 7 ]; then ok "$k: exit status 7 propagates"; else bad "$k: exit status: got $rc, want 7"; show "$work/err"; fi

  share=$work/share-$k
  mkdir -p "$share"
  "$run" --kernel "$k" --share "$share" -- sh -c 'uname -r > "$1/from-guest.txt"' sh "$share" >/dev/null 2>"$work/err"
  rc=$?
  if [ "$rc" = 0 ] && grep -q . "$share/from-guest.txt" 2>/dev/null; then
    ok "$k: --share: the host reads what the guest wrote ($(cat "$share/from-guest.txt"))"
  else bad "$k: --share: exit $rc, no $share/from-guest.txt"; show "$work/err"; fi

  want=$(node -e 'console.log(process.version)')
  out=$("$run" --kernel "$k" -- node -e 'console.log(process.version)' 2>"$work/err")
  rc=$?
  if [ "$rc" = 0 ] && [ "$out" = "$want" ]; then ok "$k: node $out runs in the guest"
  else bad "$k: node: exit $rc, stdout '$out' (want $want)"; show "$work/err"; fi

  "$run" --kernel "$k" -- "$pwu" "$obj" >"$work/pwu.out" 2>"$work/pwu.err"
  rc=$?
  if [ "$rc" = 0 ] && grep -q '^before: original-user-buffer-contents$' "$work/pwu.out" \
    && grep -q '^buffer: REWRITTEN-BY-BPF$' "$work/pwu.out"; then
    ok "$k: bpf_probe_write_user loads and rewrites the user buffer"
  else bad "$k: bpf_probe_write_user: exit $rc"; show "$work/pwu.out" "$work/pwu.err"; fi

  "$run" --kernel "$k" -- sh -c 'echo to-stdout; echo to-stderr >&2' >"$work/o" 2>"$work/e"
  rc=$?
  if [ "$rc" = 0 ] && [ "$(cat "$work/o")" = to-stdout ] && [ "$(cat "$work/e")" = to-stderr ]; then
    ok "$k: stdout and stderr arrive apart, nothing else on them"
  else bad "$k: streams: exit $rc"; echo "     stdout:"; show "$work/o"; echo "     stderr:"; show "$work/e"; fi

  "$run" --kernel "$k" --timeout 3 -- sleep 600 >/dev/null 2>"$work/err"
  rc=$?
  if [ "$rc" = 124 ] && grep -q 'timed out' "$work/err"; then ok "$k: --timeout 3 kills the guest: exit 124"
  else bad "$k: timeout: exit $rc (want 124)"; show "$work/err"; fi

  "$run" --kernel "$k" -- sh -c 'echo o > /proc/sysrq-trigger; sleep 60' >/dev/null 2>"$work/err"
  rc=$?
  if [ "$rc" = 125 ] && grep -q 'without reporting' "$work/err"; then ok "$k: a guest that dies without a status: exit 125"
  else bad "$k: dead guest: exit $rc (want 125)"; show "$work/err"; fi
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
exit
}
