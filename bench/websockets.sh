#!/usr/bin/env bash
# WebSocket benchmarks (issue 4): idle capacity and slow consumers, on loopback only.
#   bench/websockets.sh [IDLE_STEPS] [SLOW] [FAST] [SECONDS]
# Idle capacity: opens IDLE_STEPS idle proxied WebSockets (default 10000,20000,50000) and reports the
# gateway's RSS slope in KiB per connection, beside two references: nginx proxying the same
# WebSockets, and Kestrel alone holding them with no proxying at all (WsBench /hold: the handshake
# by hand and a zero-byte read, no WebSocket object), the least any Kestrel-based proxy can hold.
# Slow consumers: FAST clients (100) read a 20 KiB/s stream; then SLOW clients (1000) read 4 KiB/s of the same; the fast clients' p99 message latency
# alone and with the slow ones, and the gateway's peak RSS, under each slow-client policy.
# The gateway is pinned to CPU 0; the backend and the clients share CPU 1. Writes
# bench/results/websockets.md.
set -euo pipefail
cd "$(dirname "$0")/.."

IDLE_STEPS=${1:-10000,20000,50000}
REQUESTED_STEPS=$IDLE_STEPS
SLOW=${2:-1000}
FAST=${3:-100}
SECONDS_PER_PHASE=${4:-15}
PROXY_PORT=8080
OUT=bench/results/websockets.md
RAW=bench/results/raw
[ -n "${GATEWAY_EXE:-}" ] && OUT=$RAW/websockets-aot.md # a native AOT build (bench/lib.sh): an experiment, not the results
mkdir -p "$RAW"
# Every proxied WebSocket is two sockets in the gateway; raise the limit (root may).
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
FD_LIMIT=$(ulimit -n)
echo "file descriptor limit: $FD_LIMIT"
# Each idle WebSocket takes two descriptors in the gateway. Where the limit cannot be raised (a
# container without CAP_SYS_RESOURCE), measure as far as it allows and say so in the results.
MAX_IDLE=$(( (FD_LIMIT - 1000) / 2 ))
LARGEST=$(echo "$IDLE_STEPS" | tr ',' '\n' | sort -n | tail -1)
FD_NOTE=""
if (( LARGEST > MAX_IDLE )); then
  IDLE_STEPS="$(( MAX_IDLE / 4 )),$(( MAX_IDLE / 2 )),$MAX_IDLE"
  LARGEST=$MAX_IDLE
  FD_NOTE="The open-file limit here is $FD_LIMIT and cannot be raised (no CAP_SYS_RESOURCE), so the steps were capped at $IDLE_STEPS."
  echo "$FD_NOTE"
fi

source bench/lib.sh
install_missing nginx=nginx
WORK=$(mktemp -d /tmp/yarpgateway-ws-bench.XXXXXX)
BENCH_CLEANUP="rm -rf $WORK"

dotnet build bench/BareYarp -c Release --nologo -v q >/dev/null
start_ws_backend "$RAW/ws-backend.log"


# Bare YARP 2.1 (bench/BareYarp) with the same route, as the baseline.
start_bare_yarp() { # log
  ASPNETCORE_ENVIRONMENT=Production taskset -c 0 dotnet bench/BareYarp/bin/Release/net10.0/BareYarp.dll \
    --urls http://0.0.0.0:$PROXY_PORT --Logging:LogLevel:Default=Warning \
    --ReverseProxy:Routes:ws:ClusterId=ws "--ReverseProxy:Routes:ws:Match:Path=/{**rest}" \
    --ReverseProxy:Clusters:ws:HttpRequest:ActivityTimeout=00:30:00 \
    --ReverseProxy:Clusters:ws:Destinations:b2:Address=http://127.0.0.2:5910/ --ReverseProxy:Clusters:ws:Destinations:b3:Address=http://127.0.0.3:5910/ \
    --ReverseProxy:Clusters:ws:Destinations:b4:Address=http://127.0.0.4:5910/ --ReverseProxy:Clusters:ws:Destinations:b5:Address=http://127.0.0.5:5910/ >"$1" 2>&1 &
  gw=$! stop_proxy=$!
  wait_ready "http://127.0.0.1:$PROXY_PORT/" 30 || true
  sleep 2
}

# nginx as a WebSocket proxy, one worker, the same four backends. Twice the connections the largest step
# needs: nginx starts closing connections when fewer than a 16th of its slots are free.
NGINX_CONNECTIONS=$(( (LARGEST * 2 + 1000) * 2 ))
start_nginx() { # log
  start_nginx_ws_proxy "$WORK" "$1" "$PROXY_PORT" "$NGINX_CONNECTIONS"
}

# Kestrel alone (WsBench's own server, no proxying), in the gateway's GC mode, on ports 5920 (HTTP/1.1)
# and 5921 (h2c): what Kestrel itself holds for each idle WebSocket it serves.
start_kestrel_alone() { # log
  DOTNET_gcServer=1 taskset -c 0 dotnet "$BENCH_DLL" backend 5920 >"$1" 2>&1 &
  gw=$! stop_proxy=$!
  wait_ready "http://127.0.0.1:5920/" 30
}

gc_mode=$(python3 -c "import json;c=json.load(open('src/YarpGateway/bin/Release/net10.0/YarpGateway.runtimeconfig.json'))['runtimeOptions']['configProperties'];print('Server GC' if c.get('System.GC.Server') else 'Workstation GC')")

# Idle capacity: backends over HTTP/1.1 (one backend connection per WebSocket, the default), then
# over HTTP/2 (WebSockets multiplexed on shared backend connections, RFC 8441), then bare YARP,
# nginx and Kestrel alone. gw is the process whose RSS is read, stop_proxy the one to stop.
for backend in h1 h1-httpclient h2 bare nginx kestrel; do
  port=$PROXY_PORT path=/idle
  case $backend in
    bare) start_bare_yarp "$RAW/ws-bare-yarp-idle.log" ;;
    nginx) start_nginx "$RAW/ws-nginx-idle.log" ;;
    kestrel) start_kestrel_alone "$RAW/ws-kestrel-idle.log"; port=5920 path=/hold ;;
    h1-httpclient) # the lean upgrade connector off: upgrades through SocketsHttpHandler, as before issue 26
      start_ws_gateway "$RAW/ws-gateway-idle-$backend.log" bench/ws-gateway.json --Gateway:WebSockets:LeanBackendConnector=false ;;
    *)
      config=bench/ws-gateway.json; [[ $backend == h2 ]] && config=bench/ws-gateway-h2.json
      start_ws_gateway "$RAW/ws-gateway-idle-$backend.log" "$config" ;;
  esac
  timeout 1200 taskset -c 1 dotnet "$BENCH_DLL" idle $port "$IDLE_STEPS" "$gw" h1 $path | tee "$RAW/ws-idle-$backend.json"
  kill -TERM "$stop_proxy"; wait "$stop_proxy" 2>/dev/null || true
done

# Idle capacity with WebSockets over HTTP/2 on both sides (RFC 8441 from the clients, backends over
# HTTP/2): up to 100 WebSockets share a connection, so the requested steps fit in the descriptor
# limit. Bare YARP takes no cleartext HTTP/2 from clients, so it has no row here.
start_ws_gateway "$RAW/ws-gateway-idle-h2c.log" bench/ws-gateway-h2.json
timeout 1200 taskset -c 1 dotnet "$BENCH_DLL" idle $PROXY_PORT "$REQUESTED_STEPS" "$gw" h2 | tee "$RAW/ws-idle-h2c.json"
gateway_fds_h2c=$(ls /proc/$gw/fd | wc -l)
kill -TERM "$gw"; wait "$gw" 2>/dev/null || true
start_kestrel_alone "$RAW/ws-kestrel-idle-h2c.log"
timeout 1200 taskset -c 1 dotnet "$BENCH_DLL" idle 5921 "$REQUESTED_STEPS" "$gw" h2 /hold | tee "$RAW/ws-idle-kestrel-h2c.json"
kill -TERM "$gw"; wait "$gw" 2>/dev/null || true

# Slow consumers, per policy.
: >"$RAW/ws-slow.jsonl"
for policy in Backpressure DropMessages Disconnect bare-yarp; do
  if [[ $policy == bare-yarp ]]; then
    start_bare_yarp "$RAW/ws-bare-yarp-slow.log"
  else
    start_ws_gateway "$RAW/ws-gateway-slow-$policy.log" bench/ws-gateway.json --Gateway:WebSockets:SlowClientPolicy=$policy
  fi
  line=$(timeout 600 taskset -c 1 dotnet "$BENCH_DLL" slow $PROXY_PORT "$SLOW" "$FAST" "$SECONDS_PER_PHASE" "$gw")
  echo "{\"policy\":\"$policy\",\"result\":$line}" | tee -a "$RAW/ws-slow.jsonl"
  kill -TERM "$gw"; wait "$gw" 2>/dev/null || true
done

python3 - "$RAW/ws-idle-h1.json" "$RAW/ws-idle-h2.json" "$RAW/ws-idle-bare.json" "$RAW/ws-slow.jsonl" "$OUT" "$gc_mode" "$SLOW" "$FAST" "$FD_NOTE" "$RAW/ws-idle-h2c.json" "$gateway_fds_h2c" \
  "$RAW/ws-idle-nginx.json" "$RAW/ws-idle-kestrel.json" "$RAW/ws-idle-kestrel-h2c.json" "$(nginx -v 2>&1 | sed 's|.*/||')" "$RAW/ws-idle-h1-httpclient.json" <<'PY'
import json, sys, datetime, platform, os
idle = json.load(open(sys.argv[1]))
idle_h2 = json.load(open(sys.argv[2]))
idle_bare = json.load(open(sys.argv[3]))
slow = [json.loads(l) for l in open(sys.argv[4]) if l.strip()]
out, gc, n_slow, n_fast, fd_note = sys.argv[5], sys.argv[6], sys.argv[7], sys.argv[8], sys.argv[9]
idle_h2c, fds_h2c = json.load(open(sys.argv[10])), int(sys.argv[11])
idle_nginx, idle_kestrel, idle_kestrel_h2c, nginx_version = (json.load(open(sys.argv[12])), json.load(open(sys.argv[13])),
                                                             json.load(open(sys.argv[14])), sys.argv[15])
idle_hc = json.load(open(sys.argv[16]))
slope = lambda r: r["slope_kib_per_connection"]
lines = [
    "# WebSocket benchmarks",
    "",
    f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `bench/websockets.sh` on {os.cpu_count()} CPUs "
    f"({platform.system()} {platform.release()}); gateway pinned to CPU 0, backend and clients on CPU 1; {gc} "
    "(the .NET 10 default for ASP.NET Core apps, with DATAS), default `Gateway:WebSockets` settings (64 KiB buffer).",
    "",
    "## Idle capacity",
    "",
    "One connection per WebSocket (HTTP/1.1 Upgrade). RSS in MiB; for nginx, its one worker's.",
    "",
    "| idle WebSockets | gateway, backends over HTTP/1.1 | the same, lean connector off | gateway, backends over HTTP/2 | bare YARP | nginx | Kestrel alone, no proxying |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
for p, h, q, b, n, k in zip(idle["points"], idle_hc["points"], idle_h2["points"], idle_bare["points"], idle_nginx["points"], idle_kestrel["points"]):
    lines.append(f"| {p['connections']:,} | {p['rss_kib'] / 1024:,.0f} | {h['rss_kib'] / 1024:,.0f} | {q['rss_kib'] / 1024:,.0f} | {b['rss_kib'] / 1024:,.0f} | "
                 f"{n['rss_kib'] / 1024:,.0f} | {k['rss_kib'] / 1024:,.0f} |")
lines += [
    "",
    f"RSS slope over the steps (least squares): **{idle['slope_kib_per_connection']} KiB per connection** with backends "
    f"over HTTP/1.1 (the default; target, issue 26: at most nginx's), **{slope(idle_hc)} KiB** with the lean upgrade connector off "
    f"(`SocketsHttpHandler`), **{idle_h2['slope_kib_per_connection']} KiB** with backends over HTTP/2; bare YARP: **{idle_bare['slope_kib_per_connection']} KiB** "
    f"({idle['slope_kib_per_connection'] / idle_bare['slope_kib_per_connection']:.2f}x). From empty to the first step: {idle['first_step_kib_per_connection']} / "
    f"{idle_h2['first_step_kib_per_connection']} KiB per connection, one-time costs included. "
    f"Connections that failed to open: {idle['failures']} / {idle_h2['failures']}. {fd_note}",
    "",
    f"References: nginx {nginx_version} proxying the same WebSockets (one worker, default buffers): **{slope(idle_nginx)} KiB** "
    f"per connection ({idle_nginx['failures']} failed). Kestrel alone, holding each WebSocket with no proxying "
    f"(`WsBench backend`'s `/hold`: the handshake by hand and a zero-byte read, no WebSocket object, in the gateway's GC mode): "
    f"**{slope(idle_kestrel)} KiB** per connection. That is Kestrel's share of every proxied WebSocket, before the backend "
    "connection and the relay" + (", so no proxy built on Kestrel can reach 8 KiB per HTTP/1.1 connection." if slope(idle_kestrel) > 8 else "."),
    "",
    "### WebSockets over HTTP/2 on both sides",
    "",
    "Clients open their WebSockets with HTTP/2 extended CONNECT (RFC 8441), up to 100 on one connection "
    "(Kestrel's default stream limit), and the gateway reaches the backends over HTTP/2 the same way. "
    "Few sockets, so the steps run as asked.",
    "",
    "| idle WebSockets | gateway RSS (MiB) | Kestrel alone, no proxying (MiB) |",
    "| ---: | ---: | ---: |",
]
for p, k in zip(idle_h2c["points"], idle_kestrel_h2c["points"]):
    lines.append(f"| {p['connections']:,} | {p['rss_kib'] / 1024:,.0f} | {k['rss_kib'] / 1024:,.0f} |")
lines += [
    "",
    f"RSS slope: **{idle_h2c['slope_kib_per_connection']} KiB per WebSocket** (target, issue 26: at most 9); from empty to the "
    f"first step {idle_h2c['first_step_kib_per_connection']} KiB. WebSockets that failed to open: {idle_h2c['failures']}. "
    f"Open file descriptors in the gateway at the last step: {fds_h2c:,}. Kestrel alone holding the same WebSockets "
    f"(extended CONNECT accepted, a zero-byte read on the stream): **{slope(idle_kestrel_h2c)} KiB** per WebSocket, "
    f"{idle_kestrel_h2c['failures']} failed. A proxy adds the backend stream to that (`SocketsHttpHandler`'s HTTP/2 stream, "
    "its request and response: about 1.2 KB of live heap, `bench/websockets-heap.sh`) and the relay between them.",
    "",
    f"## Slow consumers: {n_fast} fast clients, then {n_slow} slow ones too",
    "",
    "Every client gets a 1 KiB message every 50 ms (20 KiB/s). Slow clients read 4 KiB a second.",
    "Latency is from the backend's send to the fast client's read (same monotonic clock).",
    "",
    "Bare YARP is an opaque relay with backpressure and no buffer cap of its own.",
    "",
    "| policy | fast alone p50 / p99 (ms) | with slow p50 / p99 (ms) | max (ms) | gateway RSS alone / with slow (MiB) | peak RSS (MiB) |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
]
for s in slow:
    r = s["result"]; a = r["alone"]; w = r["with_slow"]
    lines.append(f"| {s['policy']} | {a['p50_ms']} / {a['p99_ms']} | {w['p50_ms']} / {w['p99_ms']} | {w['max_ms']} | "
                 f"{a['max_rss_kib'] / 1024:,.0f} / {w['max_rss_kib'] / 1024:,.0f} | {r['gateway_peak_rss_kib'] / 1024:,.0f} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
