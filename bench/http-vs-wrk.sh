#!/usr/bin/env bash
# Requests per CPU-second of the engine vs wrk, side by side, against nginx `return 204`
# pinned to the other core. Prints one line per driver and the ratios.
#   bench/http-vs-wrk.sh [seconds] [repetitions]        (needs wrk and nginx: apt-get install wrk nginx-light)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
REPS=${2:-3}
ENGINE=target/release/engine
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
command -v nginx >/dev/null || { echo "needs nginx (apt-get install nginx-light)"; exit 1; }
cargo build --release -q
taskset -c 1 nginx -c "$PWD/bench/nginx.conf" & NGINX=$!
trap 'kill $NGINX 2>/dev/null || true' EXIT
sleep 0.5
URL=http://127.0.0.1:18080/track
cpu() { awk '{print $1 + $2}' "$1"; }

run_wrk() {
  /usr/bin/time -o /tmp/bench-wrk.time -f "%U %S" taskset -c 0 wrk -t1 -c50 -d"${SECS}s" -s bench/post.lua "$URL" > /tmp/bench-wrk.out
  echo "$(awk '/requests in/ {print $1}' /tmp/bench-wrk.out) $(cpu /tmp/bench-wrk.time)"
}
run_engine() { # $1 = METRICS flag
  /usr/bin/time -o /tmp/bench-engine.time -f "%U %S" taskset -c 0 "$ENGINE" run -q --no-summary --workers 1 \
    -u 50 -d "${SECS}s" -e URL="$URL" -e METRICS="$1" --summary-export /tmp/bench-engine.json bench/post-loop.lua
  echo "$(python3 -c "import json;print(int(json.load(open('/tmp/bench-engine.json'))['metrics']['http_reqs']['count']))") $(cpu /tmp/bench-engine.time)"
}
# Interleaved repetitions: the machine is shared, so each ratio pairs runs made close in time.
: > /tmp/bench-rows
for rep in $(seq "$REPS"); do
  echo "$(run_wrk) $(run_engine 0) $(run_engine 1)" >> /tmp/bench-rows
done
python3 - "$SECS" <<'PY'
import statistics, sys
secs = float(sys.argv[1])
rows = [list(map(float, l.split())) for l in open("/tmp/bench-rows")]
def per_cpu(r, i): return r[i] / r[i + 1]
w = [per_cpu(r, 0) for r in rows]; e = [per_cpu(r, 2) for r in rows]; m = [per_cpu(r, 4) for r in rows]
med = statistics.median
print(f"{len(rows)} interleaved runs of {secs:.0f}s, medians:")
print(f"wrk -t1 -c50            : {med(r[0] for r in rows)/secs:9.0f} req/s  {med(w):9.0f} req/CPU-s")
print(f"engine 1 worker, 50 VUs : {med(r[2] for r in rows)/secs:9.0f} req/s  {med(e):9.0f} req/CPU-s  = {med(a/b for a, b in zip(e, w)):.2f}x wrk")
print(f"  + Rate, Trend, check  : {med(r[4] for r in rows)/secs:9.0f} req/s  {med(m):9.0f} req/CPU-s  = {med(a/b for a, b in zip(m, w)):.2f}x wrk")
print(f"best run of each: wrk {max(w):.0f}, engine {max(e):.0f} ({max(e)/max(w):.2f}x), with metrics {max(m):.0f} ({max(m)/max(w):.2f}x) req/CPU-s")
PY
