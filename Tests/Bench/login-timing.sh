#!/usr/bin/env bash
# How long a failed login takes for a name that exists and for one that does not (issue 14,
# defect 11: 308 ms against 3 ms told an attacker which names exist), against the release demo.
#
#   swift build -c release --product community-hub && Tests/Bench/login-timing.sh
#
# TRIES wrong passwords for the demo's resident (a real name; five failures per name are free of
# the slowing, so TRIES stays at 4) and TRIES names that do not exist (one try each), alternately;
# each is POST /api/v1/sessions timed by curl. Both must take the same bcrypt work.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/release/community-hub}
TRIES=${TRIES:-4}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" demo --db "$work/demo.sqlite" --http-port "$port" --weeks 1 --step-minutes 60 > "$work/demo.log" 2>&1 &
demo=$!
trap 'kill -TERM $demo 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do grep -q "is running" "$work/demo.log" && break; sleep 1; done
attempt() {  # name -> "status seconds"
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H 'Content-Type: application/json' \
    --data "{\"name\": \"$1\", \"password\": \"not-the-password\"}" "http://127.0.0.1:$port/api/v1/sessions"
}
known=(); unknown=()
for i in $(seq 1 "$TRIES"); do
  read -r status seconds < <(attempt demo-resident); known+=("$seconds"); echo "known name, wrong password: $status in $seconds s"
  read -r status seconds < <(attempt "nobody-$i-$RANDOM"); unknown+=("$seconds"); echo "unknown name:                $status in $seconds s"
done
python3 - "${known[*]}" "${unknown[*]}" <<'PY'
import statistics, sys
known = [1000 * float(x) for x in sys.argv[1].split()]
unknown = [1000 * float(x) for x in sys.argv[2].split()]
print(f"median: known name {statistics.median(known):.0f} ms, unknown name {statistics.median(unknown):.0f} ms (ratio {statistics.median(unknown) / statistics.median(known):.2f})")
PY
