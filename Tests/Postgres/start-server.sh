#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 server for the tests: a new data directory under DIR, a free
# loopback port, trust authentication on loopback only, fsync on (the hub's promises are about a
# synced commit). The server refuses to run as root, so under root it runs as the `postgres` user
# that Debian's package creates. Prints the server's URL (postgres://USER@127.0.0.1:PORT/postgres)
# on its last line; `stop-server.sh DIR` stops it.
#   usage: Tests/Postgres/start-server.sh DIR
set -euo pipefail
dir=${1:?usage: start-server.sh DIR}
bin=""
for candidate in "${HUB_POSTGRES_BIN:-}" /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
  [ -n "$candidate" ] && [ -x "$candidate/initdb" ] && { bin=$candidate; break; }
done
[ -n "$bin" ] || { echo "no PostgreSQL server here: install Debian's postgresql-15 (deploy/install-debian-packages.sh)" >&2; exit 1; }
as=()
owner=$(id -un)
if [ "$(id -u)" = 0 ]; then
  owner=postgres
  id -u "$owner" >/dev/null 2>&1 || { echo "running as root and there is no 'postgres' user to run the server as" >&2; exit 1; }
  as=(runuser -u "$owner" --)
fi
mkdir -p "$dir"
chown "$owner" "$dir" 2>/dev/null || true
if [ "$(id -u)" = 0 ]; then
  # The server's user must be able to reach DIR: let it through the parents (a mktemp -d is 700).
  parent=$(cd "$dir/.." && pwd)
  while [ "$parent" != / ]; do
    "${as[@]}" test -x "$parent" || chmod o+x "$parent"
    parent=$(dirname "$parent")
  done
fi
chmod 700 "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as[@]}" "$bin/initdb" -D "$dir/data" -U "$owner" --auth=trust --encoding=UTF8 --locale=C.UTF-8 > "$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
shared_buffers = 256MB
timezone = 'UTC'
log_min_messages = warning
CONF
# The server must not inherit this script's other descriptors: a caller that watches one of them
# to learn when the script ends (Foundation's Process does) would wait for the server to stop.
# Python's subprocess closes every descriptor but 0, 1 and 2 in the child.
python3 -c 'import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))' \
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start > /dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }
echo "postgres://$owner@127.0.0.1:$port/postgres"
