#!/bin/sh
# The command every process of a split test runs: a Kubernetes pod of the Indexed Job
# (deploy/k8s) and each process of the local mode (deploy/local/run.sh) alike.
#
#   ENGINE_SCRIPT   the script to run (required)
#   SEGMENT_COUNT   how many processes split the plan (required)
#   JOB_COMPLETION_INDEX  this process's index, 0..SEGMENT_COUNT-1 (Kubernetes sets it)
#   START_AT        RFC 3339 time all processes start the test at (required)
#   PARTS_DIR       where the result part goes: PARTS_DIR/part-INDEX.json (required)
#   ENGINE          the engine binary (default: engine on PATH)
#   ENGINE_ARGS     more `engine run` flags, e.g. "--time-scale 30 --seed 7"
#   K6_PROMETHEUS_RW_SERVER_URL  if set, live metrics go there with a label per process
set -eu
: "${ENGINE_SCRIPT:?}" "${SEGMENT_COUNT:?}" "${JOB_COMPLETION_INDEX:?}" "${START_AT:?}" "${PARTS_DIR:?}"
mkdir -p "$PARTS_DIR"
set -- --segment-count "$SEGMENT_COUNT" --start-at "$START_AT" \
  --out "part=$PARTS_DIR/part-$JOB_COMPLETION_INDEX.json" --no-summary
if [ -n "${K6_PROMETHEUS_RW_SERVER_URL:-}" ]; then
  export ENGINE_PROMETHEUS_RW_LABELS="${ENGINE_PROMETHEUS_RW_LABELS:-instance:${HOSTNAME:-local}-$JOB_COMPLETION_INDEX}"
  set -- "$@" --out experimental-prometheus-rw
fi
# Thresholds are judged on the merged parts; a part's own verdict (99) is not a failure here.
# shellcheck disable=SC2086
"${ENGINE:-engine}" run "$@" ${ENGINE_ARGS:-} "$ENGINE_SCRIPT" || code=$?
case "${code:-0}" in 0|99) exit 0 ;; *) exit "$code" ;; esac
