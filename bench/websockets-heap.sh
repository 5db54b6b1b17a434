#!/usr/bin/env bash
# Where an idle WebSocket's memory goes (issue 4): opens N idle WebSockets through the gateway
# (default 4000) and prints the gateway's live managed heap by type and by owner (bench/HeapStat,
# which suspends the gateway and marks what its GC roots reach).
#   [TOP=40] bench/websockets-heap.sh [N] [CONFIG] [TYPE-FILTER] [CLIENTS]
# CONFIG defaults to bench/ws-gateway.json (backends over HTTP/1.1); bench/ws-gateway-h2.json sends
# them over HTTP/2. CLIENTS: h1 (default, one connection per WebSocket) or h2 (HTTP/2 extended
# CONNECT, up to 100 WebSockets on a connection). Divide the live bytes by N after subtracting a run with N=0 for per-connection
# figures. Loopback only, as bench/websockets.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-4000}
CONFIG=${2:-bench/ws-gateway.json}
FILTER=${3:-}
CLIENTS=${4:-h1}
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[[ $CLIENTS == h2 ]] || (( N * 2 + 1000 <= $(ulimit -n) )) || { echo "N=$N needs $(( N * 2 + 1000 )) file descriptors; the limit is $(ulimit -n)" >&2; exit 1; }

dotnet build bench/HeapStat -c Release --nologo -v q >/dev/null # the gateway and WsBench: start_ws_backend
RAW=bench/results/raw
mkdir -p "$RAW"
source bench/lib.sh

start_ws_backend "$RAW/ws-heap-backend.log"
start_ws_gateway "$RAW/ws-heap-gateway.log" "$CONFIG"
pids+=($gw)

if (( N > 0 )); then
  # WsBench opens N, reports, then opens 20 more: the heap is read while the N are open and idle.
  taskset -c 1 dotnet bench/WsBench/bin/Release/net10.0/WsBench.dll idle 8080 "$N,$(( N + 20 ))" "$gw" "$CLIENTS" >/dev/null 2>"$RAW/ws-heap-clients.log" &
  pids+=($!)
  for _ in $(seq 3000); do grep -q "^$N connections" "$RAW/ws-heap-clients.log" && break; sleep 0.2; done
  grep "^$N connections" "$RAW/ws-heap-clients.log" || { echo "the $N connections did not open; see $RAW/ws-heap-clients.log" >&2; exit 1; }
fi
dotnet bench/HeapStat/bin/Release/net10.0/HeapStat.dll "$gw" "${TOP:-40}" $FILTER
