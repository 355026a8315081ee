#!/usr/bin/env bash
# The README's run command: installs what sluice needs, builds it, writes a
# demo configuration (a generated host key, a demo partner with a generated
# key, a local directory as the object store) and starts the gateway on
# 127.0.0.1:2222 in the foreground. Ctrl-C stops it.
#
#   deploy/demo.sh            build and run
#   DEMO_DIR=/path deploy/demo.sh   keep the demo state elsewhere (default
#                             /var/lib/sluice-demo as root, ./demo otherwise)
#
# As root (the way it runs in production) sluice runs its roles as the
# users deploy/create-users.sh makes: sluice (listener, intake, uploader,
# audit writer) and sluice-session (one sandboxed process per connection).
# They must reach the demo directory, so as root it lives in /var/lib.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -eq 0 ]; then
  demo=${DEMO_DIR:-/var/lib/sluice-demo}
else
  demo=${DEMO_DIR:-$top/demo}
fi

"$top/deploy/install-deps.sh"
if [ "$(id -u)" -eq 0 ]; then "$top/deploy/create-users.sh"; fi
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j"$(nproc)" --target sluice

mkdir -p "$demo/objects"
if [ "$(id -u)" -eq 0 ]; then
  # the roles pass through (0711) and the uploader writes the objects
  chmod 711 "$demo"
  chown sluice:sluice "$demo/objects"
else
  chmod 700 "$demo"
fi
if [ ! -f "$demo/demo_key" ]; then
  ssh-keygen -q -t ed25519 -N '' -C sluice-demo -f "$demo/demo_key"
fi
cat > "$demo/sluice.yaml" <<YAML
# sluice demo configuration, written by deploy/demo.sh
listen: 127.0.0.1:2222
host_keys:
  - $demo/ssh_host_ed25519_key      # generated (0600) on first start
state_dir: $demo/state
audit:
  path: $demo/audit/audit.jsonl   # sealed segments go to $demo/audit/segments
store:
  url: file://$demo/objects          # for S3: s3://bucket/prefix + AWS_* variables
partners:
  - name: demo
    authorized_keys:
      - $(cut -d' ' -f1,2 "$demo/demo_key.pub") sluice-demo
    allow_from: [127.0.0.0/8, "::1/128"]
    object_key: "{partner}/{path}"
YAML

"$top/build/sluice" check-config -c "$demo/sluice.yaml"
cat <<MSG

sluice demo is starting on 127.0.0.1:2222.

  upload a file:   sftp -P 2222 -i $demo/demo_key -o StrictHostKeyChecking=accept-new demo@127.0.0.1
                   sftp> put /etc/hostname
  stored objects:  $demo/objects/demo/
  audit trail:     $demo/audit/   (check it: build/sluice audit verify -c $demo/sluice.yaml;
                   a file's story: build/sluice audit trace -c $demo/sluice.yaml demo:hostname)
  state database:  $demo/state/sluice.db

Ctrl-C stops the gateway.

MSG
exec "$top/build/sluice" serve -c "$demo/sluice.yaml"
