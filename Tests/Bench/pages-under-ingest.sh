#!/usr/bin/env bash
# Each page's server time under wrk (Debian) while ingest runs, against /healthz measured in the
# same run, and each page's weight in bytes.
#
#   swift build -c release --product community-hub && Tests/Bench/pages-under-ingest.sh
#
# The release binary runs the demo (its own broker, simulated meters, the car share); 400 more
# meters registered for the bench publish canonical readings at RATE messages a second through the
# same broker (Tests/Bench/mqtt_load.py) during the whole run, and each page is loaded by wrk
# (CONNECTIONS connections, SECONDS seconds) with a logged-in session of the role that uses it.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/release/community-hub}
RATE=${RATE:-1000}
CONNECTIONS=${CONNECTIONS:-4}
SECONDS_PER_PAGE=${SECONDS_PER_PAGE:-5}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$BIN" demo --db "$work/demo.sqlite" --http-port "$port" --weeks 3 --step-minutes 10 > "$work/demo.log" 2>&1 &
demo=$!
load=""
trap 'kill $load 2>/dev/null || true; kill $demo 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do grep -q "is running" "$work/demo.log" && break; sleep 1; done
grep -q "is running" "$work/demo.log" || { tail -20 "$work/demo.log"; echo "the demo did not start" >&2; exit 1; }
broker=$(grep -o 'Broker: 127.0.0.1:[0-9]*' "$work/demo.log" | cut -d: -f3)

# 400 bench meters in an estate of their own, registered in the running hub's database.
{
  echo "estate;building;dwelling;device;kind;format;since"
  for i in $(seq 0 399); do printf 'BENCH;BENCH-A;BENCH-A-%04d;bench-%04d;meter;canonical;2026-01-01\n' "$i" "$i"; done
} > "$work/bench-registry.csv"
"$BIN" registry import --db "$work/demo.sqlite" "$work/bench-registry.csv" > /dev/null
sleep 6   # the hub re-reads the registry within 5 s of an import
stored() { curl -s "$base/metrics" | awk '/^hub_readings_stored_total/ {print $2}'; }
python3 Tests/Bench/mqtt_load.py --port "$broker" --devices 400 --rate "$RATE" > "$work/load.log" 2>&1 &
load=$!
sleep 3
before=$(stored); started=$(date +%s)

session() {
  local jar="$work/jar-$1"
  curl -s -c "$jar" -b "$jar" "$base/connexion" -o "$work/login.html"
  local csrf; csrf=$(grep -o 'name="csrf" value="[^"]*"' "$work/login.html" | head -1 | sed 's/.*value="//;s/"//')
  curl -s -c "$jar" -b "$jar" -X POST --data-urlencode "csrf=$csrf" --data-urlencode "name=demo-$1" --data-urlencode "password=demo-password" "$base/connexion" -o /dev/null
  awk '$6 == "hub_session" {print $7}' "$jar"
}
declare -A cookie
for role in resident association driver staff; do cookie[$role]=$(session "$role"); done

# wrk's latency distribution: "50%" and "99%" lines, in ms.
ms() { awk -v q="$1" '$1 == q { v=$2; if (v ~ /us$/) { sub(/us/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v=v*1000 } printf "%.1f", v }'; }
measure() {  # role path
  local header=(); [ "$1" = "-" ] || header=(-H "Cookie: hub_session=${cookie[$1]}")
  local bytes; bytes=$(curl -s "${header[@]}" "$base$2" -o /dev/null -w '%{size_download}')
  local status; status=$(curl -s "${header[@]}" "$base$2" -o /dev/null -w '%{http_code}')
  local out; out=$(wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_PAGE}s" --latency "${header[@]}" "$base$2")
  local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  printf '%-12s %-24s %6s %8s %9s %9s %8s\n' "$1" "$2" "$status" "$bytes" "$(echo "$out" | ms 50%)" "$(echo "$out" | ms 99%)" "$rps"
}
echo "pages under wrk ($CONNECTIONS connections, ${SECONDS_PER_PAGE} s each) while $RATE readings/s are published to the hub"
printf '%-12s %-24s %6s %8s %9s %9s %8s\n' role page status bytes "p50 ms" "p99 ms" "req/s"
measure - /healthz
for page in /economies /voiture /voiture/demande; do measure resident "$page"; done
for page in /quartier /voiture/semaine /voiture/feuille /adherents /reservations/nouvelle /paiements/nouveau /caisse; do measure association "$page"; done
for page in /missions "/trajets/nouveau" /recharges/nouvelle; do measure driver "$page"; done
for page in /saisie/semaine /boitiers /messages-refuses /comptes /comptes/nouveau /registre /releves; do measure staff "$page"; done
measure - /connexion
measure - /healthz
after=$(stored); ended=$(date +%s)
echo "ingest during the run: $((after - before)) readings stored in $((ended - started)) s ($(( (after - before) / (ended - started + 1) )) /s; published at $RATE/s)"
