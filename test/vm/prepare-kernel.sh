#!/usr/bin/env bash
# Prepares (once) what test/vm/run boots: Debian's own kernel and a tiny initramfs, cached under
#   ${SPANBRIDGE_CACHE_DIR:-$HOME/.cache/spanbridge}/vm/<series>/<package>_<version>/
# with <series>/current pointing at the one in use. Idempotent; safe to run concurrently (flock).
#
#   test/vm/prepare-kernel.sh [--kernel 6.1|6.12|all] [--package NAME] [--refresh] [--print-dir]
#
#   --kernel     which kernel series (default: all = 6.1 and 6.12)
#   --package    a specific linux-image package instead of the newest (e.g. linux-image-6.1.0-56-amd64)
#   --refresh    look for a newer kernel package even when one is cached (default: only when none is)
#   --print-dir  print the prepared directory (one line per series) on stdout
#
# The kernel package is only downloaded and unpacked (apt-get download + dpkg-deb -x); it is never
# installed as the host's kernel. Host packages the harness needs (qemu-system-x86, busybox-static,
# cpio, kmod, xz-utils) are installed with apt-get when missing.
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
cache_root="${SPANBRIDGE_CACHE_DIR:-$HOME/.cache/spanbridge}/vm"
log() { printf 'prepare-kernel: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

series_list=(6.1 6.12)
package_override=""
refresh=0
print_dir=0
while (($#)); do
  case "$1" in
    --kernel) shift; [ "${1:-}" = all ] && series_list=(6.1 6.12) || series_list=("${1:?--kernel needs 6.1, 6.12 or all}") ;;
    --kernel=*) v=${1#*=}; [ "$v" = all ] && series_list=(6.1 6.12) || series_list=("$v") ;;
    --package) shift; package_override=${1:?--package needs a name} ;;
    --package=*) package_override=${1#*=} ;;
    --refresh) refresh=1 ;;
    --print-dir) print_dir=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
for s in "${series_list[@]}"; do
  case "$s" in 6.1|6.12) ;; *) die "unsupported kernel series '$s' (6.1 or 6.12)" ;; esac
done
if [ -n "$package_override" ] && [ "${#series_list[@]}" != 1 ]; then
  die "--package needs a single --kernel"
fi

# Bump when the initramfs layout or init changes in a way the input hash below would not see.
layout_version=3

# ---------------------------------------------------------------------------------------------
# Host packages
# ---------------------------------------------------------------------------------------------
apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    apt-get update -qq >&2 || log "warning: apt-get update failed"
    apt_updated=1
  fi
}

ensure_host_packages() {
  local need=() p
  for p in qemu-system-x86 busybox-static cpio kmod xz-utils; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  ((${#need[@]})) || return 0
  [ "$(id -u)" = 0 ] || die "missing Debian packages: ${need[*]} (run as root, or install them)"
  log "installing Debian packages: ${need[*]}"
  local try
  for try in 1 2; do
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; then
      return 0
    fi
    apt_update
  done
  die "could not install ${need[*]}"
}

# ---------------------------------------------------------------------------------------------
# Which package: the newest one Debian's meta-package points at
# ---------------------------------------------------------------------------------------------
meta_package() {
  case "$1" in
    6.1) echo linux-image-amd64 ;;        # bookworm's default kernel: linux-image-6.1.0-<N>-amd64
    6.12) echo linux-image-6.12-amd64 ;;  # bookworm's 6.12: linux-image-6.12.<N>+deb12-amd64
  esac
}

resolve_package() { # series -> "name version"
  local series=$1 meta name version try
  meta=$(meta_package "$series")
  for try in 1 2; do
    name=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
    if [ -n "$package_override" ]; then name=$package_override; fi
    if [ -n "$name" ]; then
      version=$(apt-cache show --no-all-versions "$name" 2>/dev/null | awk '/^Version:/ {print $2; exit}')
      if [ -n "$version" ]; then echo "$name $version"; return 0; fi
    fi
    [ "$try" = 1 ] && apt_update
  done
  return 1
}

series_ok() { # name -> is it the series we want?
  case "$2" in
    6.1) [[ "$1" == linux-image-6.1.0-*-amd64 ]] ;;
    6.12) [[ "$1" == linux-image-6.12.*+deb12-amd64 ]] ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# The initramfs: busybox + the modules that reach the 9p root, and the stage-1 init
# ---------------------------------------------------------------------------------------------
# Wanted modules; those built into a kernel are simply absent from modules.dep and skipped.
wanted_modules=(virtio_pci 9pnet_virtio 9p virtio_console)

# Load order for the wanted modules and their dependencies: modules.dep lists each module's full
# dependency closure, loadable from the last entry to the first (as modprobe does).
module_load_order() { # moddir
  local moddir=$1 m line deps self i
  declare -A seen=()
  for m in "${wanted_modules[@]}"; do
    line=$(grep -E "(^|/)${m}\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep" || true)
    [ -n "$line" ] || continue
    self=${line%%:*}
    read -r -a deps <<<"${line#*:}"
    for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
      [ -n "${seen[${deps[i]}]:-}" ] || { seen[${deps[i]}]=1; echo "${deps[i]}"; }
    done
    [ -n "${seen[$self]:-}" ] || { seen[$self]=1; echo "$self"; }
  done
}

build_initramfs() { # dir kver
  local dir=$1 kver=$2 moddir="$1/modroot/lib/modules/$2" tmp m base
  tmp=$(mktemp -d "$dir/initramfs.XXXXXX")
  mkdir -p "$tmp"/{bin,dev,proc,sys,newroot,modules}
  cp /bin/busybox "$tmp/bin/busybox"
  cp "$here/initramfs-init.sh" "$tmp/init"
  chmod 0755 "$tmp/init" "$tmp/bin/busybox"
  : >"$tmp/modules/order"
  while read -r m; do
    base=$(basename "$m")
    case "$base" in
      *.ko.xz) xz -dc "$moddir/$m" >"$tmp/modules/${base%.xz}"; base=${base%.xz} ;;
      *.ko.zst) zstd -dcq "$moddir/$m" >"$tmp/modules/${base%.zst}"; base=${base%.zst} ;;
      *.ko.gz) gzip -dc "$moddir/$m" >"$tmp/modules/${base%.gz}"; base=${base%.gz} ;;
      *) cp "$moddir/$m" "$tmp/modules/$base" ;;
    esac
    echo "$base" >>"$tmp/modules/order"
  done < <(module_load_order "$moddir")
  grep -q '^9p\.ko$' "$tmp/modules/order" || grep -q '^CONFIG_9P_FS=y' "$dir/config" \
    || die "no 9p module found for $kver"
  (cd "$tmp" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -6) >"$dir/initramfs.cpio.gz.tmp"
  mv "$dir/initramfs.cpio.gz.tmp" "$dir/initramfs.cpio.gz"
  cp "$tmp/modules/order" "$dir/initramfs-modules.txt"
  rm -rf "$tmp"
}

# Large module trees nobody loads in a test guest; dropped to keep the cache small. What stays
# (fs, net, drivers/net minus hardware NICs, virtio, crypto, lib, ...) can be loaded in the guest
# with: modprobe -d "$SPANBRIDGE_VM_MODULES" <module>.
pruned_module_dirs=(
  drivers/gpu drivers/media drivers/infiniband drivers/staging drivers/net/wireless
  drivers/net/ethernet drivers/usb drivers/iio drivers/hid drivers/input drivers/bluetooth
  drivers/scsi drivers/ata drivers/mmc drivers/mtd drivers/nfc drivers/platform drivers/hwmon
  drivers/isdn drivers/leds drivers/power drivers/rtc drivers/spi drivers/i2c drivers/misc
  drivers/pinctrl drivers/regulator drivers/mfd drivers/thunderbolt drivers/video drivers/w1
  drivers/watchdog drivers/edac drivers/firewire drivers/md drivers/target drivers/nvme
  sound net/bluetooth net/wireless net/mac80211 net/mac802154 net/ieee802154 net/nfc
)

prepare_series() {
  local series=$1 sdir="$cache_root/$1" current name version dir
  mkdir -p "$sdir"
  current="$sdir/current"
  # Fast path: a prepared kernel is already selected and nobody asked to look for a newer one.
  if [ "$refresh" = 0 ] && [ -z "$package_override" ] && use_current "$current"; then
    return 0
  fi
  if ! read -r name version < <(resolve_package "$series"); then
    if use_current "$current"; then
      log "warning: cannot resolve Debian's $series kernel package; keeping the cached $(cat "$current/package")"
      return 0
    fi
    die "cannot find Debian's $series kernel package (apt-cache depends $(meta_package "$series"))"
  fi
  series_ok "$name" "$series" || die "package $name is not a $series kernel"
  dir="$sdir/${name}_${version}"
  if [ ! -f "$dir/ready" ]; then
    log "downloading and unpacking $name $version"
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp/dl"
    (cd "$dir.tmp/dl" && apt-get download -o APT::Sandbox::User=root "$name=$version" >&2) \
      || die "apt-get download $name=$version failed"
    mkdir -p "$dir.tmp/pkg"
    dpkg-deb -x "$dir.tmp/dl/"*.deb "$dir.tmp/pkg"
    local kver
    kver=$(ls "$dir.tmp/pkg/lib/modules")
    [ -n "$kver" ] && [ -f "$dir.tmp/pkg/boot/vmlinuz-$kver" ] || die "unexpected layout in $name"
    mkdir -p "$dir.tmp/modroot/lib/modules"
    mv "$dir.tmp/pkg/lib/modules/$kver" "$dir.tmp/modroot/lib/modules/$kver"
    mv "$dir.tmp/pkg/boot/vmlinuz-$kver" "$dir.tmp/vmlinuz"
    mv "$dir.tmp/pkg/boot/config-$kver" "$dir.tmp/config"
    local d
    for d in "${pruned_module_dirs[@]}"; do rm -rf "$dir.tmp/modroot/lib/modules/$kver/kernel/$d"; done
    depmod -b "$dir.tmp/modroot" "$kver"
    echo "$kver" >"$dir.tmp/kernel-release"
    echo "$name $version" >"$dir.tmp/package"
    rm -rf "$dir.tmp/dl" "$dir.tmp/pkg"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
  fi
  if [ ! -f "$dir/ready" ] || ! stamp_ok "$dir"; then
    log "building the initramfs for $(cat "$dir/kernel-release")"
    rm -f "$dir/ready"
    build_initramfs "$dir" "$(cat "$dir/kernel-release")"
    input_stamp >"$dir/ready"
  fi
  ln -sfn "${name}_${version}" "$current.tmp" && mv -T "$current.tmp" "$current"
  # Older kernels of this series are no longer selected: drop them (about 120 MB each).
  local old
  for old in "$sdir"/linux-image-*; do
    [ -d "$old" ] && [ "$old" != "$dir" ] && [[ "$old" != *.tmp ]] && { log "removing the older $(basename "$old")"; rm -rf "$old"; }
  done
  echo "$dir"
}

use_current() { # current-link: the selected kernel, its initramfs rebuilt if its inputs changed
  [ -f "$1/ready" ] || return 1
  local dir
  dir=$(cd "$1" && pwd -P)
  if ! stamp_ok "$dir"; then
    log "rebuilding the initramfs for $(cat "$dir/kernel-release") (its inputs changed)"
    build_initramfs "$dir" "$(cat "$dir/kernel-release")"
    input_stamp >"$dir/ready"
  fi
  echo "$dir"
}

input_stamp() {
  { echo "layout $layout_version"; echo "modules ${wanted_modules[*]}"; sha256sum "$here/initramfs-init.sh" /bin/busybox | cut -c1-64; } | sha256sum | cut -c1-16
}
stamp_ok() { [ "$(cat "$1/ready" 2>/dev/null)" = "$(input_stamp)" ]; }

ensure_host_packages
mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9
for s in "${series_list[@]}"; do
  d=$(prepare_series "$s")
  if [ "$print_dir" = 1 ]; then echo "$d"; else log "$s: $(cat "$d/package") (kernel $(cat "$d/kernel-release")) in $d"; fi
done
exit 0
