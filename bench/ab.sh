#!/usr/bin/env bash
# A/B of two engine binaries on the POST loop (bench/post-loop.lua with a Rate, a Trend and a
# check per request), interleaved, against nginx `return 204` pinned to the other core.
# Prints requests per CPU-second of each and the median ratio B/A.
#   bench/ab.sh OLD_BINARY NEW_BINARY [seconds] [repetitions]
# e.g.  git stash; cargo build --release; cp target/release/engine /tmp/engine-a; git stash pop
#       cargo build --release; bench/ab.sh /tmp/engine-a target/release/engine 5 8
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1
B=$2
SECS=${3:-5}
REPS=${4:-6}
command -v nginx >/dev/null || { echo "needs nginx (apt-get install nginx-light)"; exit 1; }
taskset -c 1 nginx -c "$PWD/bench/nginx.conf" & NGINX=$!
trap 'kill $NGINX 2>/dev/null || true' EXIT
sleep 0.5
URL=http://127.0.0.1:18080/track
run() { # $1 = binary; prints requests per CPU-second
  /usr/bin/time -o /tmp/bench-ab.time -f "%U %S" taskset -c 0 "$1" run -q --no-summary --workers 1 \
    -u 50 -d "${SECS}s" -e URL="$URL" -e METRICS=1 --summary-export /tmp/bench-ab.json bench/post-loop.lua
  python3 -c "import json;t=open('/tmp/bench-ab.time').read().split();print(json.load(open('/tmp/bench-ab.json'))['metrics']['http_reqs']['count']/(float(t[0])+float(t[1])))"
}
: > /tmp/bench-ab-rows
for _ in $(seq "$REPS"); do
  echo "$(run "$A") $(run "$B")" >> /tmp/bench-ab-rows
done
python3 - <<'PY'
import statistics
rows = [list(map(float, l.split())) for l in open("/tmp/bench-ab-rows")]
med = statistics.median
print(f"{len(rows)} interleaved pairs: A {med(r[0] for r in rows):.0f}, B {med(r[1] for r in rows):.0f} req/CPU-s, "
      f"B/A median {med(r[1] / r[0] for r in rows):.3f} (min {min(r[1] / r[0] for r in rows):.3f}, max {max(r[1] / r[0] for r in rows):.3f})")
PY
