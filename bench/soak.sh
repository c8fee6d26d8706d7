#!/usr/bin/env bash
# conversion-soak at its real pace (no --time-scale), against `engine serve` in its own
# process, for MINUTES minutes; samples the engine's RSS every 10 s and prints the samples
# and the slope of a straight line through those after warm-up (the first 3 minutes: the
# 2-minute ramp and a minute at full load). Flat memory means a slope near 0 KB/min.
#   bench/soak.sh [minutes=10] [vu-scale=0.1]
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-10}
VUS=${2:-0.1}
PORT=18797
cargo build --release -q
ENGINE=target/release/engine
$ENGINE serve --listen 127.0.0.1:$PORT > /tmp/soak-serve.log 2>&1 & SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
sleep 0.5
URL=http://127.0.0.1:$PORT
# SIGTERM at the end: the engine stops gracefully (exit 105) and prints its summary.
timeout -s TERM "$((MINUTES * 60))" $ENGINE run -q --vu-scale "$VUS" --no-teardown \
  -e TRACKING_URL=$URL -e DASHBOARD_API_URL=$URL lua/conversion-soak.lua > /tmp/soak.out 2> /tmp/soak.err & RUN=$!
sleep 1
PID=$(pgrep -P $RUN -f "engine run" || echo $RUN)
: > /tmp/soak-rss
start=$(date +%s)
while kill -0 "$PID" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/"$PID"/status 2>/dev/null || true)
  [ -n "$rss" ] && echo "$(( $(date +%s) - start )) $rss" >> /tmp/soak-rss
  sleep 10
done
wait $RUN || true
python3 - <<'PY'
rows = [tuple(map(int, l.split())) for l in open("/tmp/soak-rss") if l.strip()]
print("t(s)  RSS(MB)")
for t, kb in rows:
    print(f"{t:5d}  {kb/1024:7.1f}")
warm = [(t, kb) for t, kb in rows if t >= 180]
if len(warm) >= 3:
    n = len(warm); mt = sum(t for t, _ in warm) / n; mk = sum(k for _, k in warm) / n
    slope = sum((t - mt) * (k - mk) for t, k in warm) / sum((t - mt) ** 2 for t, _ in warm)
    print(f"after warm-up: {n} samples, {min(k for _, k in warm)/1024:.1f}-{max(k for _, k in warm)/1024:.1f} MB, "
          f"slope {slope*60:+.1f} KB/min ({slope*60*60/1024:+.2f} MB/hour)")
else:
    print("run longer than 3 minutes for a slope")
PY
grep -E "http_reqs|iterations\.\.\.|complete and" /tmp/soak.out | head -3
