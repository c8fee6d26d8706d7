#!/usr/bin/env bash
# Requests per CPU-second over plain HTTP/1.1, HTTPS/1.1 and HTTPS with HTTP/2, side by side:
# the 150-byte POST loop (bench/post-loop.lua), one worker pinned to core 0, nginx `return 204`
# pinned to core 1 with a self-signed certificate made for the run. wrk (plain and HTTPS/1.1;
# it has no HTTP/2) runs beside it for the ratio.
#   bench/https.sh [seconds] [VUs]          (needs nginx and openssl; wrk optional)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
VUS=${2:-50}
ENGINE=target/release/engine
command -v nginx >/dev/null || { echo "needs nginx (apt-get install nginx-light)"; exit 1; }
cargo build --release -q
DIR=$(mktemp -d)
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
sed "s|CERT_DIR|$DIR|g" bench/nginx-tls.conf.in > "$DIR/nginx.conf"
taskset -c 1 nginx -c "$DIR/nginx.conf" & NGINX=$!
trap 'kill $NGINX 2>/dev/null || true; rm -rf "$DIR"' EXIT
sleep 0.5

row() { # label, requests, time file
  awk -v l="$1" -v n="$2" -v s="$SECS" '{cpu=$1+$2; printf "%-32s %9.0f req/s %9.0f req/CPU-s  (%.2f CPU-s)\n", l, n/s, n/cpu, cpu}' "$3"
}
engine() { # label, url, extra flags...
  local label=$1 url=$2; shift 2
  /usr/bin/time -o "$DIR/t" -f "%U %S" taskset -c 0 "$ENGINE" run -q --no-summary --workers 1 -u "$VUS" -d "${SECS}s" \
    -e URL="$url" --summary-export "$DIR/s.json" "$@" bench/post-loop.lua
  row "$label" "$(python3 -c "import json;print(int(json.load(open('$DIR/s.json'))['metrics']['http_reqs']['count']))")" "$DIR/t"
}
wrk_row() { # label, url
  /usr/bin/time -o "$DIR/t" -f "%U %S" taskset -c 0 wrk -t1 -c"$VUS" -d"${SECS}s" -s bench/post.lua "$2" > "$DIR/w"
  row "$1" "$(awk '/requests in/ {print $1}' "$DIR/w")" "$DIR/t"
}
engine "engine http/1.1"              http://127.0.0.1:18080/track
engine "engine https/1.1"             https://localhost:18443/track --insecure-skip-tls-verify
engine "engine https/2 (shared conn)" https://localhost:18444/track --insecure-skip-tls-verify
engine "engine https/2 (per-vu conn)" https://localhost:18444/track --insecure-skip-tls-verify --connections per-vu
if command -v wrk >/dev/null; then
  wrk_row "wrk http/1.1"  http://127.0.0.1:18080/track
  wrk_row "wrk https/1.1" https://localhost:18443/track
fi
