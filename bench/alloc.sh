#!/usr/bin/env bash
# Allocation and CPU per proxied request: the gateway (every feature at its default) and bare YARP, side by side.
#   bench/alloc.sh [REQUESTS] [RUNS]      (defaults: 200000 requests per run, 3 runs)
# Each run sends a fixed number of requests (h2load, 64 connections; HTTP/1.1 keep-alive, then h2c with
# 10 streams per connection; then HTTP/1.1 with one request per new connection, 500 at a time, a
# tenth of REQUESTS) after a warm-up, and reads the runtime's total allocated bytes before and
# after: the gateway's from its Prometheus endpoint (dotnet_gc_heap_total_allocated_bytes_total), bare
# YARP's from GC.GetTotalAllocatedBytes (a bench-only /__allocated route). Bytes per request include
# whatever the process allocates on its own meanwhile (timers, probes, the scrape): a few KB per run,
# under 0.1 byte per request at the default count. CPU per request is the process's user and kernel
# time over the same requests (/proc, 10 ms ticks), both pinned to CPU 0. Backend: nginx, one worker,
# a 2-byte body.
# Output: medians in bench/results/alloc.md.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-200000}
RUNS=${2:-3}
OUT=bench/results
WORK=$(mktemp -d /tmp/yarpgateway-alloc.XXXXXX)
BENCH_CLEANUP='rm -rf "$WORK"'
source bench/lib.sh
install_missing nginx=nginx h2load=nghttp2-client

dotnet build src/YarpGateway -c Release --nologo -v q >/dev/null
dotnet build bench/BareYarp -c Release --nologo -v q >/dev/null

BACKEND=127.0.0.1:9200
start_nginx_backend "$BACKEND" "$WORK/backend"
ROUTE=(--ReverseProxy:Routes:all:ClusterId=b "--ReverseProxy:Routes:all:Match:Path={**catch-all}" --ReverseProxy:Clusters:b:Destinations:d:Address=http://$BACKEND/)
ASPNETCORE_ENVIRONMENT=Production taskset -c 0 dotnet src/YarpGateway/bin/Release/net10.0/YarpGateway.dll "${ROUTE[@]}" \
  --Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:9201 --Kestrel:Endpoints:Management:Url=http://127.0.0.1:9211 \
  --Logging:LogLevel:Default=Warning >"$WORK/gateway.log" 2>&1 &
pids+=($!)
ASPNETCORE_ENVIRONMENT=Production taskset -c 0 dotnet bench/BareYarp/bin/Release/net10.0/BareYarp.dll "${ROUTE[@]}" \
  --Kestrel:Endpoints:h1:Url=http://127.0.0.1:9202 --Kestrel:Endpoints:h2:Url=http://127.0.0.1:9212 --Kestrel:Endpoints:h2:Protocols=Http2 \
  --Logging:LogLevel:Default=Warning >"$WORK/bare-yarp.log" 2>&1 &
pids+=($!)
wait_ready http://127.0.0.1:9201/ 30; wait_ready http://127.0.0.1:9202/ 30
declare -A PID=( [gateway]=${pids[1]} [bare-yarp]=${pids[2]} )

declare -A H1=( [gateway]=http://127.0.0.1:9201/ [bare-yarp]=http://127.0.0.1:9202/ )
declare -A H2=( [gateway]=http://127.0.0.1:9201/ [bare-yarp]=http://127.0.0.1:9212/ )
allocated() { # contender -> bytes allocated so far by its process
  if [ "$1" = gateway ]; then
    curl -fsS http://127.0.0.1:9211/metrics | awk '/^dotnet_gc_heap_total_allocated_bytes_total/ { printf "%.0f\n", $2 }'
  else
    curl -fsS http://127.0.0.1:9202/__allocated
  fi
}
load() { # protocol contender requests -> requests that succeeded
  if [ "$1" = new ]; then # one request per connection: h2load's clients each send their one and close
    for _ in $(seq $(( $3 > 500 ? $3 / 500 : 1 ))); do taskset -c 1 h2load --h1 -c 500 -n 500 "${H1[$2]}" | awk '/^requests:/ { print $8 }'; done | awk '{ s += $1 } END { print s }'
    return
  fi
  local args=(--h1 -c 64 -n "$3" "${H1[$2]}")
  [ "$1" = h2 ] && args=(-c 64 -m 10 -n "$3" "${H2[$2]}")
  taskset -c 1 h2load "${args[@]}" | awk '/^requests:/ { print $8 }'
}

for c in gateway bare-yarp; do load h1 "$c" 100000 >/dev/null; load h2 "$c" 100000 >/dev/null; load new "$c" 10000 >/dev/null; done
: >"$WORK/results.tsv"
for run in $(seq "$RUNS"); do
  for proto in h1 h2 new; do
    n=$REQUESTS; [ "$proto" = new ] && n=$(( REQUESTS / 10 ))
    for c in gateway bare-yarp; do
      before=$(allocated "$c"); t0=$(ticks "${PID[$c]}"); ok=$(load "$proto" "$c" "$n"); t1=$(ticks "${PID[$c]}"); after=$(allocated "$c")
      printf '%s\t%s\t%s\t%s\t%s\n' "$proto" "$c" "$ok" "$(( (after - before) / ok ))" "$(( (t1 - t0) * 1000000 / HZ / ok ))" | tee -a "$WORK/results.tsv"
    done
  done
done

python3 - "$WORK/results.tsv" "$OUT/alloc.md" "$REQUESTS" "$RUNS" <<'PY'
import sys, statistics, collections, datetime
path, out, requests, runs = sys.argv[1:]
per, cpu = collections.defaultdict(list), collections.defaultdict(list)
for line in open(path):
    proto, c, ok, b, us = line.split()
    per[(proto, c)].append(int(b))
    cpu[(proto, c)].append(int(us))
m = {k: statistics.median(v) for k, v in per.items()}
u = {k: statistics.median(v) for k, v in cpu.items()}
lines = ["# Allocation and CPU per proxied request", "",
         f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `bench/alloc.sh {requests} {runs}`: medians of {runs} runs of {requests} requests",
         f"({int(requests) // 10} for new connections), 64 connections (h2c: 10 streams each; new connections: 500 at a time, one request each), the runtime's",
         "total allocated bytes and the process's CPU time before and after. Every gateway feature at its default; both proxies pinned to one CPU.", "",
         "| protocol | gateway (bytes/request) | bare YARP | gateway minus bare YARP | gateway CPU (µs/request) | bare YARP CPU |",
         "| --- | ---: | ---: | ---: | ---: | ---: |"]
for proto, name in (("h1", "HTTP/1.1 keep-alive"), ("h2", "HTTP/2 (h2c)"), ("new", "HTTP/1.1, a new connection per request")):
    g, b = m[(proto, "gateway")], m[(proto, "bare-yarp")]
    lines.append(f"| {name} | {g:,.0f} | {b:,.0f} | {g - b:+,.0f} | {u[(proto, 'gateway')]:,.0f} | {u[(proto, 'bare-yarp')]:,.0f} |")
lines += ["", "Issue 23's target: at most 2,500 bytes per HTTP/1.1 request. CPU from 10 ms ticks: a few µs either way for",
          "keep-alive requests; the keep-alive CPU ratio against nginx is `bench/run.sh`'s."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
