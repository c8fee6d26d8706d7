#!/usr/bin/env bash
# A split test as a Kubernetes Indexed Job: N pods each run deploy/engine-pod.sh on their
# segment (JOB_COMPLETION_INDEX), start together at one --start-at, and write their result
# parts to a ReadWriteMany volume; a merge Job runs `engine merge` once all N parts exist
# and fails when a threshold fails. Prints the merged summary.
#
#   deploy/k8s/run.sh SCRIPT N                       render, apply, wait, print the summary
#   deploy/k8s/run.sh --render-only DIR SCRIPT N     only write the manifests to DIR
#
# Environment: IMAGE (engine:latest; see Dockerfile), ENGINE_ARGS (more `engine run` flags,
# e.g. "--time-scale 30 -e TRACKING_URL=http://funnel:8787"), START_DELAY seconds from now
# to the start (90: room for image pulls), STORAGE_CLASS (an RWX class: NFS, CephFS, EFS...),
# K6_PROMETHEUS_RW_SERVER_URL (live metrics, one `instance` label per pod), MEM_PER_VU_KIB
# (20) and MEM_BASE_MIB (64) for the pods' memory requests, MAX_VUS (read with `engine
# inspect` when an engine binary is at hand), TIMEOUT (seconds to wait for the merge, 7200).
set -euo pipefail
RENDER_ONLY=""
if [ "${1:-}" = --render-only ]; then RENDER_ONLY=$2; shift 2; fi
[ $# -eq 2 ] || { echo "usage: $0 [--render-only DIR] SCRIPT N" >&2; exit 2; }
SCRIPT=$1 N=$2
HERE=$(cd "$(dirname "$0")/../.." && pwd)
IMAGE=${IMAGE:-engine:latest}
ID=${TEST_ID:-$(date -u +%Y%m%d%H%M%S)}
START_AT=$(date -u -d "+${START_DELAY:-90} seconds" +%Y-%m-%dT%H:%M:%SZ)
NAME=$(basename "$SCRIPT")
OUT=${RENDER_ONLY:-$(mktemp -d)}
mkdir -p "$OUT"

# Memory per pod from the measured cost of a journey VU (README: 17.8 KB per VU at the
# 25,000-VU peak, rounded up to 20 KiB) plus a base for the runtime and the aggregator.
if [ -z "${MAX_VUS:-}" ]; then
  ENGINE=${ENGINE:-$HERE/target/release/engine}
  if [ -x "$ENGINE" ]; then
    # shellcheck disable=SC2086
    MAX_VUS=$("$ENGINE" inspect --execution-requirements ${ENGINE_ARGS:-} "$SCRIPT" \
      | sed -n 's/.*"maxVUs": *\([0-9]*\).*/\1/p')
  fi
fi
MAX_VUS=${MAX_VUS:-1000}
PER_POD=$(( (MAX_VUS + N - 1) / N ))
MEM_MIB=$(( ${MEM_BASE_MIB:-64} + (PER_POD * ${MEM_PER_VU_KIB:-20} + 1023) / 1024 ))

# The script and lib/ in one ConfigMap, mounted as /scripts/SCRIPT and /scripts/lib/*.
{
  echo "apiVersion: v1"
  echo "kind: ConfigMap"
  echo "metadata:"
  echo "  name: engine-script-$ID"
  echo "  labels: {app: engine, test: \"$ID\"}"
  echo "data:"
  for f in "$SCRIPT" "$HERE"/lib/*.lua; do
    echo "  $(basename "$f"): |"
    sed 's/^/    /' "$f"
  done
} > "$OUT/configmap.yaml"
ITEMS="            - {key: $NAME, path: $NAME}"
for f in "$HERE"/lib/*.lua; do
  b=$(basename "$f")
  ITEMS="$ITEMS
            - {key: $b, path: lib/$b}"
done

cat > "$OUT/pvc.yaml" <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: engine-parts-$ID
  labels: {app: engine, test: "$ID"}
spec:
  accessModes: [ReadWriteMany]
${STORAGE_CLASS:+  storageClassName: $STORAGE_CLASS
}  resources:
    requests:
      storage: 1Gi
YAML

PROM_ENV=""
if [ -n "${K6_PROMETHEUS_RW_SERVER_URL:-}" ]; then
  PROM_ENV="
            - {name: K6_PROMETHEUS_RW_SERVER_URL, value: \"$K6_PROMETHEUS_RW_SERVER_URL\"}
            - {name: ENGINE_PROMETHEUS_RW_LABELS, value: \"instance:\$(POD_NAME),test:$ID\"}"
fi

cat > "$OUT/job.yaml" <<YAML
apiVersion: batch/v1
kind: Job
metadata:
  name: engine-$ID
  labels: {app: engine, test: "$ID"}
spec:
  completionMode: Indexed
  completions: $N
  parallelism: $N
  backoffLimit: 0
  ttlSecondsAfterFinished: 86400
  template:
    metadata:
      labels: {app: engine, test: "$ID"}
    spec:
      restartPolicy: Never
      securityContext: {fsGroup: 65532}
      containers:
        - name: engine
          image: $IMAGE
          command: [/opt/engine/engine-pod.sh]
          env:
            - {name: ENGINE_SCRIPT, value: /scripts/$NAME}
            - {name: SEGMENT_COUNT, value: "$N"}
            - {name: START_AT, value: "$START_AT"}
            - {name: PARTS_DIR, value: /parts/$ID}
            - {name: ENGINE_ARGS, value: "${ENGINE_ARGS:-}"}
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}$PROM_ENV
          resources:
            requests: {cpu: 500m, memory: ${MEM_MIB}Mi}
            limits: {memory: $(( MEM_MIB * 2 ))Mi}
          volumeMounts:
            - {name: scripts, mountPath: /scripts, readOnly: true}
            - {name: parts, mountPath: /parts}
      volumes:
        - name: scripts
          configMap:
            name: engine-script-$ID
            items:
$ITEMS
        - name: parts
          persistentVolumeClaim: {claimName: engine-parts-$ID}
YAML

cat > "$OUT/merge-job.yaml" <<YAML
apiVersion: batch/v1
kind: Job
metadata:
  name: engine-merge-$ID
  labels: {app: engine, test: "$ID"}
spec:
  backoffLimit: 0
  ttlSecondsAfterFinished: 86400
  template:
    metadata:
      labels: {app: engine-merge, test: "$ID"}
    spec:
      restartPolicy: Never
      securityContext: {fsGroup: 65532}
      containers:
        - name: merge
          image: $IMAGE
          command:
            - /bin/sh
            - -c
            - |
              # Wait for all $N parts, then merge; exit 99 fails the Job when a threshold fails.
              i=0
              while [ "\$(ls /parts/$ID/part-*.json 2>/dev/null | wc -l)" -lt $N ]; do
                i=\$((i + 1)); [ \$i -lt ${TIMEOUT:-7200} ] || { echo "parts missing after ${TIMEOUT:-7200}s" >&2; exit 1; }
                sleep 1
              done
              exec engine merge /parts/$ID/part-*.json --summary-export /parts/$ID/summary.json
          resources:
            requests: {cpu: 100m, memory: 128Mi}
          volumeMounts:
            - {name: parts, mountPath: /parts}
      volumes:
        - name: parts
          persistentVolumeClaim: {claimName: engine-parts-$ID}
YAML

echo "rendered $OUT: $N pods x $PER_POD VUs, ${MEM_MIB}Mi requested per pod, start at $START_AT" >&2
[ -z "$RENDER_ONLY" ] || exit 0

kubectl apply -f "$OUT/configmap.yaml" -f "$OUT/pvc.yaml" -f "$OUT/job.yaml" -f "$OUT/merge-job.yaml"
echo "waiting for the merge (kubectl logs -f job/engine-merge-$ID to follow)" >&2
while :; do
  status=$(kubectl get job "engine-merge-$ID" -o jsonpath='{.status.succeeded}/{.status.failed}')
  case "$status" in
    1/*) kubectl logs "job/engine-merge-$ID"; exit 0 ;;
    */1) kubectl logs "job/engine-merge-$ID"; echo "the merged test failed (thresholds or parts)" >&2; exit 99 ;;
  esac
  sleep 5
done
