#!/usr/bin/env bash
# The gateway as it is in the working tree against the gateway at an earlier commit, side by side: for a change
# too small for bench/run.sh's rounds to tell apart from the machine's own drift (a trim of 1 or 2 % of a request).
#   bench/compare.sh REF [REQUESTS] [ROUNDS] [WARMUP_SECONDS] [PROTO]
#   (defaults: 200000 requests a round, 10 rounds, 120 s of warm-up each, h1; PROTO h2 for h2c, 10 streams a connection)
#   PROFILE=SECONDS bench/compare.sh ...: then a CPU profile of each under the same load (perf, 999 Hz, call graphs), and
#   the share of each one's samples spent in (under, callees included) the frames matching PROFILE_MATCH, an
#   extended regex, one line per alternative (default: the gateway's metric recording and OpenTelemetry).
#   TREE_ARGS="--Gateway:Telemetry:AccessLog=true ..." bench/compare.sh HEAD ...: the working tree's gateway with those
#   settings against the same build without them (a setting's price, at REF = HEAD). Its log goes to a file.
# Both gateways run at once with every feature at its default, pinned to CPU 0 and loaded one at a time (h2load,
# 64 connections, on CPU 1 with the backend, nginx with one worker and a 2-byte body). Warm-up alternates between
# them in 30 s turns, as a gateway takes 100 s or more of load to reach its plateau (docs/performance-history.md,
# "The benchmark on a machine where nginx ran faster"). Each round sends both the same number of requests, in
# alternating order, and reads for each its CPU time (/proc, 10 ms ticks), the runtime's allocated bytes (its
# /metrics) and h2load's requests a second. Output: every round, the medians and the ratios (this tree / REF), with
# the rounds' lowest and highest ratio and how many were below 1.
set -euo pipefail
cd "$(dirname "$0")/.."
REF=${1:?usage: bench/compare.sh REF [REQUESTS] [ROUNDS] [WARMUP_SECONDS] [PROTO]}
REQUESTS=${2:-200000}
ROUNDS=${3:-10}
WARMUP=${4:-120}
PROTO=${5:-h1}
WORK=$(mktemp -d /tmp/yarpgateway-compare.XXXXXX)
BENCH_CLEANUP='rm -rf "$WORK"; rm -f /tmp/perf-"${PID[tree]:-x}".map /tmp/perf-"${PID[ref]:-x}".map /tmp/perfinfo-*.map'
source bench/lib.sh
install_missing nginx=nginx h2load=nghttp2-client

git archive --format=tar "$REF" | tar -x -C "$WORK" --one-top-level=ref
dotnet build src/YarpGateway -c Release --nologo -v q >/dev/null
dotnet build "$WORK/ref/src/YarpGateway" -c Release --nologo -v q >/dev/null
declare -A DLL=( [tree]=src/YarpGateway/bin/Release/net10.0/YarpGateway.dll [ref]="$WORK/ref/src/YarpGateway/bin/Release/net10.0/YarpGateway.dll" )
declare -A PORT=( [tree]=9301 [ref]=9302 )

BACKEND=127.0.0.1:9300
start_nginx_backend "$BACKEND" "$WORK/backend"
PROFILE=${PROFILE:-}
PROFILE_MATCH=${PROFILE_MATCH:-'OpenTelemetry|AdmissionMetrics::Admitted|ResilienceMetrics::Attempt|RetryResponseTransformProvider'}
# Symbols for jitted code: the runtime's perf map, and no double mapping of code pages (with it, perf sees
# every jitted frame as an anonymous memfd). Both contenders run so.
[ -n "$PROFILE" ] && { install_missing perf=linux-perf; export DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0; }
declare -A PID
for c in tree ref; do
  ASPNETCORE_ENVIRONMENT=Production taskset -c 0 dotnet "${DLL[$c]}" --ReverseProxy:Routes:all:ClusterId=b "--ReverseProxy:Routes:all:Match:Path={**catch-all}" \
    --ReverseProxy:Clusters:b:Destinations:d:Address=http://$BACKEND/ \
    --Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:${PORT[$c]} --Kestrel:Endpoints:Management:Url=http://127.0.0.1:$(( PORT[$c] + 10 )) \
    --Logging:LogLevel:Default=Warning $([ "$c" = tree ] && echo "${TREE_ARGS:-}") >"$WORK/$c.log" 2>&1 &
  pids+=($!); PID[$c]=$!
done
for c in tree ref; do wait_ready "http://127.0.0.1:${PORT[$c]}/" 30; done

allocated() { curl -fsS "http://127.0.0.1:$(( PORT[$1] + 10 ))/metrics" | awk '/^dotnet_gc_heap_total_allocated_bytes_total/ { printf "%.0f\n", $2 }'; }
h2args() { if [ "$PROTO" = h2 ]; then echo "-c 64 -m 10"; else echo "--h1 -c 64"; fi; }
# load CONTENDER REQUESTS -> "succeeded req/s"
load() {
  # shellcheck disable=SC2046
  taskset -c 1 h2load $(h2args) -n "$2" "http://127.0.0.1:${PORT[$1]}/" \
    | awk '/^finished in/ { gsub(",", "", $4); rate = $4 } /^requests:/ { ok = $8 } END { print ok, rate }'
}

for _ in $(seq $(( (WARMUP + 29) / 30 ))); do
  # shellcheck disable=SC2046
  for c in tree ref; do taskset -c 1 h2load $(h2args) -D 30 "http://127.0.0.1:${PORT[$c]}/" >/dev/null; done
done

: >"$WORK/rounds.tsv"
for round in $(seq "$ROUNDS"); do
  order="tree ref"; (( round % 2 == 0 )) && order="ref tree"
  for c in $order; do
    b0=$(allocated "$c"); t0=$(ticks "${PID[$c]}"); read -r ok rate < <(load "$c" "$REQUESTS"); t1=$(ticks "${PID[$c]}"); b1=$(allocated "$c")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$c" "$ok" "$rate" "$(( (t1 - t0) * 1000000 * 10 / HZ / ok ))" "$(( (b1 - b0) / ok ))" | tee -a "$WORK/rounds.tsv"
  done
done

python3 - "$WORK/rounds.tsv" "$REF" "$(git rev-parse --short HEAD)" "$REQUESTS" "$ROUNDS" "$WARMUP" "$PROTO" <<'PY'
import sys, statistics, collections
path, ref, head, requests, rounds, warmup, proto = sys.argv[1:]
rows = collections.defaultdict(dict)
for line in open(path):
    r, c, ok, rate, cpu10, alloc = line.split()
    rows[int(r)][c] = (float(rate), int(cpu10) / 10, int(alloc))
def med(c, i): return statistics.median(v[c][i] for v in rows.values())
def ratios(i): return sorted(v["tree"][i] / v["ref"][i] for v in rows.values())
def ratio(i): return statistics.median(ratios(i))
# The spread says whether a ratio is a difference or the machine's noise: the rounds' lowest and highest ratios,
# and in how many rounds this tree was below the reference (fewer bytes or µs; for requests a second, more is better).
def spread(i):
    rs = ratios(i)
    below = sum(r < 1 for r in rs)
    return f"{rs[0]:.3f} to {rs[-1]:.3f}, below 1 in {below} of {len(rs)}"
print(f"\nbench/compare.sh {ref} {requests} {rounds} {warmup} {proto}: the working tree (on {head}) against {ref}, medians of {rounds} rounds")
print("| | this tree | " + ref + " | ratio (median of the rounds' ratios) | the rounds' ratios |")
print("| --- | ---: | ---: | ---: | --- |")
print(f"| requests a second | {med('tree', 0):,.0f} | {med('ref', 0):,.0f} | {ratio(0):.3f} | {spread(0)} |")
print(f"| CPU per request (µs) | {med('tree', 1):.2f} | {med('ref', 1):.2f} | {ratio(1):.3f} | {spread(1)} |")
print(f"| bytes allocated per request | {med('tree', 2):,} | {med('ref', 2):,} | {ratio(2):.3f} | {spread(2)} |")
PY

[ -n "$PROFILE" ] || exit 0
# Inclusive shares from the call graphs: a sample counts for an alternative when a frame of its stack matches it.
for c in tree ref; do
  # shellcheck disable=SC2046
  taskset -c 1 h2load $(h2args) -D $(( PROFILE + 4 )) "http://127.0.0.1:${PORT[$c]}/" >/dev/null &
  load_pid=$!
  sleep 2
  perf record -F 999 -e cpu-clock -g -p "${PID[$c]}" -o "$WORK/$c.perf" -- sleep "$PROFILE" >/dev/null 2>&1
  wait "$load_pid"
  perf script -i "$WORK/$c.perf" 2>/dev/null | python3 -c '
import re, sys
alternatives = sys.argv[2].split("|")
samples, hits, stack = 0, {a: 0 for a in alternatives}, []
def flush():
    global samples
    if stack:
        samples += 1
        for a in alternatives:
            if any(re.search(a, frame) for frame in stack):
                hits[a] += 1
for line in sys.stdin:
    if not line.strip():
        flush(); stack.clear()
    elif line.startswith((" ", "\t")):
        stack.append(line.strip())
flush()
print(f"{sys.argv[1]}: {samples} samples")
for a in alternatives:
    print(f"  {a}: {100 * hits[a] / max(samples, 1):.2f} %")
' "$c" "$PROFILE_MATCH"
done
