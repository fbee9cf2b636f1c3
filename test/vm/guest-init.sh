#!/bin/bash
# Stage 2 of the test VM: PID 1 after switch_root into the host's root (read-only 9p). Sets up the
# writable scratch and the kernel filesystems a BPF agent needs, runs the command that test/vm/run
# was given, writes its exit status into the control share and powers off.
#
# Control share (9p tag "ctl", mounted at /run/sbvm/ctl), written by test/vm/run:
#   argv      the command, NUL-separated          env       NAME=VALUE entries, NUL-separated
#   cwd       working directory                    modroot   the guest kernel's module tree (modprobe -d)
#   overlays  host dirs to give a private writable copy-on-write view (NUL-separated)
#   shares    tag, path pairs of read-write 9p shares (NUL-separated)
#   status    <- written here: the command's exit status
# The command's stdout/stderr go to the virtio serial ports named sbvm.out / sbvm.err; this
# script's own messages go to the console (the kernel log file on the host) and to guest.log.
set -u
# The whole script is one compound command, parsed before it runs: editing this file (git pull)
# while a run is under way cannot break that run.
{
bb=/run/sbvm/bin/busybox
ctl=/run/sbvm/ctl
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/run/sbvm/bin

log() { echo "sbvm stage2: $*" >/dev/console; [ -w "$ctl" ] && echo "$*" >>"$ctl/guest.log"; }
die() {
	log "FATAL: $*"
	[ -n "${errfd_ok:-}" ] && echo "test/vm guest: $*" >&4
	sync
	$bb poweroff -f
	sleep 10
}
nineP() { $bb mount -t 9p -o "trans=virtio,version=9p2000.L,msize=524288${3:+,$3}" "$1" "$2"; }

$bb mkdir -p "$ctl" && nineP ctl "$ctl" || die "cannot mount the control share"

# --- the command's stdout and stderr: virtio serial ports ---------------------------------------
port_dev() {
	local p
	for p in /sys/class/virtio-ports/*; do
		[ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${p##*/}"; return 0; }
	done
	return 1
}
outdev=$(port_dev sbvm.out) && errdev=$(port_dev sbvm.err) || die "virtio serial ports sbvm.out/sbvm.err not found"
exec 3>"$outdev" 4>"$errdev" || die "cannot open $outdev / $errdev"
errfd_ok=1

# --- kernel filesystems ---------------------------------------------------------------------------
$bb mkdir -p /dev/pts /dev/shm /dev/mqueue
$bb mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || log "devpts: failed"
$bb mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || log "/dev/shm: failed"
$bb ln -sfn /proc/self/fd /dev/fd
$bb ln -sfn /proc/self/fd/0 /dev/stdin
$bb ln -sfn /proc/self/fd/1 /dev/stdout
$bb ln -sfn /proc/self/fd/2 /dev/stderr
$bb mount -t securityfs securityfs /sys/kernel/security || log "securityfs: failed"
$bb mount -t tracefs tracefs /sys/kernel/tracing || log "tracefs: failed"
$bb mount -t debugfs debugfs /sys/kernel/debug || log "debugfs: failed"
$bb mount -t bpf bpf /sys/fs/bpf || die "cannot mount bpffs on /sys/fs/bpf"
$bb mount -t cgroup2 cgroup2 /sys/fs/cgroup || log "cgroup2: failed"

# --- writable scratch ------------------------------------------------------------------------------
modroot=$(cat "$ctl/modroot")
kver=$($bb uname -r)
modprobe -d "$modroot" overlay 2>/dev/null || log "modprobe overlay failed (overlays fall back to empty tmpfs)"

# The host's root without anything mounted over it: the lower layer of every overlay.
$bb mkdir -p /run/sbvm/hostroot /run/sbvm/rw
$bb mount --bind / /run/sbvm/hostroot || die "bind mount of /"
$bb mount -t tmpfs -o mode=0755 tmpfs /run/sbvm/rw || die "tmpfs for overlays"
n=0
while IFS= read -r -d '' dir; do
	[ -d "$dir" ] || { log "overlay $dir: not a directory on the host, skipped"; continue; }
	n=$((n + 1))
	$bb mkdir -p "/run/sbvm/rw/$n/upper" "/run/sbvm/rw/$n/work"
	if ! $bb mount -t overlay overlay \
		-o "lowerdir=/run/sbvm/hostroot$dir,upperdir=/run/sbvm/rw/$n/upper,workdir=/run/sbvm/rw/$n/work" "$dir"; then
		log "overlay on $dir failed; an empty tmpfs instead"
		$bb mount -t tmpfs -o mode=1777 tmpfs "$dir" || die "cannot make $dir writable"
	fi
done <"$ctl/overlays"

# Read-write shares, mounted last so that they sit on top of any overlay (e.g. a share in /tmp).
while IFS= read -r -d '' tag && IFS= read -r -d '' dir; do
	nineP "$tag" "$dir" || die "cannot mount the share $dir"
done <"$ctl/shares"

# --- network, limits ---------------------------------------------------------------------------------
$bb ip link set lo up || die "cannot bring lo up"
$bb hostname spanbridge-vm
ulimit -n 65536 2>/dev/null || ulimit -n 4096
ulimit -l unlimited 2>/dev/null || true
ulimit -c 0

# --- the command ----------------------------------------------------------------------------------------
argv=()
while IFS= read -r -d '' a; do argv+=("$a"); done <"$ctl/argv"
envv=()
while IFS= read -r -d '' e; do envv+=("$e"); done <"$ctl/env"
envv+=("SPANBRIDGE_VM_KERNEL_RELEASE=$kver" "SPANBRIDGE_VM_MODULES=$modroot")
cwd=$(cat "$ctl/cwd")
cd "$cwd" || die "cannot cd to $cwd"
log "running: ${argv[*]} (in $cwd)"
# Shortly before the host's --timeout strikes, leave a picture of what is stuck on the console
# (the host prints the console's tail when it kills the guest).
host_timeout=$(cat "$ctl/timeout" 2>/dev/null || echo 0)
if [ "$host_timeout" -gt 60 ]; then
	(
		sleep $((host_timeout - 30))
		{
			echo "sbvm stage2: still running after $((host_timeout - 30)) s of the command; processes:"
			ps -eo pid,ppid,stat,etime,time,wchan:24,args 2>/dev/null | grep -v ' \[' || $bb ps
		} >/dev/console 2>&1
		echo w >/proc/sysrq-trigger
	) </dev/null >/dev/null 2>&1 &
	watchdog=$!
fi
$bb env -i "${envv[@]}" "${argv[@]}" </dev/null >&3 2>&4
status=$?
[ -n "${watchdog:-}" ] && kill "$watchdog" 2>/dev/null
log "exit status $status"
echo "$status" >"$ctl/status.tmp" && $bb mv "$ctl/status.tmp" "$ctl/status"
exec 3>&- 4>&-
sync
$bb poweroff -f
sleep 10
exit
}
