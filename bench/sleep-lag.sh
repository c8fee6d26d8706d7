#!/usr/bin/env bash
# Oversleep of N VUs looping sleep(1), from the engine's own vu_sleep_lag Trend (every sleep
# of every VU, measured against its due time on the worker's clock).
#   bench/sleep-lag.sh [N=100000] [hold=20s]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
HOLD=${2:-20s}
cargo build --release -q
target/release/engine run -q --no-summary -e VUS="$N" -e HOLD="$HOLD" \
  --summary-trend-stats 'count,med,p(99),p(99.9),max' --summary-export /tmp/sleep-lag.json bench/sleep-lag.lua
python3 - "$N" <<'PY'
import json, sys
m = json.load(open("/tmp/sleep-lag.json"))["metrics"]["vu_sleep_lag"]
print(f"{sys.argv[1]} VUs, {m['count']:.0f} sleeps: oversleep median {m['med']:.2f} ms, "
      f"p99 {m['p(99)']:.2f} ms, p99.9 {m['p(99.9)']:.2f} ms, max {m['max']:.2f} ms")
PY
