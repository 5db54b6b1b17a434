#!/usr/bin/env bash
# Keep-alive clients and new-connection churn at once (issue 25: open connections' requests keep priority
# over new connections' first requests), the gateway on CPU 0, nginx (the backend) and the load on CPU 1.
#   bench/mixed.sh [ROUNDS]
# Each round, alternating: the defaults; EstablishedTargetDelay set to TargetDelay's 20 ms (one target,
# as before the busy-connections target); connection admission off. Keep-alive: h2load --h1, KA_CLIENTS
# clients at KA_RPS requests a second each. Churn: wrk, CHURN_C connections, one request each
# (Connection: close), as fast as they go, or each waiting DELAY_MS before its next (DELAY_MS=26 with
# CHURN_C=40 offers about 1,400 a second). Prints one line per run: churn rate and p99, keep-alive
# requests done and their time, accept paused, the gateway's CPU. Loopback only; about 35 s a run.
set -uo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}; DUR=${DUR:-20}; KA_CLIENTS=${KA_CLIENTS:-20}; KA_RPS=${KA_RPS:-250}; CHURN_C=${CHURN_C:-400}
source bench/lib.sh
install_missing nginx=nginx wrk=wrk h2load=nghttp2-client
dotnet build src/YarpGateway -c Release --nologo -v q >/dev/null
DLL=${GATEWAY_DLL:-src/YarpGateway/bin/Release/net10.0/YarpGateway.dll}
DIR=$(mktemp -d /tmp/yarpgateway-mixed.XXXXXX)
BENCH_CLEANUP='rm -rf "$DIR"'
start_nginx_backend 127.0.0.1:5900 "$DIR/nginx" 1
SCRIPT=()
if [ -n "${DELAY_MS:-}" ]; then
  printf 'function delay() return %d end\n' "$DELAY_MS" >"$DIR/delay.lua"
  SCRIPT=(-s "$DIR/delay.lua")
fi
declare -A ARGS=(
  [defaults]=""
  [one-target]="--Gateway:Admission:Connections:Adaptive:EstablishedTargetDelay=00:00:00.020"
  [off]="--Gateway:Admission:Connections:Adaptive:Enabled=false --Gateway:Admission:Connections:RatePerSecond=0 --Gateway:Admission:Connections:MaxFirstRequestConnections=0"
)
paused() { curl -s http://127.0.0.1:8081/metrics | awk '/^gateway_connection_admission_accept_paused_seconds_total/ {print $2}'; }
for r in $(seq "$ROUNDS"); do for m in defaults one-target off; do
  # shellcheck disable=SC2086
  ASPNETCORE_ENVIRONMENT=Production taskset -c 0 dotnet "$DLL" --config bench/storm-gateway.json \
    --Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:8080 --Kestrel:Endpoints:Management:Url=http://127.0.0.1:8081 ${ARGS[$m]} >"$DIR/gateway.log" 2>&1 &
  gw=$!
  wait_ready http://127.0.0.1:8081/healthz/ready 30
  taskset -c 1 wrk -t1 -c50 -d10s http://127.0.0.1:8080/ >/dev/null                             # warm-up: keep-alive,
  taskset -c 1 wrk -t1 -c200 -d10s -H "Connection: close" http://127.0.0.1:8080/ >/dev/null       # then churn
  p0=$(paused); t0=$(ticks $gw)
  taskset -c 1 h2load --h1 -c "$KA_CLIENTS" -t1 --rps "$KA_RPS" -D "$DUR" http://127.0.0.1:8080/ >"$DIR/ka.txt" 2>&1 &
  ka=$!
  taskset -c 1 wrk -t1 -c"$CHURN_C" -d"${DUR}s" --latency "${SCRIPT[@]}" -H "Connection: close" http://127.0.0.1:8080/ >"$DIR/churn.txt" 2>&1
  wait $ka
  t1=$(ticks $gw); p1=$(paused)
  kill $gw; wait $gw 2>/dev/null
  echo "$m round $r: churn $(awk '/Requests\/sec/ {print $2}' "$DIR/churn.txt")/s p99 $(awk '/ 99%/ {print $2}' "$DIR/churn.txt");" \
    "keep-alive offered $(( KA_CLIENTS * KA_RPS * DUR )), succeeded $(awk '/^requests:/ {print $8}' "$DIR/ka.txt"), failed $(awk '/^requests:/ {print $10}' "$DIR/ka.txt");" \
    "their time $(awk '/^time for request:/ {print "mean", $6, "max", $5}' "$DIR/ka.txt");" \
    "accept paused $(awk -v a="${p0:-0}" -v b="${p1:-0}" 'BEGIN { printf "%.1f", b - a }') s; gateway CPU $(( (t1 - t0) * 100 / HZ / DUR )) %"
done; done
