#!/usr/bin/env bash
# Stops the server `start-server.sh DIR` started (fast shutdown), and removes DIR.
set -euo pipefail
dir=${1:?usage: stop-server.sh DIR}
bin=""
for candidate in "${HUB_POSTGRES_BIN:-}" /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
  [ -n "$candidate" ] && [ -x "$candidate/pg_ctl" ] && { bin=$candidate; break; }
done
as=()
[ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
[ -d "$dir/data" ] && "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop > /dev/null 2>&1 || true
rm -rf "$dir"
