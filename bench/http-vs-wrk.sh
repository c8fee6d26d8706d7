#!/usr/bin/env bash
# Requests per CPU-second of the engine vs wrk, side by side, against nginx `return 204`
# pinned to the other core. Prints one line per driver and the ratios.
#   bench/http-vs-wrk.sh [seconds]        (needs wrk and nginx: apt-get install wrk nginx-light)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
ENGINE=target/release/engine
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
command -v nginx >/dev/null || { echo "needs nginx (apt-get install nginx-light)"; exit 1; }
cargo build --release -q
taskset -c 1 nginx -c "$PWD/bench/nginx.conf" & NGINX=$!
trap 'kill $NGINX 2>/dev/null || true' EXIT
sleep 0.5
URL=http://127.0.0.1:18080/track
cpu() { awk '{print $1 + $2}' "$1"; }

/usr/bin/time -o /tmp/bench-wrk.time -f "%U %S" taskset -c 0 wrk -t1 -c50 -d"${SECS}s" -s bench/post.lua "$URL" > /tmp/bench-wrk.out
WRK_REQS=$(awk '/requests in/ {print $1}' /tmp/bench-wrk.out)
WRK_CPU=$(cpu /tmp/bench-wrk.time)

run_engine() { # $1 = METRICS flag
  /usr/bin/time -o /tmp/bench-engine.time -f "%U %S" taskset -c 0 "$ENGINE" run -q --no-summary --workers 1 \
    -u 50 -d "${SECS}s" -e URL="$URL" -e METRICS="$1" --summary-export /tmp/bench-engine.json bench/post-loop.lua
  python3 -c "import json;print(int(json.load(open('/tmp/bench-engine.json'))['metrics']['http_reqs']['count']))"
}
E_REQS=$(run_engine 0); E_CPU=$(cpu /tmp/bench-engine.time)
M_REQS=$(run_engine 1); M_CPU=$(cpu /tmp/bench-engine.time)

python3 - "$WRK_REQS" "$WRK_CPU" "$E_REQS" "$E_CPU" "$M_REQS" "$M_CPU" "$SECS" <<'PY'
import sys
wr, wc, er, ec, mr, mc, secs = map(float, sys.argv[1:])
w = wr / wc
e = er / ec
m = mr / mc
print(f"wrk -t1 -c50            : {wr/secs:9.0f} req/s  {w:9.0f} req/CPU-s")
print(f"engine 1 worker, 50 VUs : {er/secs:9.0f} req/s  {e:9.0f} req/CPU-s  = {e/w:.2f}x wrk")
print(f"  + Rate, Trend, check  : {mr/secs:9.0f} req/s  {m:9.0f} req/CPU-s  = {m/w:.2f}x wrk")
PY
