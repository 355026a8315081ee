#!/usr/bin/env bash
# Creates the two system accounts sluice runs its roles as when started as
# root (ARCHITECTURE.md "Process roles"); idempotent:
#   sluice          the service user: listener, intake, uploader, audit writer
#   sluice-session  the session user: one sandboxed process per SFTP connection
# Neither has a shell, a password or a home directory.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "sluice: run as root to create the sluice users" >&2; exit 1; }
for u in sluice sluice-session; do
  if ! getent passwd "$u" >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --comment "sluice gateway ($u)" "$u"
    echo "sluice: created system user $u"
  fi
done
