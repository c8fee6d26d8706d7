#!/usr/bin/env bash
# Beacons per second that `engine serve` accepts on one core with persistence on (SQLite
# file, group commit), driven by wrk on the other core. Prints accepted/s and the server's
# CPU per beacon, and checks that every acknowledged beacon is in the log.
#   bench/serve-throughput.sh [seconds]      (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
cargo build --release -q
DB=$(mktemp -d)/events.db
taskset -c 1 target/release/engine serve --listen 127.0.0.1:18787 --db "$DB" > /tmp/serve-bench.log &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
sleep 0.5
T0=$(awk '{print $14 + $15}' /proc/$SERVER/stat)
taskset -c 0 wrk -t1 -c64 -d"${SECS}s" -s bench/beacons.lua http://127.0.0.1:18787 > /tmp/serve-wrk.out
T1=$(awk '{print $14 + $15}' /proc/$SERVER/stat)
HEALTH=$(curl -s http://127.0.0.1:18787/health)
kill -INT $SERVER; wait $SERVER || true
ROWS=$(python3 -c "import sqlite3,sys;print(sqlite3.connect(sys.argv[1]).execute('select count(*) from events').fetchone()[0])" "$DB")
python3 - "$SECS" "$T0" "$T1" "$ROWS" "$HEALTH" <<'PY'
import json, sys, re
secs, t0, t1, rows = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
health = json.loads(sys.argv[5])
out = open("/tmp/serve-wrk.out").read()
reqs = int(re.search(r"(\d+) requests in", out).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
cpu = (t1 - t0) / 100.0
acc = health["events_accepted"]
print(f"wrk sent {reqs} beacons in {secs:.0f}s; server accepted {acc} ({acc/secs:,.0f}/s), non-2xx {non2xx.group(1) if non2xx else 0}")
print(f"server CPU {cpu:.2f}s -> {acc/cpu:,.0f} beacons per CPU-second (one core)")
print(f"SQLite log rows {rows} (== accepted: {rows == acc})")
PY
