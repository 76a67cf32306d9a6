#!/usr/bin/env bash
# bench-all.sh BIN OUT: the three benchmarks at a size that runs in a few minutes (figures to OUT).
BIN=$1; OUT=$2
{
echo "== bench savings (allocation)"; $BIN bench savings --skip-database 2>&1 | tail -8
echo "== bench savings (database, 200 dwellings, 7 days)"; $BIN bench savings --counts 1000 --db-dwellings 200 --days 7 --repetitions 3 2>&1 | tail -6
echo "== bench carshare"; $BIN bench carshare --bookings 1000 --trips 500 --lines 10000,100000 2>&1 | tail -14
echo "== bench ingest"; $BIN bench ingest --messages 100000 --backlog 200000 --rounds 3 2>&1 | tail -16
} > $OUT 2>&1
