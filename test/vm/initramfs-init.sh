#!/bin/busybox sh
# Stage 1 of the test VM (/init of the initramfs built by prepare-kernel.sh): load the modules that
# reach the host's root over virtio-9p, mount it read-only, and switch_root into stage 2
# (test/vm/guest-init.sh, read from the host's tree at its host path, run by the host's bash).
# Anything that goes wrong is printed on the console (the kernel log file on the host) and the VM
# powers off; the host then reports that the guest died without a status.
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

fail() {
	echo "sbvm stage1: $*" >/dev/console 2>/dev/null || echo "sbvm stage1: $*"
	sync
	poweroff -f
	sleep 5
	exit 1
}

mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"

while read -r m; do
	[ -n "$m" ] || continue
	insmod "/modules/$m" || fail "insmod $m"
done </modules/order

arg() { # value of name=value on the kernel command line
	for w in $(cat /proc/cmdline); do
		case "$w" in "$1="*) echo "${w#*=}"; return 0 ;; esac
	done
	return 1
}
rootopts=$(arg sbvm.rootopts) || rootopts=""
stage2=$(arg sbvm.init) || fail "no sbvm.init= on the kernel command line"

mount -t 9p -o "trans=virtio,version=9p2000.L,ro,msize=524288${rootopts:+,$rootopts}" hostroot /newroot \
	|| fail "mount the host root (9p tag hostroot)"
[ -f "/newroot$stage2" ] || fail "stage 2 $stage2 not found in the host root"

# /run becomes the guest's own tmpfs; a copy of busybox there serves stage 2 (poweroff, ip, ...).
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run || fail "mount /run"
mkdir -p /newroot/run/sbvm/bin && cp /bin/busybox /newroot/run/sbvm/bin/busybox || fail "copy busybox"

for d in proc sys dev; do
	mount --move "/$d" "/newroot/$d" || fail "move /$d"
done
exec switch_root /newroot /bin/bash "$stage2"
