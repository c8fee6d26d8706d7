#!/usr/bin/env bash
# full-journey at its full 25,000-VU peak, time-compressed so it fits in a few minutes,
# against the in-process reference server: reports the engine's peak RSS and CPU.
#   bench/full-journey-peak.sh [time-scale=15]
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-15}
cargo build --release -q
/usr/bin/time -v target/release/engine run -q --serve --time-scale "$SCALE" \
  --summary-export /tmp/full-journey-peak.json lua/full-journey.lua > /tmp/full-journey-peak.out 2> /tmp/full-journey-peak.err || true
python3 - "$SCALE" <<'PY'
import json, re, sys
err = open("/tmp/full-journey-peak.err").read()
def grab(label):
    return re.search(label + r": (.*)", err).group(1).strip()
rss_kb = int(grab("Maximum resident set size \\(kbytes\\)"))
user, sys_ = float(grab("User time \\(seconds\\)")), float(grab("System time \\(seconds\\)"))
wall = grab("Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)")
s = json.load(open("/tmp/full-journey-peak.json"))["metrics"]
vus = s["vus_max"]["value"]; reqs = s["http_reqs"]["count"]; its = s["iterations"]["count"]
print(f"time-scale {sys.argv[1]}: {vus:.0f} VUs at peak, {its:.0f} journeys, {reqs:.0f} requests, wall {wall}")
print(f"peak RSS {rss_kb/1024:.0f} MB ({rss_kb*1024/vus/1024:.1f} KB per VU incl. the in-process server), CPU user {user:.0f}s + sys {sys_:.0f}s")
print(f"http_req_duration p(95) {s['http_req_duration']['p(95)']:.2f} ms, http_req_failed {s['http_req_failed']['value']*100:.2f}%")
PY
grep -E "✓|✗" /tmp/full-journey-peak.out | head -20
