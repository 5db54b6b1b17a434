# Shared by the bench scripts (sourced, not run): the processes a script starts, stopped when it
# exits however it exits, and a bounded wait for an HTTP endpoint to answer.
#   source "$(dirname "$0")/lib.sh"
#   some-server & pids+=($!)
#   wait_ready http://127.0.0.1:8081/healthz/ready 30
# A script that has more to clean up sets BENCH_CLEANUP to a command run after the processes stop.

pids=()
BENCH_CLEANUP=${BENCH_CLEANUP:-}

stop_started() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n $BENCH_CLEANUP ]]; then eval "$BENCH_CLEANUP"; fi
}
trap stop_started EXIT

# install_missing TOOL=PACKAGE ...: installs, as root and from Debian, the packages of the tools not on
# PATH, with their services kept from starting (nginx would bind port 80 on every interface).
install_missing() {
  local need=() pair
  for pair in "$@"; do command -v "${pair%%=*}" >/dev/null || need+=("${pair#*=}"); done
  ((${#need[@]})) || return 0
  [ "$(id -u)" = 0 ] || { echo "missing ${need[*]} and not root to install them" >&2; return 1; }
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
}

# wait_ready URL SECONDS: until URL answers 2xx, polling every 0.1 s; fails (status 1) after SECONDS.
wait_ready() {
  for _ in $(seq $(( $2 * 10 ))); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "not ready: $1" >&2; return 1
}

# start_nginx_backend ADDRESS DIR [CPUS] [WORKERS]: the benchmarks' backend, nginx (one worker on CPU 1
# unless told otherwise) answering every request with a 2-byte body; its files go in DIR.
start_nginx_backend() {
  mkdir -p "$2"
  cat >"$2/nginx.conf" <<CONF
worker_processes ${4:-1}; daemon off; pid $2/nginx.pid; error_log $2/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen $1; location / { return 200 "ok"; } } }
CONF
  taskset -c "${3:-1}" nginx -c "$2/nginx.conf" -p "$2" &
  pids+=($!)
}

# ticks PID [FIELDS]: CPU ticks of a process and its children (nginx's worker), HZ per second:
# utime+stime by default, or the awk expression FIELDS ('$15' for the kernel's share alone).
ticks() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    [ -r "/proc/$p/stat" ] && total=$(( total + $(awk "{print ${2:-\$14 + \$15}}" "/proc/$p/stat") ))
  done
  echo "$total"
}
HZ=$(getconf CLK_TCK)

# .NET processes (the gateway, bare YARP, the .NET backends and load tools) run with the runtime
# setting the container image ships (deploy/Dockerfile): with one CPU, hot code is optimized after
# 100 ms without a new method compiled, not after 1 s (docs/operations.md, "Running on one CPU").
export DOTNET_TC_DelaySingleProcMultiplier=${DOTNET_TC_DelaySingleProcMultiplier:-1}

# gateway_cmd: sets GATEWAY_CMD, the command that runs the gateway: GATEWAY_EXE when set (a native AOT build, as
# bench/aot.sh publishes; an experiment), else dotnet "$GATEWAY_DLL".
gateway_cmd() {
  if [ -n "${GATEWAY_EXE:-}" ]; then GATEWAY_CMD=("$GATEWAY_EXE"); else GATEWAY_CMD=(dotnet "$GATEWAY_DLL"); fi
}

# WebSocket benchmarks (websockets.sh, ws-slow-readers.sh) share these.
# start_ws_backend LOG: builds the gateway and WsBench (Release), sets GATEWAY_DLL (unless the caller set it: another build) and BENCH_DLL, and starts
# WsBench's backend on CPU 1, port 5910 on every address (the configs use 127.0.0.2-5).
start_ws_backend() {
  dotnet build src/YarpGateway -c Release --nologo -v q >/dev/null
  dotnet build bench/WsBench -c Release --nologo -v q >/dev/null
  GATEWAY_DLL=${GATEWAY_DLL:-src/YarpGateway/bin/Release/net10.0/YarpGateway.dll}
  BENCH_DLL=bench/WsBench/bin/Release/net10.0/WsBench.dll
  taskset -c 1 dotnet "$BENCH_DLL" backend 5910 >"$1" 2>&1 &
  pids+=($!)
  wait_ready "http://127.0.0.2:5910/" 30
}

# start_ws_gateway LOG CONFIG [ARGS...]: the gateway on CPU 0, proxy on :8080, management on 127.0.0.1:8081,
# no drain delay and no saturation log lines; sets gw and stop_proxy (the same process) once it is ready.
start_ws_gateway() {
  local log=$1 config=$2; shift 2
  gateway_cmd
  ASPNETCORE_ENVIRONMENT=Production taskset -c 0 "${GATEWAY_CMD[@]}" --config "$config" --Gateway:Shutdown:DrainDelay=00:00:00 \
    --Kestrel:Endpoints:Proxy:Url=http://0.0.0.0:8080 --Kestrel:Endpoints:Management:Url=http://127.0.0.1:8081 \
    --Gateway:Telemetry:SaturationLogInterval=00:00:00 "$@" >"$log" 2>&1 &
  gw=$! stop_proxy=$!
  wait_ready "http://127.0.0.1:8081/healthz/ready" 30
}

# start_nginx_ws_proxy DIR ERROR_LOG PORT CONNECTIONS: nginx with one worker on CPU 0 proxying WebSockets
# to the four WsBench backends; sets stop_proxy (the master) and gw (the worker, which holds the connections).
start_nginx_ws_proxy() {
  cat >"$1/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $1/nginx.pid; error_log $PWD/$2 warn; worker_rlimit_nofile $(ulimit -n);
events { worker_connections $4; }
http { access_log off;
  upstream ws { server 127.0.0.2:5910; server 127.0.0.3:5910; server 127.0.0.4:5910; server 127.0.0.5:5910; }
  server { listen 0.0.0.0:$3 backlog=4096;
    location / { proxy_pass http://ws; proxy_http_version 1.1; proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade"; proxy_read_timeout 30m; proxy_send_timeout 30m; } } }
CONF
  taskset -c 0 nginx -c "$1/nginx.conf" -p "$1" &
  stop_proxy=$!
  wait_ready "http://127.0.0.1:$3/" 30
  gw=$(pgrep -P "$stop_proxy" | head -1)
}

