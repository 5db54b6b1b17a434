#!/usr/bin/env bash
# Benchmark: the gateway against bare YARP, nginx and HAProxy, side by side, on loopback only.
#   bench/run.sh [ROUNDS] [SECONDS]          (defaults: 3 rounds, 10 s per measurement; WARMUP_SECONDS=180)
#   CORES=2 bench/run.sh ...                 every proxy on both cores (nginx 2 workers, HAProxy 2 threads),
#                                            load and backend (2 workers) on the same two cores; writes latest-2core.*
# Installs what it needs (Debian: nginx, haproxy, wrk, nghttp2-client, gnuplot-nox), builds
# Release, and measures in rounds whose order rotates (A B C D E, B C D E A, ...), reporting medians:
#   - HTTP/1.1 keep-alive, wrk, 64 connections: requests/s and p99;
#   - proxy CPU time per request: utime+stime of the proxy's processes / requests;
#   - fixed rate at ~50 % of nginx's max (h2load --rps, per-request log): p50/p99 added over direct, and the proxy's
#     CPU time per request at that rate, the same for every contender (at each one's max, a slower proxy leaves the
#     load generator's and backend's CPU idle, and waking them from idle makes its sends dearer: see
#     docs/performance-history.md, "CPU per request at the same rate");
#   - HTTP/2 with prior knowledge (h2load, 64 connections x 10 streams): requests/s.
# Each proxy is pinned to CPU 0; the load generator and the backend (nginx, one worker, a 2-byte
# body) to CPU 1 (CORES=1, the default). Output: bench/results/latest.md and bench/results/latest.png.
# AOT_EXE=path adds a contender "aot": the gateway from a native AOT build (bench/aot.sh), as an experiment: the output
# then goes to bench/results/raw/ (latest-aot.md), not over the results.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
CORES=${CORES:-1}
case $CORES in
  1) PROXY_CPUS=0 LOAD_CPUS=1 WORKERS=1 NAME=latest ;;
  2) PROXY_CPUS=0,1 LOAD_CPUS=0,1 WORKERS=2 NAME=latest-2core ;;
  *) echo "CORES is 1 or 2" >&2; exit 2 ;;
esac
SECONDS_PER=${2:-10}
OUT=bench/results
RAW=$OUT/raw
REPORT=$OUT
AOT_EXE=${AOT_EXE:-}
[ -n "$AOT_EXE" ] && { [ -x "$AOT_EXE" ] || { echo "AOT_EXE is not an executable (bench/aot.sh)" >&2; exit 2; }; REPORT=$RAW NAME=$NAME-aot; }
WORK=$(mktemp -d /tmp/yarpgateway-bench.XXXXXX)
mkdir -p "$RAW"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

source bench/lib.sh
install_missing nginx=nginx haproxy=haproxy wrk=wrk h2load=nghttp2-client gnuplot=gnuplot-nox

dotnet build src/YarpGateway -c Release --nologo -v q >/dev/null
dotnet build bench/BareYarp -c Release --nologo -v q >/dev/null

BACKEND=127.0.0.1:9100
declare -A URL=(
  [direct]=http://127.0.0.1:9100/  [gateway]=http://127.0.0.1:9101/  [bare-yarp]=http://127.0.0.1:9102/
  [nginx]=http://127.0.0.1:9103/   [haproxy]=http://127.0.0.1:9104/
)
declare -A H2URL=( [gateway]=http://127.0.0.1:9101/ [bare-yarp]=http://127.0.0.1:9112/ [haproxy]=http://127.0.0.1:9114/ )
CONTENDERS=(gateway bare-yarp nginx haproxy)
DOTNET_CONTENDERS=(gateway bare-yarp)
[ -n "$AOT_EXE" ] && { URL[aot]=http://127.0.0.1:9105/ H2URL[aot]=http://127.0.0.1:9105/; CONTENDERS+=(aot); DOTNET_CONTENDERS+=(aot); }
declare -A PIDS=()
BENCH_CLEANUP='rm -rf "$WORK"'

# --- backend: nginx, one worker, a 2-byte body ---------------------------------------------------
mkdir -p "$WORK/proxy"
start_nginx_backend "$BACKEND" "$WORK/backend" "$LOAD_CPUS" "$WORKERS"

# --- contenders, each pinned to CPU 0 ----------------------------------------------------------
ROUTE=(--ReverseProxy:Routes:all:ClusterId=b "--ReverseProxy:Routes:all:Match:Path={**catch-all}" --ReverseProxy:Clusters:b:Destinations:d:Address=http://$BACKEND/)
ASPNETCORE_ENVIRONMENT=Production taskset -c "$PROXY_CPUS" dotnet src/YarpGateway/bin/Release/net10.0/YarpGateway.dll "${ROUTE[@]}" \
  --Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:9101 --Kestrel:Endpoints:Management:Url=http://127.0.0.1:9111 \
  --Logging:LogLevel:Default=Warning >"$RAW/gateway.log" 2>&1 &
PIDS[gateway]=$!; pids+=($!)
ASPNETCORE_ENVIRONMENT=Production taskset -c "$PROXY_CPUS" dotnet bench/BareYarp/bin/Release/net10.0/BareYarp.dll "${ROUTE[@]}" \
  --Kestrel:Endpoints:h1:Url=http://127.0.0.1:9102 --Kestrel:Endpoints:h2:Url=http://127.0.0.1:9112 --Kestrel:Endpoints:h2:Protocols=Http2 \
  --Logging:LogLevel:Default=Warning >"$RAW/bare-yarp.log" 2>&1 &
PIDS[bare-yarp]=$!; pids+=($!)
if [ -n "$AOT_EXE" ]; then
  ASPNETCORE_ENVIRONMENT=Production taskset -c "$PROXY_CPUS" "$AOT_EXE" "${ROUTE[@]}" \
    --Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:9105 --Kestrel:Endpoints:Management:Url=http://127.0.0.1:9115 \
    --Logging:LogLevel:Default=Warning >"$RAW/gateway-aot.log" 2>&1 &
  PIDS[aot]=$!; pids+=($!)
fi
cat >"$WORK/proxy/nginx.conf" <<CONF
worker_processes $WORKERS; daemon off; pid $WORK/proxy/nginx.pid; error_log $WORK/proxy/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream backend { server $BACKEND; keepalive 64; }
  server { listen 127.0.0.1:9103;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
taskset -c "$PROXY_CPUS" nginx -c "$WORK/proxy/nginx.conf" -p "$WORK/proxy" &
PIDS[nginx]=$!; pids+=($!)
cat >"$WORK/haproxy.cfg" <<CONF
global
  nbthread $WORKERS
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend h1
  bind 127.0.0.1:9104
  default_backend b
frontend h2
  bind 127.0.0.1:9114 proto h2
  default_backend b
backend b
  server s1 $BACKEND
CONF
taskset -c "$PROXY_CPUS" haproxy -f "$WORK/haproxy.cfg" -db >"$RAW/haproxy.log" 2>&1 &
PIDS[haproxy]=$!; pids+=($!)

for c in direct "${CONTENDERS[@]}"; do wait_ready "${URL[$c]}" 10 || exit 1; done

measure_wrk() { # contender -> "rps p99_ms cpu_us_per_req kernel_us_per_req"
  local c=$1 before after sys_before sys_after out
  before=$( [ "$c" = direct ] && echo 0 || ticks "${PIDS[$c]}")
  sys_before=$( [ "$c" = direct ] && echo 0 || ticks "${PIDS[$c]}" '$15')
  out=$(taskset -c "$LOAD_CPUS" wrk -t"$WORKERS" -c64 -d"${SECONDS_PER}s" --latency "${URL[$c]}")
  after=$( [ "$c" = direct ] && echo 0 || ticks "${PIDS[$c]}")
  sys_after=$( [ "$c" = direct ] && echo 0 || ticks "${PIDS[$c]}" '$15')
  echo "$out" >>"$RAW/wrk-$c.txt"
  python3 - "$before" "$after" "$HZ" "$sys_before" "$sys_after" <<PY
import re, sys
out = """$out"""
before, after, hz, sys_before, sys_after = map(float, sys.argv[1:])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
n = int(re.search(r"(\d+) requests in", out).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
cpu = (after - before) / hz / n * 1e6 if n else 0
kernel = (sys_after - sys_before) / hz / n * 1e6 if n else 0
print(f"{rps:.0f} {p99:.3f} {cpu:.2f} {kernel:.2f}")
PY
}

measure_rate() { # contender rate -> "p50_ms p99_ms cpu_us_per_req" (cpu: - for direct)
  local c=$1 rate=$2 log="$WORK/rate-$c.log" before after
  rm -f "$log"
  before=$( [ "$c" = direct ] && echo - || ticks "${PIDS[$c]}")
  taskset -c "$LOAD_CPUS" h2load -t "$WORKERS" --h1 -c 32 --rps "$(( rate / 32 ))" -D "$SECONDS_PER" --log-file="$log" "${URL[$c]}" >/dev/null
  after=$( [ "$c" = direct ] && echo - || ticks "${PIDS[$c]}")
  python3 - "$log" "$before" "$after" "$HZ" <<'PY'
import sys
log, before, after, hz = sys.argv[1:]
lat = sorted(int(l.split()[2]) / 1000 for l in open(log) if l.strip())
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
cpu = "-" if before == "-" else f"{(float(after) - float(before)) / float(hz) / len(lat) * 1e6:.2f}"
print(f"{q(0.5):.3f} {q(0.99):.3f} {cpu}")
PY
}

measure_h2() { # contender -> rps
  taskset -c "$LOAD_CPUS" h2load -t "$WORKERS" -c 64 -m 10 -D "$SECONDS_PER" "${H2URL[$1]}" | awk '/finished in/ { for (i = 1; i <= NF; i++) if ($i == "req/s,") print $(i-1) }'
}

# Warm up, then find nginx's max for the fixed-rate test. The .NET contenders keep getting faster for
# tens of seconds under load (tiered compilation with dynamic PGO); a short warm-up made the first
# round of an earlier run less than half as fast as the others. On one core the gateway's JIT kept
# compiling for about 45 s of wrk load (its dotnet_jit_compiled_methods_total settled after that).
# On 2026-12-02 it took 120 s, in 15 s steps: 22.8k, 33.1k, 30.7k, 24.9k, 29.1k, 30.0k, 28.6k, then
# 34.4k to 36.7k from 105 s on, with 8,019 methods compiled after 15 s and 11,048 after 120 s; with
# 60 s a run's first rounds measured it half-warm. So each .NET contender gets 180 s of HTTP/1.1 and
# 10 s of HTTP/2 before anything is measured.
for c in "${DOTNET_CONTENDERS[@]}"; do
  taskset -c "$LOAD_CPUS" wrk -t"$WORKERS" -c64 -d"${WARMUP_SECONDS:-180}s" "${URL[$c]}" >/dev/null
  taskset -c "$LOAD_CPUS" h2load -t "$WORKERS" -c 64 -m 10 -D 10 "${H2URL[$c]}" >/dev/null
done
for c in nginx haproxy; do taskset -c "$LOAD_CPUS" wrk -t"$WORKERS" -c64 -d3s "${URL[$c]}" >/dev/null; done
NGINX_MAX=$(measure_wrk nginx | cut -d' ' -f1)
RATE=$(( NGINX_MAX / 2 ))
echo "nginx max ${NGINX_MAX} req/s; fixed rate ${RATE} req/s"

order=(direct "${CONTENDERS[@]}")
: >"$RAW/$NAME.tsv"
for round in $(seq "$ROUNDS"); do
  for i in "${!order[@]}"; do
    c=${order[$(( (i + round - 1) % ${#order[@]} ))]}
    read -r rps p99 cpu kernel <<<"$(measure_wrk "$c")"
    read -r rp50 rp99 rcpu <<<"$(measure_rate "$c" "$RATE")"
    h2=-
    [ -n "${H2URL[$c]:-}" ] && h2=$(measure_h2 "$c")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$c" "$rps" "$p99" "$cpu" "$kernel" "$rp50" "$rp99" "$h2" "$rcpu" | tee -a "$RAW/$NAME.tsv"
  done
done

python3 - "$RAW/$NAME.tsv" "$REPORT" "$ROUNDS" "$SECONDS_PER" "$RATE" "$CORES" "$NAME" "$RAW" <<'PY'
import sys, statistics, datetime, collections
path, out, rounds, seconds, rate, cores, name, raw = sys.argv[1:]
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(path):
    r, c, rps, p99, cpu, kernel, rp50, rp99, h2, rcpu = line.split("\t")
    for k, v in dict(rps=rps, p99=p99, cpu=cpu, kernel=kernel, rp50=rp50, rp99=rp99, h2=h2, rcpu=rcpu.strip()).items():
        if v != "-":
            rows[c][k].append(float(v))
m = {c: {k: statistics.median(v) for k, v in d.items()} for c, d in rows.items()}
order = [c for c in ["direct", "gateway", "bare-yarp", "nginx", "haproxy", "aot"] if c in m]
ratio = lambda a, b: f"{a / b:.2f}x" if b else "-"
lines = [f"# Benchmark: gateway vs bare YARP, nginx, HAProxy",
         "",
         f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `" + ("" if cores == "1" else f"CORES={cores} ") + ("AOT_EXE=... " if "aot" in m else "") + f"bench/run.sh {rounds} {seconds}`: medians of {rounds} rounds (order rotated each round), {seconds} s per measurement.",
         ("Each proxy pinned to CPU 0; wrk/h2load and the backend (nginx, one worker, 2-byte body) on CPU 1. Loopback only." if cores == "1" else
          "Each proxy on both CPUs (nginx 2 workers, HAProxy 2 threads); wrk/h2load (2 threads) and the backend (nginx, 2 workers, 2-byte body) on the same two CPUs. Loopback only."),
         f"Fixed-rate test at {rate} req/s (half of nginx's measured max), 32 HTTP/1.1 connections; latency added over going direct.",
         "",
         "| contender | HTTP/1.1 req/s | vs nginx | vs bare YARP | p99 (ms) | CPU µs/req | of which kernel | CPU vs nginx | fixed-rate p50 added (ms) | p99 added (ms) | fixed-rate CPU µs/req | vs nginx | HTTP/2 req/s |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
d = m["direct"]
for c in order:
    x = m[c]
    lines.append(f"| {c} | {x['rps']:.0f} | {ratio(x['rps'], m['nginx']['rps'])} | {ratio(x['rps'], m['bare-yarp']['rps'])} | {x['p99']:.2f} | "
                 + ("-" if c == "direct" else f"{x['cpu']:.1f}") + " | " + ("-" if c == "direct" else f"{x['kernel']:.1f}") + " | "
                 + ("-" if c == "direct" else ratio(x['cpu'], m['nginx']['cpu'])) + " | "
                 + ("-" if c == "direct" else f"{x['rp50'] - d['rp50']:.3f}") + " | " + ("-" if c == "direct" else f"{x['rp99'] - d['rp99']:.3f}") + " | "
                 + (f"{x['rcpu']:.1f} | {ratio(x['rcpu'], m['nginx']['rcpu'])}" if 'rcpu' in x else "- | -") + " | "
                 + (f"{x['h2']:.0f}" if 'h2' in x else "-") + " |")
g, b, n = m["gateway"], m["bare-yarp"], m["nginx"]
h2 = ratio(g['h2'], b['h2']) if 'h2' in g and 'h2' in b else "-"
lines += ["", "Targets (issue 23, one core): >= 0.6x nginx req/s (stretch 0.7x): **" + ratio(g['rps'], n['rps'])
          + "**; CPU/request <= 1.8x nginx: **" + ratio(g['cpu'], n['cpu']) + "** (at the fixed rate, the same for both: "
          + ratio(g['rcpu'], n['rcpu']) + ")" + "; HTTP/2 >= 1.0x bare YARP: **" + h2
          + "**. Earlier (issue 8): >= 1.2x bare YARP req/s: **" + ratio(g['rps'], b['rps']) + "**; fixed-rate p99 <= 2x nginx's: **"
          + ratio(g['rp99'], n['rp99']) + "** (absolute p99 " + f"{g['rp99']:.2f} vs {n['rp99']:.2f} ms).",
          *(["", "aot: the gateway from a native AOT build (bench/aot.sh), an experiment: against nginx " + ratio(m['aot']['rps'], n['rps'])
             + " req/s and " + ratio(m['aot']['cpu'], n['cpu']) + " CPU per request; against the gateway " + ratio(m['aot']['rps'], g['rps'])
             + " req/s, " + ratio(m['aot']['cpu'], g['cpu']) + " CPU per request, HTTP/2 " + (ratio(m['aot']['h2'], g['h2']) if 'h2' in m['aot'] and 'h2' in g else "-") + "."] if "aot" in m else []),
          "", f"![requests per second relative to nginx]({name}.png)", "",
          "Raw output: `bench/results/raw/` (not committed)."]
open(f"{out}/{name}.md", "w").write("\n".join(lines) + "\n")
with open(f"{raw}/{name}.dat", "w") as f:
    for i, c in enumerate(order[1:]):
        f.write(f"{i} \"{c}\" {m[c]['rps'] / n['rps']:.3f}\n")
print("\n".join(lines))
PY
gnuplot <<GP
set terminal png size 800,420
set output "$REPORT/$NAME.png"
set title "HTTP/1.1 requests/s relative to nginx ($([ "$CORES" = 1 ] && echo "one pinned core" || echo "two cores shared with the load"), 64 connections)"
set style fill solid 0.8
set boxwidth 0.6
set yrange [0:*]
set offsets 0, 0, 0.15, 0
set ylabel "x nginx"
set grid ytics
unset key
plot "$RAW/$NAME.dat" using 1:3:xtic(2) with boxes lc rgb "#3b6ea5", "" using 1:3:(sprintf("%.2fx", \$3)) with labels offset 0,1
GP
echo "wrote $REPORT/$NAME.md and $REPORT/$NAME.png"
