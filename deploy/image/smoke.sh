#!/usr/bin/env bash
# Boots an image build.sh made under qemu (KVM when /dev/kvm is usable, else
# software emulation; the image is not modified: -snapshot) and checks
# sluice.service under the VM's real systemd, over the admin sshd and the
# gateway's port, both forwarded from the host's loopback:
#
#   the unit is active after READY=1 (Type=notify), its exposure score,
#   sluice.socket holds port 22 (systemd and the service share it) and the
#   supervisor took the socket systemd passed, the main process's bounding
#   set is CAP_SETUID CAP_SETGID only, `systemctl reload` (SIGHUP) keeps the
#   same main process and restarts the roles without killing any (SIGTERM
#   sent as the role's user, no CAP_KILL), the watchdog does not kill it
#   (WatchdogSec=30s: watched for 75 s), a partner's sftp upload reaches the
#   file:// store, the static address is configured by networkd, and
#   `systemctl stop` drains: an upload in flight finishes, the unit ends with
#   exit status 0 (no SIGKILL); then, sluice.socket still listening, a
#   partner's upload starts the service again (socket activation) and both
#   files are stored; last, a supervisor stopped with SIGSTOP is killed by
#   the watchdog and started again.
#
#   SMOKE_IMAGE=out/sluice-onprem-sluice-vm.qcow2 SMOKE_ADMIN_KEY=admin_key \
#   SMOKE_PARTNER=example SMOKE_PARTNER_KEY=partner_key deploy/image/smoke.sh
#
# The image must be built with SLUICE_ADMIN_KEYS (the .pub of SMOKE_ADMIN_KEY),
# SLUICE_CONFIG with SMOKE_PARTNER's key, allow_from containing 10.0.2.0/24
# (qemu's user network) and a file:// store, and, for the address check,
# SLUICE_ADDRESS=10.0.2.15/24 SLUICE_GATEWAY=10.0.2.2 SLUICE_DNS=10.0.2.3.
# Not part of ctest: it needs qemu, OVMF and a built image (minutes).
#
# Variables: SMOKE_SSH_PORT [10022] and SMOKE_SFTP_PORT [10023] on the host;
# SMOKE_ADMIN_SSH_PORT [2022] in the VM; SMOKE_BOOT_TIMEOUT [300] seconds;
# SMOKE_ACCEL kvm | tcg [kvm when /dev/kvm is usable]; SMOKE_EXPOSURE, the
# exposure score `systemd-analyze security` must give [2.0].
# The quoted commands run in the VM (over ssh): expanded there, not here.
# shellcheck disable=SC2016,SC2029
set -euo pipefail

die() { echo "smoke.sh: $*" >&2; exit 1; }
image=${SMOKE_IMAGE:?SMOKE_IMAGE names the image}
admin_key=${SMOKE_ADMIN_KEY:?SMOKE_ADMIN_KEY names the admin private key}
partner=${SMOKE_PARTNER:-example}
partner_key=${SMOKE_PARTNER_KEY:?SMOKE_PARTNER_KEY names the partner private key}
ssh_port=${SMOKE_SSH_PORT:-10022}
sftp_port=${SMOKE_SFTP_PORT:-10023}
admin_port=${SMOKE_ADMIN_SSH_PORT:-2022}
boot_timeout=${SMOKE_BOOT_TIMEOUT:-300}
exposure=${SMOKE_EXPOSURE:-2.0}
ovmf=/usr/share/ovmf/OVMF.fd
[ -f "$image" ] || die "$image is not a file"
[ -f "$ovmf" ] || die "$ovmf not found: apt-get install ovmf"
command -v qemu-system-x86_64 >/dev/null || die "apt-get install qemu-system-x86"

work=$(mktemp -d)
qemu_pid=""
cleanup() {
  if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fmt=raw
case $image in *.qcow2) fmt=qcow2 ;; *.vmdk) fmt=vmdk ;; esac
accel=${SMOKE_ACCEL:-}
auto=0
if [ -z "$accel" ]; then
  accel=tcg
  if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then accel=kvm auto=1; fi
fi
boot() {
  local cpu=max
  [ "$accel" = kvm ] && cpu=host
  echo "smoke.sh: booting $image (accel $accel), serial console in $work/console.log"
  t0=$(date +%s)
  qemu-system-x86_64 -machine q35,accel="$accel" -cpu "$cpu" -smp 2 -m 2048 -bios "$ovmf" \
    -drive file="$image",format="$fmt",if=virtio -snapshot \
    -nic user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:"$ssh_port"-:"$admin_port",hostfwd=tcp:127.0.0.1:"$sftp_port"-:22 \
    -display none -serial file:"$work/console.log" -monitor none &
  qemu_pid=$!
}
boot
# /dev/kvm can be there and still refuse the guest (nested KVM that rejects
# the CPU's MSRs): qemu then aborts at once; without SMOKE_ACCEL, emulate
sleep 5
if [ "$auto" = 1 ] && ! kill -0 "$qemu_pid" 2>/dev/null; then
  echo "smoke.sh: KVM refused the guest; booting again with software emulation (tcg)"
  accel=tcg
  boot
fi

sshopts=(-i "$admin_key" -p "$ssh_port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR)
vm() { ssh "${sshopts[@]}" root@127.0.0.1 "$@"; }
until vm true 2>/dev/null; do
  kill -0 "$qemu_pid" 2>/dev/null || { tail -n 40 "$work/console.log" >&2; die "qemu exited"; }
  [ $(($(date +%s) - t0)) -lt "$boot_timeout" ] || { tail -n 40 "$work/console.log" >&2; die "no admin ssh after $boot_timeout s"; }
  sleep 2
done
echo "smoke.sh: admin ssh up after $(($(date +%s) - t0)) s"

fail=0
check() { # check NAME COMMAND...: runs the command, prints ok/FAIL
  if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
until [ "$(vm systemctl is-active sluice || true)" != activating ]; do sleep 1; done
vm systemd-analyze time || true
vm networkctl status --no-pager -n 0 | sed -n '1,12p' || true
check "static address 10.0.2.15/24 by networkd" vm 'ip -4 -o addr show | grep -q "inet 10.0.2.15/24"'
vm systemctl status sluice --no-pager -n 5 || true
check "sluice.service active (Type=notify)" vm '[ "$(systemctl show -P Type sluice)" = notify ] && systemctl is-active -q sluice'
# sluice.socket binds port 22 and passes it: systemd (pid 1) and the
# service both hold it
check "sluice.socket active and enabled" vm 'systemctl is-active -q sluice.socket && [ "$(systemctl is-enabled sluice.socket)" = enabled ]'
vm "ss -Hltnp 'sport = :22'" || true
check "port 22 held by systemd (pid 1) and sluice" vm 'l=$(ss -Hltnp "sport = :22") && printf "%s\n" "$l" | grep -q "(\"systemd\",pid=1," && printf "%s\n" "$l" | grep -q "\"sluice[a-z-]*\",pid="'
vm "journalctl -u sluice -b --no-pager -o cat | grep -E 'listening on|setpriority: not permitted' | head -n 4" || true
check "the supervisor took the socket systemd passed" vm 'journalctl -u sluice -b --no-pager -o cat | grep -q "listening on 0.0.0.0:22 (the socket systemd passed)"'
# the bounding set: CAP_SETUID (7) and CAP_SETGID (6), nothing else
vm 'grep -E "^Cap(Prm|Eff|Bnd|Amb)" /proc/$(systemctl show -P MainPID sluice)/status' || true
check "main process CapBnd is cap_setuid,cap_setgid (00000000000000c0)" vm 'grep -q -x "CapBnd:[[:space:]]*00000000000000c0" /proc/$(systemctl show -P MainPID sluice)/status'
vm systemd-analyze security sluice.service --no-pager | tail -n 1
check "exposure $exposure" vm "systemd-analyze security sluice.service --no-pager | tail -n 1 | grep -q 'exposure level for sluice.service: $exposure '"
pid=$(vm systemctl show -P MainPID sluice)
restarts=$(vm systemctl show -P NRestarts sluice)
since=$(vm date +%s)
check "reload keeps the main process" vm "systemctl reload sluice && sleep 3 && systemctl is-active -q sluice && [ \"\$(systemctl show -P MainPID sluice)\" = $pid ]"
# the supervisor restarts the roles one at a time (SIGTERM as the role's
# user; SIGKILL after 15 s, with "did not stop; killing it"), then logs
# "reloaded"
for _ in $(seq 75); do
  vm "journalctl -u sluice --since @$since --no-pager -o cat | grep -q 'reloaded /etc/sluice'" && break
  sleep 1
done
vm "journalctl -u sluice --since @$since --no-pager -o cat | grep -i -E 'reload|SIGHUP|role|kill' | tail -n 8" || true
check "reload: the roles stopped by SIGTERM (no 'did not stop; killing it')" vm "journalctl -u sluice --since @$since --no-pager -o cat | grep -q 'reloaded /etc/sluice' && ! journalctl -u sluice -b --no-pager | grep -q 'did not stop; killing it'"

name="smoke-$(date +%s).txt"
echo "smoke test $(date -u)" > "$work/$name"
check "sftp upload as $partner" sftp -q -b - -P "$sftp_port" -i "$partner_key" -o StrictHostKeyChecking=no \
  -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR "$partner@127.0.0.1" <<SFTP
put $work/$name $name
SFTP
stored=""
for _ in $(seq 30); do
  stored=$(vm "find /var/lib/sluice/objects -name '$name' -type f" || true)
  [ -n "$stored" ] && break
  sleep 1
done
check "object in the store: ${stored:-none}" test -n "$stored"
if [ -n "$stored" ]; then
  check "stored bytes match" cmp -s "$work/$name" <(vm cat "$stored")
fi

echo "smoke.sh: watching the watchdog for 75 s"
sleep 75
vm systemctl show -p WatchdogUSec -p WatchdogTimestamp -p MainPID -p NRestarts sluice || true
check "watchdog: still active" vm systemctl is-active -q sluice
check "watchdog: same main process ($pid)" vm "[ \"\$(systemctl show -P MainPID sluice)\" = $pid ]"
check "watchdog: no restart since ($restarts)" vm "[ \"\$(systemctl show -P NRestarts sluice)\" = $restarts ]"
check "watchdog: no 'Watchdog timeout' in the journal" vm "! journalctl -u sluice --no-pager | grep -q 'Watchdog timeout'"

# a stop with an upload in flight: 1.5 MB at 800 Kbit/s takes about 15 s;
# the stop comes 5 s into it, within shutdown_grace (30 s)
inflight="inflight-$(date +%s).bin"
head -c 1500000 /dev/urandom > "$work/$inflight"
sftp -q -b - -l 800 -P "$sftp_port" -i "$partner_key" -o StrictHostKeyChecking=no \
  -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR "$partner@127.0.0.1" \
  > "$work/inflight.log" 2>&1 <<SFTP &
put $work/$inflight $inflight
SFTP
sftp_pid=$!
sleep 5
t1=$(date +%s%N)
vm systemctl stop sluice
echo "smoke.sh: systemctl stop with an upload in flight took $((($(date +%s%N) - t1) / 1000000)) ms"
check "the upload in flight finished during the drain" wait "$sftp_pid"
check "stop drains (exit 0, not killed)" vm '[ "$(systemctl show -P Result sluice)" = success ] && ! journalctl -u sluice --no-pager | grep -q -E "SIGKILL|Killing process"'
vm "journalctl -u sluice -n 12 --no-pager -o short-monotonic" || true

# socket activation: sluice.service is stopped, sluice.socket still listens;
# a partner's connection waits in its backlog and starts the service (PID 1
# logs "Incoming traffic" at debug level, hence the log level for a while)
since=$(vm date +%s)
check "sluice.service stopped, sluice.socket still listening" vm '! systemctl is-active -q sluice.service && systemctl is-active -q sluice.socket'
vm systemd-analyze log-level debug || true
activated="activated-$(date +%s).txt"
echo "socket activation $(date -u)" > "$work/$activated"
t1=$(date +%s%N)
check "sftp upload as $partner to the stopped service (started by the connection)" \
  sftp -q -b - -P "$sftp_port" -i "$partner_key" -o StrictHostKeyChecking=no \
  -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR "$partner@127.0.0.1" <<SFTP
put $work/$activated $activated
SFTP
echo "smoke.sh: that upload, the service's start included, took $((($(date +%s%N) - t1) / 1000000)) ms"
vm systemd-analyze log-level info || true
vm "journalctl -u sluice.socket -u sluice --since @$since --no-pager -o short-monotonic | grep -E 'Incoming traffic|Starting|Started|socket systemd passed' | tail -n 6" || true
check "sluice.service started again by the connection (Incoming traffic on sluice.socket, active)" vm "journalctl -u sluice.socket --since @$since --no-pager -o cat | grep -q 'Incoming traffic' && journalctl -u sluice --since @$since --no-pager -o cat | grep -q '^Started sluice.service' && systemctl is-active -q sluice && [ \"\$(systemctl show -P TriggeredBy sluice)\" = sluice.socket ]"
stored=""
for _ in $(seq 30); do
  stored=$(vm "find /var/lib/sluice/objects -name '$activated' -type f" || true)
  [ -n "$stored" ] && break
  sleep 1
done
check "the file uploaded by that connection is stored: ${stored:-none}" test -n "$stored"
if [ -n "$stored" ]; then
  check "its bytes match" cmp -s "$work/$activated" <(vm cat "$stored")
fi
# what was accepted before the stop is stored after the next start
stored=""
for _ in $(seq 60); do
  stored=$(vm "find /var/lib/sluice/objects -name '$inflight' -type f" || true)
  [ -n "$stored" ] && break
  sleep 1
done
check "the file uploaded during the drain is stored: ${stored:-none}" test -n "$stored"
if [ -n "$stored" ]; then
  check "its bytes match" cmp -s "$work/$inflight" <(vm cat "$stored")
fi

# the watchdog is armed: a supervisor that stops answering (SIGSTOP) is
# killed after WatchdogSec and started again (Restart=on-failure)
pid=$(vm systemctl show -P MainPID sluice)
restarts=$(vm systemctl show -P NRestarts sluice)
vm kill -STOP "$pid"
echo "smoke.sh: supervisor $pid stopped with SIGSTOP; waiting for the watchdog"
newpid=$pid
for _ in $(seq 90); do
  sleep 2
  newpid=$(vm systemctl show -P MainPID sluice)
  [ "$newpid" != "$pid" ] && [ "$newpid" != 0 ] && vm systemctl is-active -q sluice && break
done
vm "journalctl -u sluice --no-pager -o short-monotonic | grep -E 'Watchdog timeout|Killing|Scheduled restart|Started' | tail -n 4" || true
check "a hung supervisor is killed by the watchdog" vm "journalctl -u sluice --no-pager | grep -q 'Watchdog timeout'"
check "and started again (main process $pid -> $newpid, active)" vm "[ $newpid != $pid ] && [ \"\$(systemctl show -P NRestarts sluice)\" -gt $restarts ] && systemctl is-active -q sluice"

vm systemctl poweroff || true
wait "$qemu_pid" || true
qemu_pid=""
[ "$fail" -eq 0 ] || die "some checks failed"
echo "smoke.sh: all checks passed"
