#!/usr/bin/env bash
# Adaptive request concurrency (issue 25): a backend that slows sharply past 20 requests in flight
# (10 ms each, plus 10 ms for every request in flight beyond 20), driven by wrk with 100 connections
# through: the gateway with a fixed high route limit (MaxConcurrency 1000), the gateway with
# "MaxConcurrency": "auto", and nginx (one worker, which has no adaptive limit). Reports, per
# contender, requests/s and the client's p50/p99 (queueing at the proxy included), and what the
# backend saw: the most requests in flight and its own p50/p99 (what admitted requests cost it).
#   bench/latency-step.sh [ROUNDS] [SECONDS]      (defaults: 3 rounds, 20 s each, after 10 s of warm-up)
# Proxies on CPU 0; wrk and the backend on CPU 1. Output: bench/results/latency-step.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECONDS_PER=${2:-20}
OUT=bench/results
RAW=$OUT/raw
WORK=$(mktemp -d /tmp/yarpgateway-step.XXXXXX)
mkdir -p "$RAW"
source bench/lib.sh
install_missing nginx=nginx wrk=wrk
BENCH_CLEANUP='rm -rf "$WORK"'

dotnet build src/YarpGateway -c Release --nologo -v q >/dev/null
dotnet build bench/StormBench -c Release --nologo -v q >/dev/null
BACKEND=127.0.0.1:9300
taskset -c 1 dotnet bench/StormBench/bin/Release/net10.0/StormBench.dll step-backend "$BACKEND" 20 10 10 >"$RAW/step-backend.log" 2>&1 &
pids+=($!)
wait_ready "http://$BACKEND/stats" 30

config() { # metadata-json
  cat <<JSON
{ "Logging": { "LogLevel": { "Default": "Warning" } },
  "ReverseProxy": { "Routes": { "all": { "ClusterId": "b", "Match": { "Path": "/{**catch-all}" }, "Metadata": $1 } },
    "Clusters": { "b": { "Destinations": { "d": { "Address": "http://$BACKEND/" } } } } } }
JSON
}
config '{ "MaxConcurrency": "1000", "MaxQueue": "1000" }' >"$WORK/fixed.json"
config '{ "MaxConcurrency": "auto" }' >"$WORK/auto.json"
declare -A URL=( [fixed]=http://127.0.0.1:9301/ [auto]=http://127.0.0.1:9302/ [nginx]=http://127.0.0.1:9303/ )
for mode in fixed auto; do
  port=${URL[$mode]##*:}; port=${port%/}
  ASPNETCORE_ENVIRONMENT=Production taskset -c 0 dotnet src/YarpGateway/bin/Release/net10.0/YarpGateway.dll --config "$WORK/$mode.json" \
    --Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:$port --Kestrel:Endpoints:Management:Url=http://127.0.0.1:$(( port + 10 )) >"$RAW/step-$mode.log" 2>&1 &
  pids+=($!)
done
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/nginx.pid; error_log $WORK/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream backend { server $BACKEND; keepalive 128; }
  server { listen 127.0.0.1:9303; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
taskset -c 0 nginx -c "$WORK/nginx.conf" -p "$WORK" &
pids+=($!)
wait_ready http://127.0.0.1:9311/healthz/ready 30; wait_ready http://127.0.0.1:9312/healthz/ready 30; wait_ready "${URL[nginx]}" 30

measure() { # mode seconds -> "rps p50 p99 backend-max-in-flight backend-p50 backend-p99"
  curl -fsS "http://$BACKEND/stats" >/dev/null
  local out stats
  out=$(taskset -c 1 wrk -t1 -c100 -d"${2}s" --latency "${URL[$1]}")
  stats=$(curl -fsS "http://$BACKEND/stats")
  echo "$out" >>"$RAW/step-wrk-$1.txt"
  python3 - "$stats" <<PY
import json, re, sys
out = """$out"""
s = json.loads(sys.argv[1])
def ms(label):
    m = re.search(label + r"\s+([\d.]+)(us|ms|s)\b", out)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
print(f"{rps:.0f} {ms('50%'):.1f} {ms('99%'):.1f} {s['maxInFlight']} {s['p50Ms']:.1f} {s['p99Ms']:.1f}")
PY
}

for mode in fixed auto nginx; do measure "$mode" 10 >/dev/null; done # warm-up; the auto limit finds its level
: >"$RAW/step.tsv"
order=(fixed auto nginx)
for round in $(seq "$ROUNDS"); do
  for i in "${!order[@]}"; do
    mode=${order[$(( (i + round - 1) % 3 ))]}
    printf '%s\t%s\t%s\n' "$round" "$mode" "$(measure "$mode" "$SECONDS_PER" | tr ' ' '\t')" | tee -a "$RAW/step.tsv"
  done
done
curl -fsS http://127.0.0.1:9312/metrics | grep '^gateway_admission_limit{' >"$RAW/step-auto-limit.txt" || true

python3 - "$RAW/step.tsv" "$OUT" "$ROUNDS" "$SECONDS_PER" "$RAW/step-auto-limit.txt" <<'PY'
import sys, statistics, datetime, collections
path, out, rounds, seconds, limit_file = sys.argv[1:]
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(path):
    r, mode, rps, p50, p99, maxf, bp50, bp99 = line.split("\t")
    for k, v in dict(rps=rps, p50=p50, p99=p99, maxf=maxf, bp50=bp50, bp99=bp99).items():
        rows[mode][k].append(float(v))
m = {c: {k: statistics.median(v) for k, v in d.items()} for c, d in rows.items()}
limit = open(limit_file).read().strip() or "-"
lines = ["# Latency step: adaptive request concurrency", "",
         f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `bench/latency-step.sh {rounds} {seconds}`: medians of {rounds} rotated rounds, {seconds} s each, after 10 s of warm-up.",
         "Backend: 10 ms per request, plus 10 ms for every request in flight beyond 20. wrk: 100 connections. Proxies on CPU 0; wrk and the backend on CPU 1.",
         "fixed: route `MaxConcurrency` 1000; auto: `\"MaxConcurrency\": \"auto\"` (defaults); nginx: one worker, no limit.", "",
         "| contender | req/s | client p50 (ms) | client p99 (ms) | backend: most in flight | backend p50 (ms) | backend p99 (ms) |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
for c in ["fixed", "auto", "nginx"]:
    x = m[c]
    lines.append(f"| {c} | {x['rps']:.0f} | {x['p50']:.1f} | {x['p99']:.1f} | {x['maxf']:.0f} | {x['bp50']:.1f} | {x['bp99']:.1f} |")
lines += ["", f"The auto limit at the end of the run: `{limit}`."]
open(f"{out}/latency-step.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
