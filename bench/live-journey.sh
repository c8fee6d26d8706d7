#!/usr/bin/env bash
# full-journey at its 25,000-VU peak (time-compressed), `engine serve` in its own process,
# run twice: without live outputs, then with the web dashboard (1 s period, report export)
# and Prometheus remote write (1 s pushes to a local prometheus). Prints the engine's peak
# RSS and CPU for both, the time series kept, the report's size and the batches pushed.
#   bench/live-journey.sh [time-scale=30] [vu-scale=1]     (needs prometheus: apt-get install prometheus)
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-30}
VUS=${2:-1}
command -v prometheus >/dev/null || { echo "needs prometheus (apt-get install prometheus)"; exit 1; }
cargo build --release -q
DIR=$(mktemp -d)
printf 'global:\n  scrape_interval: 1h\n' > "$DIR/prometheus.yml"
prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
  --web.listen-address=127.0.0.1:19092 --web.enable-remote-write-receiver > "$DIR/prom.log" 2>&1 & PROM=$!
target/release/engine serve --listen 127.0.0.1:18787 > "$DIR/serve.log" 2>&1 & SERVE=$!
trap 'kill $PROM $SERVE 2>/dev/null || true; rm -rf "$DIR"' EXIT
until curl -sf http://127.0.0.1:19092/-/ready >/dev/null; do sleep 0.2; done
until curl -sf http://127.0.0.1:18787/health >/dev/null; do sleep 0.2; done
run() { # $1 = label, then extra flags
  local label=$1; shift
  /usr/bin/time -v target/release/engine run -q --time-scale "$SCALE" --vu-scale "$VUS" \
    -e TRACKING_URL=http://127.0.0.1:18787 -e DASHBOARD_API_URL=http://127.0.0.1:18787 \
    --summary-export "$DIR/$label.json" "$@" lua/full-journey.lua > "$DIR/$label.out" 2> "$DIR/$label.err" || true
}
run plain
K6_PROMETHEUS_RW_SERVER_URL=http://127.0.0.1:19092/api/v1/write K6_PROMETHEUS_RW_PUSH_INTERVAL=1s \
  run live --out "web-dashboard=port=0&period=1s&export=$DIR/report.html" --out experimental-prometheus-rw
PROM_SUM=$(curl -s http://127.0.0.1:19092/api/v1/query --data-urlencode 'query=sum(k6_http_reqs_total)' \
  | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")')
python3 - "$DIR" "$PROM_SUM" <<'PY'
import base64, gzip, json, os, re, sys
d, prom_sum = sys.argv[1], sys.argv[2]
def stats(label):
    err = open(f"{d}/{label}.err").read()
    g = lambda l: re.search(l + r": (.*)", err).group(1).strip()
    s = json.load(open(f"{d}/{label}.json"))["metrics"]
    return (int(g("Maximum resident set size \\(kbytes\\)")) / 1024,
            float(g("User time \\(seconds\\)")) + float(g("System time \\(seconds\\)")), s, err)
for label in ("plain", "live"):
    rss, cpu, s, err = stats(label)
    print(f"{label:5}: {s['vus_max']['value']:.0f} VUs, {s['http_reqs']['count']:.0f} requests, "
          f"peak RSS {rss:.0f} MB, CPU {cpu:.1f} s ({cpu / s['http_reqs']['count'] * 1e6:.0f} us per request)")
print([l for l in err.splitlines() if "remote write" in l][0].strip())
print(f"Prometheus sum(k6_http_reqs_total) = {prom_sum}, summary http_reqs = {s['http_reqs']['count']:.0f}")
html = open(f"{d}/report.html").read()
b64 = re.search(r'window.ENGINE_REPORT = "([^"]+)"', html).group(1)
events = json.loads(gzip.decompress(base64.b64decode(b64)))
series = dict(events)["series"]
kinds = {}
for x in series["series"]:
    kinds[x["type"]] = kinds.get(x["type"], 0) + 1
per_hour = {"counter": 8, "gauge": 8, "rate": 8, "trend": 36}
point_bytes = sum(per_hour[k] * n for k, n in kinds.items())
print(f"report {os.path.getsize(d + '/report.html') / 1024:.0f} KB; {len(series['series'])} series {kinds}, "
      f"{series['closed']} points of {series['period_ms']} ms each")
print(f"closed points: {point_bytes} bytes per period for all series = {point_bytes * 3600 / 1024:.0f} KB per hour "
      f"at 1 s, {point_bytes * 2280 / 1024:.0f} KB for the 38-minute plan")
PY
