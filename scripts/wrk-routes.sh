#!/usr/bin/env bash
# wrk-routes.sh BIN DB LABEL: wrk on every read route at 1, 8 and 64 connections against `community-hub serve`
# on DB (a demo database: `community-hub demo --no-serve --db DB`), with a broker of its own.
# Needs wrk, mosquitto, sqlite3. Prints: route, connections, requests/s, p99, non-2xx, socket errors, /healthz after.
BIN=$1; DB=$2; LABEL=$3; DUR=${DUR:-5s}
work=$(mktemp -d); cd "$work"
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
hport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user_line=""; [ "$(id -u)" = 0 ] && user_line="user root"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n%s\n' "$mport" "$user_line" > broker.conf
mosquitto -c broker.conf > broker.log 2>&1 & BROKER=$!
sleep 0.5
tok() { $BIN tokens create demo-$1 --db $DB 2>/dev/null | tail -1; }
RES=$(tok resident); ASSO=$(tok association); STAFF=$(tok staff)
MEMBER=$(sqlite3 $DB "SELECT id FROM carshare_member WHERE dwelling_id='DEMO-OUT-A-01' ORDER BY id LIMIT 1")
TODAY=$(TZ=Europe/Paris date +%F); FROM=$(TZ=Europe/Paris date -d '-7 days' +%F); Y=$(TZ=Europe/Paris date -d '-1 days' +%F)
start_hub() { LOG_LEVEL=warning $BIN serve --db $DB --mqtt-port $mport --http-port $hport > hub-$LABEL.log 2>&1 & HUB=$!;
  for i in $(seq 1 100); do curl -s -m 1 http://127.0.0.1:$hport/healthz >/dev/null && break; sleep 0.1; done; }
stop_hub() { kill -TERM $HUB 2>/dev/null; for i in $(seq 1 100); do kill -0 $HUB 2>/dev/null || return; sleep 0.1; done; kill -9 $HUB 2>/dev/null; wait $HUB 2>/dev/null; }
start_hub
routes=(
"dwelling|$RES|/api/v1/dwellings/DEMO-OUT-A-01/energy?from=$FROM&to=$TODAY"
"building|$ASSO|/api/v1/buildings/DEMO-OUT-A/energy?from=$FROM&to=$TODAY"
"estate|$ASSO|/api/v1/estates/DEMO-OUTREAU/energy?from=$FROM&to=$TODAY"
"readings|$STAFF|/api/v1/devices/demo-box-OUT-A-01/readings?from=$Y"
"quarantine|$STAFF|/api/v1/quarantine"
"statement|$RES|/api/v1/carshare/members/$MEMBER/statement"
"bookings|$ASSO|/api/v1/carshare/bookings"
"balances|$STAFF|/api/v1/carshare/reports/balances"
"me|$RES|/api/v1/me"
)
echo "route conns req/s p99 non2xx errors healthz_after" 
for r in "${routes[@]}"; do IFS='|' read name token path <<< "$r"
  for c in 1 8 64; do
    t=2; [ $c = 1 ] && t=1
    out=$(wrk -t$t -c$c -d$DUR --timeout 5s --latency -H "Authorization: Bearer $token" "http://127.0.0.1:$hport$path" 2>&1)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    non=$(echo "$out" | awk '/Non-2xx/ {print $5}'); err=$(echo "$out" | grep -o 'Socket errors.*' | tr -d ',')
    h=$(curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:$hport/healthz)
    echo "$name $c ${rps:-0} ${p99:--} ${non:-0} \"${err:-}\" $h"
    if [ "$h" != 200 ]; then stop_hub; start_hub; fi
  done
done
stop_hub; kill $BROKER
