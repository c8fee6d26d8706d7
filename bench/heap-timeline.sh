#!/usr/bin/env bash
# The engine's live heap beside its RSS, once a second, for full-journey at its 25,000-VU
# peak (as bench/full-journey-peak.sh runs it, `engine serve` in its own process), or for
# any script given. Built with `--features heap-profile` in its own target dir: every
# allocation is counted by size class (16-byte classes), at full speed.
#   bench/heap-timeline.sh [time-scale=30] [script=lua/full-journey.lua] [extra engine flags...]
# Prints "t rss live | class:KiB ..." for every second, then the peak of each.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-30}
SCRIPT=${2:-lua/full-journey.lua}
shift 2 || shift $#
cargo build --release -q --features heap-profile --target-dir target/heap-profile
BIN=target/heap-profile/release/engine
ulimit -n "$(ulimit -Hn)"
DIR=$(mktemp -d)
"$BIN" serve --listen 127.0.0.1:18789 > "$DIR/serve.log" 2>&1 & SERVE=$!
trap 'kill $SERVE 2>/dev/null || true; rm -rf "$DIR"' EXIT
until curl -sf http://127.0.0.1:18789/health >/dev/null; do sleep 0.2; done
"$BIN" run -q --no-summary --time-scale "$SCALE" \
  -e TRACKING_URL=http://127.0.0.1:18789 -e DASHBOARD_API_URL=http://127.0.0.1:18789 \
  "$@" "$SCRIPT" > /dev/null 2> "$DIR/err" || true
grep '^heap t=' "$DIR/err" | sed 's/^heap //'
python3 - "$DIR/err" <<'PY'
import re, sys
rows = [re.match(r"heap t=(\d+) rss (\d+) live (\d+)", l) for l in open(sys.argv[1])]
rows = [tuple(map(int, m.groups())) for m in rows if m]
if rows:
    t_rss = max(rows, key=lambda r: r[1])
    t_live = max(rows, key=lambda r: r[2])
    print(f"peak RSS {t_rss[1]} MB at t={t_rss[0]} s; peak live heap {t_live[2]} MB at t={t_live[0]} s")
PY
