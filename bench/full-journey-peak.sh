#!/usr/bin/env bash
# full-journey at its full 25,000-VU peak, time-compressed so it fits in a few minutes,
# `engine serve` in its own process: the engine's peak RSS (whole process) and CPU.
#   bench/full-journey-peak.sh [time-scale=30] [extra engine flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-30}
shift || true
cargo build --release -q
ulimit -n "$(ulimit -Hn)"
DIR=$(mktemp -d)
target/release/engine serve --listen 127.0.0.1:18788 > "$DIR/serve.log" 2>&1 & SERVE=$!
trap 'kill $SERVE 2>/dev/null || true; rm -rf "$DIR"' EXIT
until curl -sf http://127.0.0.1:18788/health >/dev/null; do sleep 0.2; done
/usr/bin/time -v -o "$DIR/time" target/release/engine run -q --time-scale "$SCALE" \
  -e TRACKING_URL=http://127.0.0.1:18788 -e DASHBOARD_API_URL=http://127.0.0.1:18788 \
  --summary-export "$DIR/summary.json" "$@" lua/full-journey.lua > "$DIR/out" 2> "$DIR/err" || true
# The server's CPU (user + system ticks), for the share of the two cores it took.
SERVE_TICKS=$(awk '{print $14 + $15}' /proc/$SERVE/stat)
python3 - "$SCALE" "$DIR" "$SERVE_TICKS" "$(getconf CLK_TCK)" <<'PY'
import json, re, sys
scale, d = sys.argv[1], sys.argv[2]
serve_cpu = int(sys.argv[3]) / int(sys.argv[4])
t = open(f"{d}/time").read()
def grab(label):
    return re.search(label + r": (.*)", t).group(1).strip()
rss_kb = int(grab("Maximum resident set size \\(kbytes\\)"))
user, sys_ = float(grab("User time \\(seconds\\)")), float(grab("System time \\(seconds\\)"))
wall = grab("Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)")
s = json.load(open(f"{d}/summary.json"))["metrics"]
vus = s["vus_max"]["value"]; reqs = s["http_reqs"]["count"]; its = s["iterations"]["count"]
print(f"time-scale {scale}: {vus:.0f} VUs at peak, {its:.0f} journeys, {reqs:.0f} requests, wall {wall}")
print(f"engine peak RSS {rss_kb/1024:.0f} MB ({rss_kb*1024/vus/1024:.1f} KB per VU), CPU user {user:.1f}s + sys {sys_:.1f}s = {(user+sys_)/reqs*1e6:.1f} us per request")
print(f"engine serve (its own process): CPU {serve_cpu:.1f}s = {serve_cpu/reqs*1e6:.1f} us per request")
print(f"http_req_duration p(95) {s['http_req_duration']['p(95)']:.2f} ms, http_req_failed {s['http_req_failed']['value']*100:.2f}%")
for line in open(f"{d}/out"):
    if "✗" in line or "integrity" in line and "%" in line:
        print(line.rstrip())
PY
