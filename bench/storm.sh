#!/usr/bin/env bash
# Reconnect-storm benchmark for connection admission (issues 3 and 25).
#   bench/storm.sh [EXISTING] [STORM] [ROUNDS]
# N keep-alive clients send a request every second; then M new connections arrive at once.
# Runs, alternating: the gateway with connection admission off, with the fixed rate (the defaults
# before the adaptive rate: 1000/s and a burst of 100 per CPU), with the adaptive rate applied after
# accept (PaceAccept=false), with the adaptive rate alone pacing accept (AcceptWindow=0, the defaults
# before the accept window), with the defaults (the accept window first, then the adaptive rate), and
# nginx (one worker) as a peer; writes bench/results/storm.md with the median of each
# measure and each round's figures (an experiment, below: bench/results/raw/storm-partial.md, headed
# by its settings). Each run also reads the proxy's CPU time from /proc and the gateway's JIT counters
# from /metrics. Everything stays on loopback. The proxy is pinned to CPU 0; the load tool and the
# backend share CPU 1. The existing clients run in their own process (StormBench starts it) and,
# like the backend, above the storm's priority (nice -10 and "High"; needs root), so that what they
# measure is the proxy's delay, not the load tool's backlog on the CPU it shares with the storm.
# MODES="adaptive nginx" runs only those contenders; GATEWAY_ARGS adds settings to every gateway
# contender (e.g. GATEWAY_ARGS=--Gateway:Transport:Backlog=512 for Kestrel's own listen backlog), and
# GATEWAY_ENV environment variables (e.g. GATEWAY_ENV=DOTNET_GCgen0size=0x2000000) to the gateway's process alone.
# AOT_EXE=path adds a contender "aot": the defaults, run from a native AOT build of the gateway (bench/aot.sh publishes
# one; an experiment, docs/performance-history.md), e.g. MODES="adaptive aot nginx" AOT_EXE=/tmp/yarpgateway-aot/YarpGateway.
# WARM_CONNECTIONS=N first sends every contender N short connections (one request each, 500 at a
# time, h2load on CPU 1), as a proxy that has served churning traffic for a while has seen: the
# runtime's tiered compilation has then optimized the new-connection path (without it, a storm
# meets that path still being compiled; docs/performance-history.md). WARM_URL=URL sends a gateway
# contender's warm-up there instead (e.g. http://127.0.0.1:8081/healthz/live, the management listener:
# what the gateway could do to itself before it reports ready; or http://127.0.0.1:8080/close, which the backend
# answers with Connection: close, so that the warm-up leaves the gateway's backend pool empty); nginx's still goes to nginx.
# WARM_PAUSE=SECONDS waits that long after each 500 of the warm-up: with pauses, tiered compilation gets the quiet 100 ms it
# waits for before it counts calls, so the warm-up's path is optimized before the storm, not only compiled (docs/performance-history.md).
# WARM_CPU=0 runs the warm-up's load on the proxy's CPU instead of CPU 1, as a warm-up the gateway gave itself would run.
set -euo pipefail
cd "$(dirname "$0")/.."

EXISTING=${1:-1000}
STORM=${2:-5000}
ROUNDS=${3:-3}
MODES_OVERRIDE=${MODES:-}
PROXY=127.0.0.1:8080
MANAGEMENT=127.0.0.1:8081
BACKEND=127.0.0.1:5900
OUT=bench/results/storm.md
# A partial run (some modes, or extra settings) is an experiment: it must not replace the results.
WARM_CONNECTIONS=${WARM_CONNECTIONS:-0}
RAW=bench/results/raw
JSONL=$RAW/storm.jsonl
SETTINGS=""
if [ -n "$MODES_OVERRIDE" ] || [ -n "${GATEWAY_ARGS:-}" ] || [ -n "${GATEWAY_ENV:-}" ] || [ -n "${GATEWAY_DLL:-}" ] || [ -n "${AOT_EXE:-}" ] || [ "$WARM_CONNECTIONS" != 0 ]; then
  OUT=$RAW/storm-partial.md
  JSONL=$RAW/storm-partial.jsonl  # the last full run's raw results stay
  # The experiment's settings, written into its table so that the file says what it measured.
  for v in MODES GATEWAY_ARGS GATEWAY_ENV GATEWAY_DLL AOT_EXE WARM_CONNECTIONS WARM_URL WARM_PAUSE WARM_CPU; do
    # WARM_CONNECTIONS is 0 unless set; a 0 of any other is a setting (WARM_CPU=0)
    [ -n "${!v:-}" ] && { [ "$v" != WARM_CONNECTIONS ] || [ "${!v}" != 0 ]; } && { [[ ${!v} == *" "* ]] && SETTINGS+="$v=\"${!v}\" " || SETTINGS+="$v=${!v} "; }
  done
fi
mkdir -p "$RAW"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

dotnet build src/YarpGateway -c Release --nologo -v q >/dev/null
dotnet build bench/StormBench -c Release --nologo -v q >/dev/null
GATEWAY_DLL=${GATEWAY_DLL:-src/YarpGateway/bin/Release/net10.0/YarpGateway.dll}
BENCH_DLL=bench/StormBench/bin/Release/net10.0/StormBench.dll

source bench/lib.sh
install_missing nginx=nginx h2load=nghttp2-client
NGINX=127.0.0.1:8082
NGINX_DIR=$(mktemp -d /tmp/yarpgateway-storm.XXXXXX)
BENCH_CLEANUP='rm -rf "$NGINX_DIR"'
cat >"$NGINX_DIR/nginx.conf" <<CONF
worker_processes 1; worker_rlimit_nofile 20000; daemon off; pid $NGINX_DIR/nginx.pid; error_log $NGINX_DIR/error.log warn;
events { worker_connections 16000; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 120s;
  upstream backend { server $BACKEND; keepalive 256; }
  server { listen $NGINX backlog=8192;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF

# The methods the gateway's runtime has compiled and the time its JIT took (dotnet_jit_* on /metrics), or,
# given the earlier reading, what was added since; "null null" for nginx, or when /metrics did not answer.
# The proxy's CPU and these two say how much of a storm went to compiling code the proxy had not run before
# (a gateway seconds old: about 6,000 methods; warmed by WARM_CONNECTIONS: under 2,000).
jit_counters() {
  if [ "$1" = nginx ]; then echo "null null"; return; fi
  { curl -s -m 5 "http://$MANAGEMENT/metrics" || true; } | awk -v before="${2:-0 0}" '
    /^dotnet_jit_compiled_methods_total/ { m = $2 } /^dotnet_jit_compilation_time_seconds_total/ { t = $2 }
    END { split(before, b, " ")
          if (m == "" || t == "" || b[1] == "null") print "null null"; else printf "%d %.2f\n", m - b[1], t - b[2] }'
}

# Handshakes the kernel dropped because a listen queue was full (every listener on the machine: the
# proxy's and the backend's; the backend listens with a backlog of 8192, as nginx does here).
listen_overflows() { awk '/^TcpExt:/ { if (!n) { for (i = 1; i <= NF; i++) if ($i == "ListenOverflows") c = i; n = 1 } else print $c }' /proc/net/netstat; }

nice -n -10 taskset -c 1 dotnet "$BENCH_DLL" backend "$BACKEND" >"$RAW/backend.log" 2>&1 &
pids+=($!)

wait_ready "http://$BACKEND/" 30

CPUS=1 # the proxy is pinned to one CPU: per-CPU defaults are for one
declare -A MODE_ARGS=(
  [off]="--Gateway:Admission:Connections:Adaptive:Enabled=false --Gateway:Admission:Connections:RatePerSecond=0 --Gateway:Admission:Connections:MaxFirstRequestConnections=0"
  [fixed]="--Gateway:Admission:Connections:PaceAccept=false --Gateway:Admission:Connections:Adaptive:Enabled=false --Gateway:Admission:Connections:RatePerSecond=$(( 1000 * CPUS )) --Gateway:Admission:Connections:Burst=$(( 100 * CPUS ))"
  [unpaced]="--Gateway:Admission:Connections:PaceAccept=false" # the adaptive rate applied after accept, as before PaceAccept
  [rate]="--Gateway:Admission:Connections:AcceptWindow=0" # the adaptive rate alone pacing accept, as before the accept window
  [adaptive]=""   # the shipped defaults (docs/configuration.md: Gateway:Admission:Connections)
  [aot]=""        # the same, from AOT_EXE
)
MODES=(off fixed unpaced rate adaptive nginx)
[ -n "${AOT_EXE:-}" ] && MODES=(off fixed unpaced rate adaptive aot nginx)
[ -n "$MODES_OVERRIDE" ] && read -r -a MODES <<<"$MODES_OVERRIDE"
[[ " ${MODES[*]} " == *" aot "* && ! -x "${AOT_EXE:-}" ]] && { echo "the aot contender needs AOT_EXE, an executable (bench/aot.sh)" >&2; exit 2; }

: >"$JSONL"
for round in $(seq "$ROUNDS"); do
  for mode in "${MODES[@]}"; do
    target=$PROXY
    if [ "$mode" = nginx ]; then
      taskset -c 0 nginx -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR" &
      gw=$!
      target=$NGINX
      wait_ready "http://$NGINX/" 30
    else
      # shellcheck disable=SC2086
      command=(dotnet "$GATEWAY_DLL"); [ "$mode" = aot ] && command=("$AOT_EXE")
      env ${GATEWAY_ENV:-} ASPNETCORE_ENVIRONMENT=Production taskset -c 0 "${command[@]}" --config bench/storm-gateway.json \
        --Kestrel:Endpoints:Proxy:Url=http://$PROXY --Kestrel:Endpoints:Management:Url=http://$MANAGEMENT \
        ${MODE_ARGS[$mode]} ${GATEWAY_ARGS:-} >"$RAW/gateway-$mode-$round.log" 2>&1 &
      gw=$!
      wait_ready "http://$MANAGEMENT/healthz/ready" 30
    fi
    warm_url=http://$target/
    [ "$mode" != nginx ] && [ -n "${WARM_URL:-}" ] && warm_url=$WARM_URL
    for _ in $(seq $(( WARM_CONNECTIONS / 500 ))); do taskset -c ${WARM_CPU:-1} h2load --h1 -c 500 -n 500 "$warm_url" >/dev/null; sleep ${WARM_PAUSE:-0}; done
    overflows_before=$(listen_overflows)
    cpu_before=$(ticks "$gw")  # bench/lib.sh: with nginx's worker
    jit_before=$(jit_counters "$mode")
    line=$(timeout 180 taskset -c 1 dotnet "$BENCH_DLL" storm "$target" --existing "$EXISTING" --storm "$STORM")
    overflows=$(( $(listen_overflows) - overflows_before ))
    cpu=$(( $(ticks "$gw") - cpu_before ))
    read -r methods jit_seconds <<<"$(jit_counters "$mode" "$jit_before")"
    echo "{\"mode\":\"$mode\",\"round\":$round,\"listenOverflows\":$overflows,\"proxyCpuSeconds\":$(awk -v t="$cpu" -v hz="$HZ" 'BEGIN{printf "%.2f", t/hz}'),\"jitMethods\":$methods,\"jitSeconds\":$jit_seconds,\"result\":$line}" | tee -a "$JSONL"
    kill -TERM "$gw"; wait "$gw" 2>/dev/null || true
  done
done

python3 - "$JSONL" "$OUT" "$EXISTING" "$STORM" "$ROUNDS" "$SETTINGS" <<'PY'
import json, statistics, sys, datetime, platform, os
rows = [json.loads(l) for l in open(sys.argv[1])]
out, existing, storm, rounds, settings = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6].strip()
keys = [("beforeP99Ms", "existing clients p99 before the storm, the proxy seconds old (ms)"),
        ("duringP50Ms", "existing clients p50 during the storm (ms)"),
        ("duringP99Ms", "existing clients p99 during the storm (ms)"),
        ("duringMaxMs", "existing clients max during the storm (ms)"),
        ("existingFailed", "existing clients' failed requests"),
        ("stormFailed", "new connections failed"),
        ("stormServedSeconds", "time until every new client was served (s)"),
        ("listenOverflows", "handshakes dropped on a full listen queue (kernel)"),
        ("proxyCpuSeconds", "proxy CPU over the run: the open clients' start and the storm (s)"),
        ("jitMethods", "methods the gateway's runtime compiled over the run"),
        ("jitSeconds", "time its JIT took over the run (s; wall time around each compilation)")]
for r in rows:
    for k in ("listenOverflows", "proxyCpuSeconds", "jitMethods", "jitSeconds"):
        r["result"][k] = r.get(k, 0 if k == "listenOverflows" else None)
def med(mode, k):
    values = [r["result"][k] for r in rows if r["mode"] == mode and r["result"][k] is not None]
    return statistics.median(values) if values else None
with open(out, "w") as f:
    f.write(f"# Reconnect storm: {existing} keep-alive clients at 1 request/s each, then {storm} new connections at once\n\n")
    f.write(f"Medians of {rounds} rounds, run alternately (off, fixed, unpaced, rate, adaptive, nginx, off, ...). Proxy pinned to CPU 0; load tool and backend on CPU 1, the existing clients (a process of their own) and the backend above the storm's priority.\n")
    f.write("off: no connection admission; fixed: the defaults before the adaptive rate (1000/s, burst 100 for one CPU, 1000 connections in their first request, taken after accept); adaptive, after accept: the adaptive rate (target delay 20 ms) with connections accepted at once and waiting in the gateway (`PaceAccept=false`); adaptive rate alone, paced accept: the same rate applied to accept, connections waiting in the kernel's listen queue (`AcceptWindow=0`, the defaults before the accept window); defaults: the same, and a new connection let in whenever one of the 64 per CPU in their first request is answered (the accept window), the rate admitting the rest; nginx: 1.22, one worker, upstream keep-alive.\n")
    command = (settings + " " if settings else "") + f"bench/storm.sh {existing} {storm} {rounds}"
    f.write(f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `{command}` on {os.cpu_count()} CPUs.\n\n")
    names = {"off": "off", "fixed": "fixed (old defaults)", "unpaced": "adaptive, after accept", "rate": "adaptive rate alone, paced accept", "adaptive": "accept window and adaptive rate (defaults)", "aot": "the defaults, native AOT build", "nginx": "nginx"}
    modes = [m for m in names if any(r["mode"] == m for r in rows)]  # MODES may have run only some
    ratio = "adaptive" in modes and "nginx" in modes
    f.write("| measure | " + " | ".join(names[m] for m in modes) + (" | defaults vs nginx" if ratio else "") + " |\n")
    f.write("| --- |" + " ---: |" * (len(modes) + ratio) + "\n")
    for k, label in keys:
        medians = {m: med(m, k) for m in modes}
        if all(v is None for v in medians.values()):
            continue  # raw lines from before the column existed
        cells = ["-" if v is None else str(v) for v in medians.values()]
        if ratio:
            a, n = medians['adaptive'], medians['nginx']
            cells.append(f'{a / n:.2f}x' if a is not None and n else '-')
        f.write(f"| {label} | " + " | ".join(cells) + " |\n")
    # Round by round: the machine's speed drifts within a run, so a ratio taken round by round (each gateway round
    # against the nginx round next to it) is steadier than the ratio of the medians.
    by_round = lambda mode, k: [r["result"][k] for r in sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["round"])]
    f.write("\nRound by round (time until every new client was served, s; existing clients' p99 during the storm, ms):\n\n")
    for m in modes:
        f.write(f"- {names[m]}: " + ", ".join(map(str, by_round(m, "stormServedSeconds"))) + "; p99 " + ", ".join(map(str, by_round(m, "duringP99Ms"))) + "\n")
    if ratio:
        pairs = list(zip(by_round("adaptive", "stormServedSeconds"), by_round("nginx", "stormServedSeconds")))
        if pairs and all(n for _, n in pairs):
            f.write(f"- defaults against nginx, the median of the rounds' ratios of the time served: {statistics.median(a / n for a, n in pairs):.2f}x\n")
    if "aot" in modes and "nginx" in modes:
        pairs = list(zip(by_round("aot", "stormServedSeconds"), by_round("nginx", "stormServedSeconds")))
        if pairs and all(n for _, n in pairs):
            f.write(f"- the native AOT build against nginx, the same: {statistics.median(a / n for a, n in pairs):.2f}x\n")
    f.write(f"\nRaw results: one JSON line per run in `{sys.argv[1]}` (not committed).\n")
print(open(out).read())
PY
