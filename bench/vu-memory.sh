#!/usr/bin/env bash
# Memory and start-up time of idle VUs: peak RSS with 1 VU and with N VUs, per-VU cost.
#   bench/vu-memory.sh [N=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
# Long enough for the last VU to start (a million take several seconds).
HOLD=$(( N / 100000 + 4 ))s
cargo build --release -q
peak() { # $1 = VUs; prints "peak_kb started_line"
  /usr/bin/time -o /tmp/vu-mem.time -f "%M" target/release/engine run -q --no-summary \
    -e VUS="$1" -e HOLD="$HOLD" bench/idle-vus.lua 2> /tmp/vu-mem.err
  echo "$(cat /tmp/vu-mem.time)"
}
BASE=$(peak 1)
FULL=$(peak "$N")
STARTED=$(grep -o 'last VU started [0-9]* ms' /tmp/vu-mem.err || echo "last VU start not seen")
python3 - "$BASE" "$FULL" "$N" "$STARTED" <<'PY'
import sys
base, full, n, started = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print(f"1 VU: {base/1024:.1f} MB peak RSS; {n} VUs: {full/1024:.1f} MB; {(full-base)*1024/n:.0f} bytes per idle VU")
print(f"{n} VUs: {started} after the process began")
PY
