#!/usr/bin/env bash
# Engine memory per open keep-alive connection: N VUs each POST then sleep 2 s, once with a
# socket per VU (--connections per-vu: N open connections) and once with the shared pool
# with at most 10 sockets (--max-connections 10). The peak-RSS difference divided by N
# is what one open connection costs the engine (kernel socket buffers not included).
#   bench/conn-memory.sh [vus]        (needs nginx: apt-get install nginx-light)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
ENGINE=target/release/engine
command -v nginx >/dev/null || { echo "needs nginx (apt-get install nginx-light)"; exit 1; }
cargo build --release -q
taskset -c 1 nginx -c "$PWD/bench/nginx.conf" & NGINX=$!
trap 'kill $NGINX 2>/dev/null || true' EXIT
sleep 0.5
cat > /tmp/engine-conn-memory.lua <<'LUA'
local body = string.rep("x", 150)
function default()
  http.post("http://127.0.0.1:18080/track", body)
  sleep(2)
end
LUA
rss() { # $1 = connection policy, then more flags; prints peak RSS in KB and the requests made
  ulimit -n "$((N * 2 + 1000))" 2>/dev/null || true
  /usr/bin/time -o /tmp/engine-conn-memory.time -f "%M" "$ENGINE" run -q --no-summary --workers 1 \
    -u "$N" -d 7s --connections "$@" --summary-export /tmp/engine-conn-memory.json /tmp/engine-conn-memory.lua
  echo "$(cat /tmp/engine-conn-memory.time) $(python3 -c "import json;print(int(json.load(open('/tmp/engine-conn-memory.json'))['metrics']['http_reqs']['count']))")"
}
read -r per_vu reqs_a <<<"$(rss per-vu)"
read -r shared reqs_b <<<"$(rss shared --max-connections 10)"
echo "$N VUs, a POST every 2 s each: per-vu ${per_vu} KB peak RSS ($reqs_a requests), shared with 10 sockets ${shared} KB ($reqs_b requests)"
echo "per open connection: $(( (per_vu - shared) * 1024 / N )) bytes"
