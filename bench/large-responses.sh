#!/usr/bin/env bash
# Large responses against Kestrel's socket write queue (Gateway:Transport:MaxWriteBufferSize): the
# gateway with its default (16 KiB) and with Kestrel's own 64 KiB, alternating, in one run.
#   bench/large-responses.sh [ROUNDS] [SECONDS]     (defaults: 3 rounds, 5 s per measurement)
# The backend is nginx (one worker, CPU 1) serving a 1 MiB file; the gateway is pinned to CPU 0 and
# the load generator shares CPU 1 with the backend. Per round and setting, after a 5 s warm-up:
# HTTP/1.1 (wrk) with 1 and 16 connections, and h2c (h2load, 4 connections x 10 streams). Each
# setting gets a fresh gateway per round; the order of the two alternates from round to round.
# Output: medians (and every round) in bench/results/large-responses.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECONDS_PER=${2:-5}
OUT=bench/results/large-responses.md
WORK=$(mktemp -d /tmp/yarpgateway-large.XXXXXX)
BENCH_CLEANUP='rm -rf "$WORK"'
source bench/lib.sh
install_missing nginx=nginx wrk=wrk h2load=nghttp2-client
dotnet build src/YarpGateway -c Release --nologo -v q >/dev/null

BACKEND=127.0.0.1:9300
mkdir -p "$WORK/www" "$WORK/backend"; chmod 755 "$WORK" "$WORK/www" # nginx's worker runs as nobody
head -c 1048576 /dev/urandom >"$WORK/www/big"
cat >"$WORK/backend/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/backend/nginx.pid; error_log $WORK/backend/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen $BACKEND; root $WORK/www; location / { } } }
CONF
taskset -c 1 nginx -c "$WORK/backend/nginx.conf" -p "$WORK/backend" &
pids+=($!)
wait_ready "http://$BACKEND/big" 10

URL=http://127.0.0.1:9301/big
measure() { # setting -> "h1c1 h1c16 h2" in MB/s
  local extra=() gw
  [ "$1" = 64k ] && extra=(--Gateway:Transport:MaxWriteBufferSize=65536)
  ASPNETCORE_ENVIRONMENT=Production taskset -c 0 dotnet src/YarpGateway/bin/Release/net10.0/YarpGateway.dll \
    --ReverseProxy:Routes:all:ClusterId=b "--ReverseProxy:Routes:all:Match:Path={**catch-all}" \
    --ReverseProxy:Clusters:b:Destinations:d:Address=http://$BACKEND/ \
    --Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:9301 --Kestrel:Endpoints:Management:Url=http://127.0.0.1:9311 \
    --Logging:LogLevel:Default=Warning "${extra[@]}" >>"$WORK/gateway.log" 2>&1 &
  gw=$!
  wait_ready "$URL" 30 >/dev/null
  taskset -c 1 wrk -t1 -c16 -d5s "$URL" >/dev/null
  local a b c
  a=$(taskset -c 1 wrk -t1 -c1 -d"${SECONDS_PER}s" "$URL" | awk '/^Requests\/sec/ { printf "%.0f", $2 }')
  b=$(taskset -c 1 wrk -t1 -c16 -d"${SECONDS_PER}s" "$URL" | awk '/^Requests\/sec/ { printf "%.0f", $2 }')
  c=$(taskset -c 1 h2load -c4 -m10 -D"$SECONDS_PER" "$URL" 2>/dev/null | awk '/^finished in/ { gsub(",", "", $4); printf "%.0f", $4 }')
  kill -KILL "$gw"; wait "$gw" 2>/dev/null || true
  echo "$a $b $c" # 1 MiB responses per second = MiB/s
}

declare -A ROWS=()
for r in $(seq "$ROUNDS"); do
  order="16k 64k"; (( r % 2 == 0 )) && order="64k 16k"
  for s in $order; do
    result=$(measure "$s")
    ROWS[$s]+="$result;"
    echo "round $r, write queue $s: $result (MiB/s: HTTP/1.1 1 and 16 connections, h2c)" >&2
  done
done

python3 - "$OUT" "$ROUNDS" "${ROWS[16k]}" "${ROWS[64k]}" <<'PY'
import sys, datetime, os, platform, statistics
out, rounds = sys.argv[1], sys.argv[2]
def parse(s): return [list(map(float, x.split())) for x in s.split(";") if x.strip()]
rows = {"16 KiB (the default)": parse(sys.argv[3]), "64 KiB (Kestrel's own)": parse(sys.argv[4])}
cols = ["HTTP/1.1, 1 connection", "HTTP/1.1, 16 connections", "h2c, 4 connections x 10 streams"]
lines = ["# Large responses and Kestrel's socket write queue", "",
  f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `bench/large-responses.sh {rounds}` on {os.cpu_count()} CPUs (Linux {platform.release()}): "
  "1 MiB responses from nginx (one worker, CPU 1) through the gateway pinned to CPU 0, the load generator on CPU 1; "
  "`Gateway:Transport:MaxWriteBufferSize` at its default and at Kestrel's 64 KiB, a fresh gateway per round, alternating. "
  "MiB/s (1 MiB responses per second), medians of the rounds, every round in brackets.", "",
  "| write queue | " + " | ".join(cols) + " |", "| --- | " + " | ".join("---:" for _ in cols) + " |"]
for name, runs in rows.items():
    cells = []
    for i in range(len(cols)):
        vals = [r[i] for r in runs if len(r) > i]
        cells.append(f"**{statistics.median(vals):.0f}** ({', '.join(f'{v:.0f}' for v in vals)})" if vals else "-")
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
