#!/usr/bin/env bash
# make demo: a throwaway Valkey on 127.0.0.1 with its config in a temp dir,
# hardened by examples/harden.yml, twice (the second run shows changed=0).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/valkeyops-demo.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  [ -f "$work/valkey.pid" ] && kill "$(cat "$work/valkey.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/valkey.conf" <<CONF
# demo valkey.conf (throwaway)
port $port
bind 127.0.0.1
dir $work
save ""
daemonize yes
pidfile $work/valkey.pid
logfile $work/valkey.log
enable-debug-command yes
CONF
chmod 0640 "$work/valkey.conf"
valkey-server "$work/valkey.conf"
for _ in $(seq 50); do valkey-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

# The collection as installed from its own directory.
mkdir -p "$work/collections/ansible_collections/valkeyops"
ln -s "$root" "$work/collections/ansible_collections/valkeyops/secure"
export ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_PYTHON_INTERPRETER="$root/.venv/bin/python"

echo "== valkey-server $(valkey-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on 127.0.0.1:$port, config $work/valkey.conf"
echo "== first run: hardens the server and the file (--diff shows what changes)"
"$root/.venv/bin/ansible-playbook" -i localhost, "$root/examples/harden.yml" -e valkey_port="$port" --diff
echo "== second run: nothing left to change"
"$root/.venv/bin/ansible-playbook" -i localhost, "$root/examples/harden.yml" -e valkey_port="$port" | tee "$work/second.txt"
grep -q "changed=0" "$work/second.txt"
echo "== valkey.conf now:"
grep -v '^#' "$work/valkey.conf"
