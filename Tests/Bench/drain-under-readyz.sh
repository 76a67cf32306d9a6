#!/usr/bin/env bash
# The hub's drain of a backlog with and without 16 clients hammering /readyz, alternately in the
# same run (issue 14, defect 15: every /readyz did a synced write and halved the drain; a
# successful write probe now stands for two seconds).
#
#   swift build -c release --product community-hub && Tests/Bench/drain-under-readyz.sh
#
# Each round: a fresh broker and database with DEVICES canonical meters; the hub (release build,
# `serve`) starts once to open its persistent session and stops; BACKLOG readings are published
# (Tests/Bench/mqtt_load.py --count); the hub starts again and drains them, alone or while wrk
# (Debian) hammers /readyz with CONNECTIONS connections. The drain rate is the backlog over the
# time from the hub's connection to the last reading stored (hub_readings_stored_total).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/release/community-hub}
DEVICES=${DEVICES:-2000}
BACKLOG=${BACKLOG:-200000}
CONNECTIONS=${CONNECTIONS:-16}
ROUNDS=${ROUNDS:-2}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

drain() {  # mode: quiet | readyz ; prints the rate
  local mode=$1 work; work=$(mktemp -d)
  local mqtt http; mqtt=$(free_port); http=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nqueue_qos0_messages true\nmax_inflight_messages 100\n' "$mqtt" > "$work/mosquitto.conf"
  /usr/sbin/mosquitto -c "$work/mosquitto.conf" > "$work/broker.log" 2>&1 &
  local broker=$!; pids+=("$broker")
  { echo "estate;building;dwelling;device;kind;format;since"
    for i in $(seq 0 $((DEVICES - 1))); do printf 'BENCH;BENCH-A;BENCH-A-%04d;bench-%04d;meter;canonical;2025-01-01\n' "$i" "$i"; done
  } > "$work/registry.csv"
  "$BIN" registry import --db "$work/hub.sqlite" "$work/registry.csv" > /dev/null
  local base="http://127.0.0.1:$http"
  start_hub() {
    "$BIN" serve --db "$work/hub.sqlite" --mqtt-port "$mqtt" --http-port "$http" >> "$work/hub.log" 2>&1 &
    hub=$!; pids+=("$hub")
    for _ in $(seq 1 600); do grep -q "connected to the MQTT broker" "$work/hub.log" 2>/dev/null && break; sleep 0.05; done
  }
  start_hub
  kill -TERM "$hub"; wait "$hub" || true
  : > "$work/hub.log"
  python3 Tests/Bench/mqtt_load.py --port "$mqtt" --devices "$DEVICES" --count "$BACKLOG" > /dev/null
  sleep 1
  local started; started=$(date +%s.%N)
  start_hub
  local connected; connected=$(date +%s.%N)
  local hammer=""
  if [ "$mode" = readyz ]; then
    wrk -t2 -c"$CONNECTIONS" -d600s "$base/readyz" > "$work/wrk.log" 2>&1 &
    hammer=$!; pids+=("$hammer")
  fi
  local stored=0
  while [ "${stored%.*}" -lt "$BACKLOG" ]; do
    sleep 0.1
    stored=$(curl -s "$base/metrics" | awk '/^hub_readings_stored_total/ {print $2}'); stored=${stored:-0}
  done
  local done_at; done_at=$(date +%s.%N)
  local readyz=""
  if [ -n "$hammer" ]; then
    kill -INT "$hammer"; wait "$hammer" || true
    readyz=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/wrk.log")
  fi
  kill -TERM "$hub"; wait "$hub" || true
  kill "$broker"; wait "$broker" 2>/dev/null || true
  rm -rf "$work"
  python3 -c "import sys; b=$BACKLOG; t=$done_at-$connected; print(f'{b/t:.0f} {t:.2f} ${readyz:-0}')"
}

echo "drain of $BACKLOG readings from $DEVICES meters; /readyz hammered by $CONNECTIONS connections (wrk) or not; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-8s %12s %10s %12s\n' round mode "readings/s" seconds "readyz/s"
quiet=(); hammered=()
for round in $(seq 1 "$ROUNDS"); do
  for mode in quiet readyz; do
    read -r rate seconds readyz < <(drain "$mode")
    printf '%-8s %-8s %12s %10s %12s\n' "$round" "$mode" "$rate" "$seconds" "$readyz"
    if [ "$mode" = quiet ]; then quiet+=("$rate"); else hammered+=("$rate"); fi
  done
done
python3 - "${quiet[*]}" "${hammered[*]}" <<'PY'
import statistics, sys
quiet = [float(x) for x in sys.argv[1].split()]
hammered = [float(x) for x in sys.argv[2].split()]
print(f"median drain: {statistics.median(quiet):.0f}/s alone, {statistics.median(hammered):.0f}/s with /readyz hammered: ratio {statistics.median(hammered) / statistics.median(quiet):.2f}")
PY
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
