#!/usr/bin/env bash
# Benchmark: what route policies cost per request, side by side in one run, on loopback only.
#   bench/policies.sh [ROUNDS] [SECONDS]      (defaults: 5 rounds, 10 s per measurement; WARMUP_SECONDS=60)
#   BASE_REF=<commit> bench/policies.sh ...   adds that commit's gateway (open route) as a contender
# Contenders, each measured with wrk (HTTP/1.1 keep-alive, 64 connections), in rounds whose order rotates:
#   plain      a gateway with no policy configured, open route
#   open       a gateway with every policy kind configured, open route (what the middleware costs routes that use none)
#   jwt        same gateway, AuthorizationPolicy "Default" (HS256 token validated on every request)
#   jwt-scope  same gateway, a named policy requiring a scope and a claim
#   limited    same gateway, a token-bucket rate limit per client IP, high enough never to refuse
#   cached     same gateway, an output-cache policy (every request but the first served from the cache)
# Reported: requests/s and proxy CPU µs per request (utime+stime / requests), medians, and each as a
# ratio to "open" (and "open" to "plain"). Proxies pinned to CPU 0; wrk and the backend (nginx, one
# worker) to CPU 1. Output: bench/results/policies.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SECONDS_PER=${2:-10}
OUT=bench/results
RAW=$OUT/raw
WORK=$(mktemp -d /tmp/yarpgateway-policies.XXXXXX)
mkdir -p "$RAW"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

source bench/lib.sh
install_missing nginx=nginx wrk=wrk
BENCH_CLEANUP='rm -rf "$WORK"; [ -n "${BASE_REF:-}" ] && git worktree remove --force "$WORK-base" 2>/dev/null || true'

dotnet build src/YarpGateway -c Release --nologo -v q >/dev/null
if [ -n "${BASE_REF:-}" ]; then
  git worktree add -f --detach "$WORK-base" "$BASE_REF" >/dev/null
  dotnet build "$WORK-base/src/YarpGateway" -c Release --nologo -v q >/dev/null
fi

BACKEND=127.0.0.1:9200
start_nginx_backend "$BACKEND" "$WORK/backend"

# An HS256 key and a token signed with it (no library needed).
KEY=$(head -c 32 /dev/urandom | base64 -w0)
TOKEN=$(python3 - "$KEY" <<'PY'
import base64, hashlib, hmac, json, sys, time
key = base64.b64decode(sys.argv[1])
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
now = int(time.time())
body = b64(json.dumps({"iss": "https://login.bench/", "aud": "bench-api", "sub": "user-1", "tenant": "a",
                       "scope": "orders.read orders.write", "iat": now, "nbf": now, "exp": now + 7200}).encode())
sig = b64(hmac.new(key, f"{header}.{body}".encode(), hashlib.sha256).digest())
print(f"{header}.{body}.{sig}")
PY
)

cat >"$WORK/plain.json" <<JSON
{ "ReverseProxy": { "Routes": { "all": { "ClusterId": "b", "Match": { "Path": "/{**catch-all}" } } },
  "Clusters": { "b": { "Destinations": { "d": { "Address": "http://$BACKEND/" } } } } } }
JSON
cat >"$WORK/policies.json" <<JSON
{ "Authentication": { "Schemes": { "Bearer": { "ValidIssuer": "https://login.bench/", "ValidAudiences": [ "bench-api" ],
    "SigningKeys": [ { "Issuer": "https://login.bench/", "Value": "$KEY" } ] } } },
  "Gateway": {
    "Authorization": { "Policies": { "orders-write": { "RequireScopes": [ "orders.write" ], "RequireClaims": { "tenant": [ "a" ] } } } },
    "Cors": { "Policies": { "web": { "Origins": [ "https://app.example.com" ] } } },
    "RateLimiting": { "Policies": { "per-client": { "PermitLimit": 100000000, "TokensPerPeriod": 100000000, "ReplenishmentPeriod": "00:00:01" } } },
    "OutputCache": { "Policies": { "short": { "Duration": "01:00:00" } } } },
  "ReverseProxy": { "Routes": {
      "open": { "ClusterId": "b", "Match": { "Path": "/open/{**rest}" } },
      "jwt": { "ClusterId": "b", "Match": { "Path": "/jwt/{**rest}" }, "AuthorizationPolicy": "Default" },
      "jwt-scope": { "ClusterId": "b", "Match": { "Path": "/jwt-scope/{**rest}" }, "AuthorizationPolicy": "orders-write" },
      "limited": { "ClusterId": "b", "Match": { "Path": "/limited/{**rest}" }, "RateLimiterPolicy": "per-client" },
      "cached": { "ClusterId": "b", "Match": { "Path": "/cached/{**rest}" }, "OutputCachePolicy": "short" } },
    "Clusters": { "b": { "Destinations": { "d": { "Address": "http://$BACKEND/" } } } } } }
JSON

start_gateway() { # name dll config port
  ASPNETCORE_ENVIRONMENT=Production taskset -c 0 dotnet "$2" --config "$3" \
    --Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:$4 --Kestrel:Endpoints:Management:Url=http://127.0.0.1:$(( $4 + 10 )) \
    --Logging:LogLevel:Default=Warning >"$RAW/policies-$1.log" 2>&1 &
  PIDS[$1]=$!; pids+=($!)
}
declare -A PIDS=()
DLL=src/YarpGateway/bin/Release/net10.0/YarpGateway.dll
start_gateway plain "$DLL" "$WORK/plain.json" 9201
start_gateway policies "$DLL" "$WORK/policies.json" 9202
[ -n "${BASE_REF:-}" ] && start_gateway base "$WORK-base/$DLL" "$WORK/plain.json" 9203

declare -A URL=(
  [plain]=http://127.0.0.1:9201/open/x [open]=http://127.0.0.1:9202/open/x [jwt]=http://127.0.0.1:9202/jwt/x
  [jwt-scope]=http://127.0.0.1:9202/jwt-scope/x [limited]=http://127.0.0.1:9202/limited/x [cached]=http://127.0.0.1:9202/cached/x
)
declare -A PROC=( [plain]=plain [open]=policies [jwt]=policies [jwt-scope]=policies [limited]=policies [cached]=policies )
order=(plain open jwt jwt-scope limited cached)
if [ -n "${BASE_REF:-}" ]; then URL[base]=http://127.0.0.1:9203/open/x; PROC[base]=base; order=(base "${order[@]}"); fi
for port in 9211 9212 ${BASE_REF:+9213}; do wait_ready "http://127.0.0.1:$port/healthz/ready" 30 || exit 1; done


measure() { # contender seconds -> "rps cpu_us_per_req non2xx"
  local c=$1 pid=${PIDS[${PROC[$1]}]} before after out
  before=$(ticks "$pid")
  local auth="Authorization: Bearer $TOKEN"
  [ "$c" = cached ] && auth="X-No-Token: 1" # the output cache never serves a request with Authorization
  out=$(taskset -c 1 wrk -t1 -c64 -d"${2}s" -H "$auth" "${URL[$c]}")
  after=$(ticks "$pid")
  echo "$out" >>"$RAW/policies-wrk-$c.txt"
  python3 - "$before" "$after" "$HZ" <<PY
import re, sys
out = """$out"""
before, after, hz = map(float, sys.argv[1:])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
n = int(re.search(r"(\d+) requests in", out).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print(f"{rps:.0f} {(after - before) / hz / n * 1e6:.2f} {bad.group(1) if bad else 0}")
PY
}

# Warm-up: tiered compilation with dynamic PGO keeps improving the .NET processes for tens of seconds.
for c in "${order[@]}"; do measure "$c" "$(( ${WARMUP_SECONDS:-60} / ${#order[@]} + 5 ))" >/dev/null; done

: >"$RAW/policies.tsv"
for round in $(seq "$ROUNDS"); do
  for i in "${!order[@]}"; do
    c=${order[$(( (i + round - 1) % ${#order[@]} ))]}
    read -r rps cpu bad <<<"$(measure "$c" "$SECONDS_PER")"
    [ "$bad" = 0 ] || { echo "$c: $bad non-2xx responses; the scenario is broken" >&2; exit 1; }
    printf '%s\t%s\t%s\t%s\n' "$round" "$c" "$rps" "$cpu" | tee -a "$RAW/policies.tsv"
  done
done

python3 - "$RAW/policies.tsv" "$OUT" "$ROUNDS" "$SECONDS_PER" "${BASE_REF:-}" <<'PY'
import sys, statistics, datetime, collections
path, out, rounds, seconds, base = sys.argv[1:]
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(path):
    r, c, rps, cpu = line.split("\t")
    rows[c]["rps"].append(float(rps)); rows[c]["cpu"].append(float(cpu))
m = {c: {k: statistics.median(v) for k, v in d.items()} for c, d in rows.items()}
spread = {c: (min(d["rps"]), max(d["rps"])) for c, d in rows.items()}
o = m["open"]
what = {"base": f"gateway at {base}, no policy configured, open route", "plain": "no policy configured, open route",
        "open": "every policy kind configured, open route", "jwt": "AuthorizationPolicy Default (HS256 token validated)",
        "jwt-scope": "named policy: scope + claim", "limited": "token-bucket rate limit per client IP (never refuses)",
        "cached": "output cache (hits)"}
lines = ["# Benchmark: the cost of route policies", "",
         f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `bench/policies.sh {rounds} {seconds}`: medians of {rounds} rounds (order rotated each round), {seconds} s each.",
         "wrk, HTTP/1.1 keep-alive, 64 connections, every request with the same bearer token (but cached: the output cache never serves a request with Authorization); gateway pinned to CPU 0, wrk and the backend (nginx, one worker, 2-byte body) on CPU 1. Loopback only.", "",
         "| contender | what | req/s (min-max) | vs open | CPU µs/req | added CPU µs/req vs open |",
         "| --- | --- | ---: | ---: | ---: | ---: |"]
for c in [k for k in ["base", "plain", "open", "jwt", "jwt-scope", "limited", "cached"] if k in m]:
    x = m[c]
    lines.append(f"| {c} | {what[c]} | {x['rps']:.0f} ({spread[c][0]:.0f}-{spread[c][1]:.0f}) | {x['rps'] / o['rps']:.2f}x | {x['cpu']:.1f} | {x['cpu'] - o['cpu']:+.1f} |")
open(f"{out}/policies.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "wrote $OUT/policies.md"
