#!/usr/bin/env bash
# Makes a bootable UEFI disk (GPT: an ESP with systemd-boot, the kernel and
# its initrd; an ext4 root labelled sluice-root) from the root tree mkosi
# built, without loop devices or mounts: mkfs.ext4 -d fills the root file
# system, mkfs.vfat + mcopy the ESP, sfdisk writes the partition table and
# dd puts the two in place. build.sh runs it; by hand:
#
#   assemble.sh ROOT_TREE ROOT_SIZE OUT.raw [KERNEL_CMDLINE...]
#
# ROOT_SIZE is like 8G or 4096M (the root partition; the spool lives there).
set -euo pipefail
die() { echo "assemble.sh: $*" >&2; exit 1; }
[ $# -ge 3 ] || die "usage: assemble.sh ROOT_TREE ROOT_SIZE OUT.raw [KERNEL_CMDLINE...]"
root=$1 size=$2 out=$3
shift 3
cmdline="root=LABEL=sluice-root rw ${*:-console=tty0 console=ttyS0,115200}"
[[ $size =~ ^([0-9]+)([MG])$ ]] || die "ROOT_SIZE is like 8G or 4096M"
root_mb=${BASH_REMATCH[1]}
[ "${BASH_REMATCH[2]}" = G ] && root_mb=$((root_mb * 1024))
esp_mb=512
for tool in mkfs.ext4 mkfs.vfat mcopy sfdisk; do
  command -v "$tool" >/dev/null || die "$tool not found (e2fsprogs, dosfstools, mtools, fdisk)"
done
kernels=("$root"/boot/vmlinuz-*)
[ -f "${kernels[0]}" ] || die "no kernel in $root/boot"
kernel=$(printf '%s\n' "${kernels[@]}" | sort -V | tail -n 1)
kver=${kernel##*/vmlinuz-}
[ -f "$root/boot/initrd.img-$kver" ] || die "no initrd for $kver in $root/boot"
boot=$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi
[ -f "$boot" ] || die "no systemd-boot in $root (package systemd-boot-efi)"

work=$(mktemp -d "${out%/*}/.assemble.XXXXXX")
trap 'rm -rf "$work"' EXIT
esp=$work/esp
mkdir -p "$esp/EFI/BOOT" "$esp/EFI/systemd" "$esp/loader/entries" "$esp/sluice"
cp "$boot" "$esp/EFI/BOOT/BOOTX64.EFI"
cp "$boot" "$esp/EFI/systemd/systemd-bootx64.efi"
cp "$kernel" "$esp/sluice/linux"
cp "$root/boot/initrd.img-$kver" "$esp/sluice/initrd"
printf 'default sluice.conf\ntimeout 0\n' > "$esp/loader/loader.conf"
printf 'title sluice appliance (%s)\nlinux /sluice/linux\ninitrd /sluice/initrd\noptions %s\n' \
  "$kver" "$cmdline" > "$esp/loader/entries/sluice.conf"

truncate -s "${esp_mb}M" "$work/esp.img"
mkfs.vfat -F 32 -n ESP "$work/esp.img" >/dev/null
mcopy -s -i "$work/esp.img" "$esp"/* ::
truncate -s "${root_mb}M" "$work/root.img"
mkfs.ext4 -q -L sluice-root -d "$root" "$work/root.img"

rm -f "$out"
truncate -s "$((1 + esp_mb + root_mb + 1))M" "$out"
sfdisk -q "$out" <<SFDISK
label: gpt
start=1MiB, size=${esp_mb}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp
start=$((1 + esp_mb))MiB, size=${root_mb}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=root-x86-64
SFDISK
dd if="$work/esp.img" of="$out" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$out" bs=1M seek=$((1 + esp_mb)) conv=notrunc,sparse status=none
echo "assemble.sh: $out (kernel $kver, root ${root_mb} MiB)"
