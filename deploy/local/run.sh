#!/usr/bin/env bash
# A split test on one machine, the way the Kubernetes Indexed Job runs it: N processes of
# deploy/engine-pod.sh (the pods' own command) with JOB_COMPLETION_INDEX 0..N-1, one shared
# --start-at, their result parts in one directory, then `engine merge` prints the whole
# test's summary and exits as the test does (99 when a threshold fails).
#
#   deploy/local/run.sh SCRIPT N [engine run flags...]
#   e.g. deploy/local/run.sh lua/full-journey.lua 3 --time-scale 30 -e TRACKING_URL=http://127.0.0.1:8787 -e DASHBOARD_API_URL=http://127.0.0.1:8787
#
# PARTS_DIR (default: a new temporary directory) keeps the parts; ENGINE the binary
# (default: target/release/engine, built if missing); START_DELAY seconds to the start (3).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 SCRIPT N [engine run flags...]" >&2; exit 2; }
SCRIPT=$1 N=$2; shift 2
HERE=$(cd "$(dirname "$0")/../.." && pwd)
ENGINE=${ENGINE:-$HERE/target/release/engine}
[ -x "$ENGINE" ] || (cd "$HERE" && cargo build --release -q)
PARTS_DIR=${PARTS_DIR:-$(mktemp -d)}
mkdir -p "$PARTS_DIR"
START_AT=$(date -u -d "+${START_DELAY:-3} seconds" +%Y-%m-%dT%H:%M:%S.%3NZ)
echo "local split test: $N processes, start at $START_AT, parts in $PARTS_DIR" >&2
pids=()
for ((i = 0; i < N; i++)); do
  ENGINE=$ENGINE ENGINE_SCRIPT=$SCRIPT SEGMENT_COUNT=$N JOB_COMPLETION_INDEX=$i START_AT=$START_AT \
    PARTS_DIR=$PARTS_DIR ENGINE_ARGS="$*" HOSTNAME=local "$HERE/deploy/engine-pod.sh" \
    2> "$PARTS_DIR/process-$i.log" &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { echo "process $i failed: $(tail -3 "$PARTS_DIR/process-$i.log")" >&2; failed=1; }
done
[ $failed = 0 ] || exit 1
parts=()
for ((i = 0; i < N; i++)); do parts+=("$PARTS_DIR/part-$i.json"); done
exec "$ENGINE" merge "${parts[@]}" --summary-export "$PARTS_DIR/summary.json"
