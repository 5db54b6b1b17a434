#!/usr/bin/env bash
# Where the gateway allocates per request (issue 23): the gateway (every feature at its default) under
# steady HTTP/1.1 keep-alive load (wrk, 64 connections, after 10 s of warm-up), its allocations sampled
# for SECONDS (bench/AllocStacks: the runtime's AllocationTick over EventPipe, one sample per about
# 100 KB, with call stacks), printed by type, then the call stacks of the types whose names contain one
# of FILTERS (comma-separated).
#   [TOP=30] bench/alloc-stacks.sh [SECONDS] [FILTERS]      (defaults: 5, YarpGateway)
# The gateway on CPU 0; wrk and the backend (nginx, one worker, a 2-byte body) on CPU 1. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_SAMPLED=${1:-5}
FILTERS=${2:-YarpGateway}
WORK=$(mktemp -d /tmp/yarpgateway-alloc-stacks.XXXXXX)
BENCH_CLEANUP='rm -rf "$WORK"'
source bench/lib.sh
install_missing nginx=nginx wrk=wrk

dotnet build src/YarpGateway -c Release --nologo -v q >/dev/null
dotnet build bench/AllocStacks -c Release --nologo -v q >/dev/null

BACKEND=127.0.0.1:9200
start_nginx_backend "$BACKEND" "$WORK/backend"
ASPNETCORE_ENVIRONMENT=Production taskset -c 0 dotnet src/YarpGateway/bin/Release/net10.0/YarpGateway.dll \
  --ReverseProxy:Routes:all:ClusterId=b "--ReverseProxy:Routes:all:Match:Path={**catch-all}" --ReverseProxy:Clusters:b:Destinations:d:Address=http://$BACKEND/ \
  --Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:9201 --Kestrel:Endpoints:Management:Url=http://127.0.0.1:9211 \
  --Logging:LogLevel:Default=Warning >"$WORK/gateway.log" 2>&1 &
gateway=$!
pids+=($gateway)
wait_ready http://127.0.0.1:9211/healthz/ready 30

taskset -c 1 wrk -t1 -c64 -d$(( SECONDS_SAMPLED + 15 ))s http://127.0.0.1:9201/ >/dev/null &
pids+=($!)
sleep 10
dotnet bench/AllocStacks/bin/Release/net10.0/AllocStacks.dll "$gateway" "$SECONDS_SAMPLED" "$FILTERS" "${TOP:-30}"
