#!/usr/bin/env bash
# Bakes the sluice .deb into a Debian 12 disk image with mkosi 14 (Debian
# 12's own: apt-get install mkosi): qcow2 for KVM, vmdk for VMware (both with a static
# address through systemd-networkd), or raw for an AWS AMI (DHCP +
# cloud-init; deploy/aws/ does the rest). See README.md here.
#
#   SLUICE_DEB=../../build/sluice_1.0.0_amd64.deb \
#   SLUICE_ADDRESS=192.0.2.20/24 SLUICE_GATEWAY=192.0.2.1 \
#   SLUICE_DNS="192.0.2.53 192.0.2.54" SLUICE_CONFIG=/path/sluice.yaml \
#   SLUICE_ADMIN_KEYS=~/.ssh/id_ed25519.pub  deploy/image/build.sh
#
# Variables (defaults in brackets):
#   SLUICE_DEB         the .deb to bake in (required)
#   SLUICE_TARGET      onprem | aws [onprem]
#   SLUICE_FORMAT      qcow2 | vmdk | raw [qcow2 onprem, raw aws]
#   SLUICE_ADDRESS     onprem: the static address, CIDR (required)
#   SLUICE_GATEWAY     onprem: the default gateway (required)
#   SLUICE_DNS         onprem: DNS servers, blank-separated (required)
#   SLUICE_NTP         onprem: NTP servers, blank-separated [networkd's default]
#   SLUICE_IFACE       onprem: networkd Name= match [en*]
#   SLUICE_HOSTNAME    [sluice]
#   SLUICE_CONFIG      /etc/sluice/sluice.yaml to bake in [the package's example]
#   SLUICE_ADMIN_KEYS  authorized_keys for root's login on the admin sshd
#   SLUICE_ADMIN_SSH_PORT  the admin sshd's port; the gateway owns 22 [2022]
#   SLUICE_DISK_SIZE   root partition size [8G]
#   SLUICE_OUT         where the image goes [./out]
#   SLUICE_CACHE       a directory where mkosi keeps the downloaded packages
#                      between builds [none]
#
#   build.sh --render-only DIR   renders the staging tree into DIR and stops
#                                (no mkosi, no root; what the tests check)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "build.sh: $*" >&2; exit 1; }

render_only=""
if [ "${1:-}" = --render-only ]; then
  [ -n "${2:-}" ] || die "--render-only needs a directory"
  render_only=$2
fi

target=${SLUICE_TARGET:-onprem}
case $target in
  onprem) format=${SLUICE_FORMAT:-qcow2} ;;
  aws) format=${SLUICE_FORMAT:-raw} ;;
  *) die "SLUICE_TARGET must be onprem or aws, not \"$target\"" ;;
esac
case $format in qcow2|vmdk|raw) ;; *) die "SLUICE_FORMAT must be qcow2, vmdk or raw" ;; esac
port=${SLUICE_ADMIN_SSH_PORT:-2022}
if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -eq 22 ] || [ "$port" -ge 65536 ]; then
  die "SLUICE_ADMIN_SSH_PORT must be a port other than 22 (the gateway's)"
fi
hostname=${SLUICE_HOSTNAME:-sluice}
[[ $hostname =~ ^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$ ]] || die "SLUICE_HOSTNAME \"$hostname\" is not a host name"
disk=${SLUICE_DISK_SIZE:-8G}
[[ $disk =~ ^[0-9]+[MG]$ ]] || die "SLUICE_DISK_SIZE is like 8G or 4096M"

# @KEY@ -> value, for each KEY=value argument, from stdin to stdout
subst() {
  local text kv
  text=$(cat)
  for kv in "$@"; do
    text=${text//@${kv%%=*}@/${kv#*=}}
  done
  printf '%s\n' "$text"
}

stage=${render_only:-$(mktemp -d /var/tmp/sluice-image.XXXXXX)}
mkdir -p "$stage"
cp -r "$here/mkosi.conf" "$here/mkosi.postinst" "$here/extra" "$stage/"
mkdir -p "$stage/extra/etc/ssh/sshd_config.d" "$stage/extra/etc/systemd/network" \
  "$stage/extra/etc/sluice"
subst "ADMIN_SSH_PORT=$port" < "$here/templates/sshd-admin-port.conf.in" \
  > "$stage/extra/etc/ssh/sshd_config.d/00-sluice-admin-port.conf"
printf '%s\n' "$hostname" > "$stage/extra/etc/hostname"

if [ "$target" = onprem ]; then
  if [ -z "${SLUICE_ADDRESS:-}" ] || [ -z "${SLUICE_GATEWAY:-}" ] || [ -z "${SLUICE_DNS:-}" ]; then
    die "onprem needs SLUICE_ADDRESS (CIDR), SLUICE_GATEWAY and SLUICE_DNS"
  fi
  [[ $SLUICE_ADDRESS =~ ^[0-9A-Fa-f:.]+/[0-9]+$ ]] || die "SLUICE_ADDRESS \"$SLUICE_ADDRESS\" is not ADDRESS/PREFIX"
  [[ $SLUICE_GATEWAY =~ ^[0-9A-Fa-f:.]+$ ]] || die "SLUICE_GATEWAY \"$SLUICE_GATEWAY\" is not an address"
  dns="" ntp=""
  for d in $SLUICE_DNS; do
    [[ $d =~ ^[0-9A-Fa-f:.]+$ ]] || die "SLUICE_DNS: \"$d\" is not an address"
    dns+="DNS=$d"$'\n'
  done
  for n in ${SLUICE_NTP:-}; do
    [[ $n =~ ^[A-Za-z0-9:._-]+$ ]] || die "SLUICE_NTP: \"$n\" is not a host"
    ntp+="NTP=$n"$'\n'
  done
  subst "IFACE=${SLUICE_IFACE:-en*}" "ADDRESS=$SLUICE_ADDRESS" "GATEWAY=$SLUICE_GATEWAY" \
    "DNS_LINES=${dns%$'\n'}" "NTP_LINES=${ntp%$'\n'}" \
    < "$here/templates/10-sluice-static.network.in" \
    > "$stage/extra/etc/systemd/network/10-sluice-static.network"
  extra_pkgs="qemu-guest-agent,open-vm-tools"
else
  cp -r "$here/extra-aws/." "$stage/extra/"
  extra_pkgs="cloud-init,awscli"
fi

if [ -n "${SLUICE_CONFIG:-}" ]; then
  [ -f "$SLUICE_CONFIG" ] || die "SLUICE_CONFIG $SLUICE_CONFIG is not a file"
  install -m 0640 "$SLUICE_CONFIG" "$stage/extra/etc/sluice/sluice.yaml"
fi
if [ -n "${SLUICE_ADMIN_KEYS:-}" ]; then
  [ -f "$SLUICE_ADMIN_KEYS" ] || die "SLUICE_ADMIN_KEYS $SLUICE_ADMIN_KEYS is not a file"
  install -d -m 0700 "$stage/extra/root/.ssh"
  install -m 0600 "$SLUICE_ADMIN_KEYS" "$stage/extra/root/.ssh/authorized_keys"
fi

if [ -n "$render_only" ]; then
  echo "build.sh: rendered into $stage (mkosi not run)"
  exit 0
fi

if [ -z "${SLUICE_DEB:-}" ] || [ ! -f "$SLUICE_DEB" ]; then
  die "SLUICE_DEB must name the sluice .deb (cmake --build build --target package)"
fi
command -v mkosi >/dev/null || die "mkosi not found: apt-get install mkosi"
command -v qemu-img >/dev/null || die "qemu-img not found: apt-get install qemu-utils"
mkosi_version=$(mkosi --version 2>/dev/null || true)
[ "$mkosi_version" = "mkosi 14" ] || die "this recipe is for mkosi 14 (Debian 12's), not \"$mkosi_version\""
[ "$(id -u)" -eq 0 ] || die "mkosi 14 needs root (loop devices, systemd-nspawn)"
mkdir -p "$stage/extra/var/cache/sluice-image" "$stage/mkosi.output"
cp "$SLUICE_DEB" "$stage/extra/var/cache/sluice-image/"
# mkosi 14 installs only from repositories: sluice's dependencies go in
# with the other packages (first alternative, no version), mkosi.postinst
# then installs the .deb itself with dpkg -i.
deps=$(dpkg-deb -f "$SLUICE_DEB" Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' | grep -v '^$' | paste -sd, -)
[ -n "$deps" ] || die "$SLUICE_DEB has no Depends: field"

cache=()
if [ -n "${SLUICE_CACHE:-}" ]; then mkdir -p "$SLUICE_CACHE"; cache=(--cache="$SLUICE_CACHE"); fi
(cd "$stage" && mkosi --environment="SLUICE_TARGET=$target" --package="$extra_pkgs,$deps" \
  "${cache[@]}" -f build)
out=${SLUICE_OUT:-$PWD/out}
mkdir -p "$out"
raw=$stage/sluice-appliance.raw
"$here/assemble.sh" "$stage/mkosi.output/sluice-appliance" "$disk" "$raw"
name="sluice-$target-$hostname"
case $format in
  raw) mv "$raw" "$out/$name.raw" ;;
  qcow2) qemu-img convert -f raw -O qcow2 "$raw" "$out/$name.qcow2" ;;
  vmdk) qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$raw" "$out/$name.vmdk" ;;
esac
rm -f "$raw"
echo "build.sh: $out/$name.$format (staging tree: $stage)"
