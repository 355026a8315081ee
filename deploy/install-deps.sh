#!/usr/bin/env bash
# Installs the Debian 12 packages sluice needs to build, run and test.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config
  libssh-dev libcurl4-openssl-dev libgpgme-dev libssl-dev libyaml-dev
  libsqlite3-dev libjansson-dev libcrypt-dev libseccomp-dev libcmocka-dev
  libexpat1-dev
  libmicrohttpd-dev
  libsystemd-dev
  openssh-client openssh-server gnupg sqlite3 curl python3
)
if [ "${1:-}" = "--test" ]; then
  # What the integration tests drive: real clients and an S3 API server.
  # lftp, curl (sftp:// via libssh2), python3-paramiko (for /usr/bin/python3) and
  # rclone are the partner clients of test_clients.py / test_hostile.py;
  # openssh-server is also what bench/sftp_bench.sh compares against.
  pkgs+=(lftp python3-paramiko rclone curl openssh-server valgrind)
  # test_package.py: builds the .deb (dpkg-shlibdeps), reads its man pages
  pkgs+=(dpkg-dev fakeroot man-db)
  # test_deploy_files.py: the cloud-init YAML and the image scripts
  pkgs+=(python3-yaml shellcheck)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "sluice: installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "sluice: run as root or install sudo" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
