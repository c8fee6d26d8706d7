#!/usr/bin/env bash
# Requests per CPU-second of the engine vs wrk, side by side, against nginx `return 204`
# pinned to the other core. Prints one line per driver and the ratios.
#   bench/http-vs-wrk.sh [seconds] [repetitions]        (needs wrk and nginx: apt-get install wrk nginx-light)
#   LIVE=1 bench/http-vs-wrk.sh ...   also runs the metrics loop with the web dashboard
#                                     (1 s period, report export) and Prometheus remote write
#                                     (1 s pushes to a local prometheus on core 1) turned on
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
LIVE_ARGS=()
if [ "${LIVE:-0}" = 1 ]; then
  command -v prometheus >/dev/null || { echo "LIVE=1 needs prometheus (apt-get install prometheus)"; exit 1; }
  PROM_DIR=$(mktemp -d)
  printf 'global:\n  scrape_interval: 1h\n' > "$PROM_DIR/prometheus.yml"
  taskset -c 1 prometheus --config.file="$PROM_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DIR/data" \
    --web.listen-address=127.0.0.1:19091 --web.enable-remote-write-receiver > "$PROM_DIR/log" 2>&1 & PROM=$!
  trap 'kill $NGINX $PROM 2>/dev/null || true; rm -rf "$PROM_DIR"' EXIT
  until curl -sf http://127.0.0.1:19091/-/ready >/dev/null; do sleep 0.2; done
  export K6_PROMETHEUS_RW_SERVER_URL=http://127.0.0.1:19091/api/v1/write K6_PROMETHEUS_RW_PUSH_INTERVAL=1s
  LIVE_ARGS=(--out "web-dashboard=port=-1&period=1s&export=/tmp/bench-report.html" --out experimental-prometheus-rw)
fi
run_engine() { # $1 = METRICS flag, then extra flags
  local metrics=$1; shift
  /usr/bin/time -o /tmp/bench-engine.time -f "%U %S" taskset -c 0 "$ENGINE" run -q --no-summary --workers 1 "$@" \
    -u 50 -d "${SECS}s" -e URL="$URL" -e METRICS="$metrics" --summary-export /tmp/bench-engine.json bench/post-loop.lua
  echo "$(python3 -c "import json;print(int(json.load(open('/tmp/bench-engine.json'))['metrics']['http_reqs']['count']))") $(cpu /tmp/bench-engine.time)"
}
# Interleaved repetitions: the machine is shared, so each ratio pairs runs made close in time.
: > /tmp/bench-rows
for rep in $(seq "$REPS"); do
  row="$(run_wrk) $(run_engine 0) $(run_engine 1)"
  if [ "${LIVE:-0}" = 1 ]; then row="$row $(run_engine 1 "${LIVE_ARGS[@]}")"; fi
  echo "$row" >> /tmp/bench-rows
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
if all(len(r) == 8 for r in rows):
    l = [per_cpu(r, 6) for r in rows]
    print(f"  + dashboard + remote wr: {med(r[6] for r in rows)/secs:9.0f} req/s  {med(l):9.0f} req/CPU-s  = {med(a/b for a, b in zip(l, w)):.2f}x wrk"
          f"  ({med(a/b for a, b in zip(l, m)):.3f}x the metrics run)")
print(f"best run of each: wrk {max(w):.0f}, engine {max(e):.0f} ({max(e)/max(w):.2f}x), with metrics {max(m):.0f} ({max(m)/max(w):.2f}x) req/CPU-s")
PY
