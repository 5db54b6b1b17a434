#!/usr/bin/env bash
# Idle capacity over HTTP/2 (issue 26): opens COUNT idle WebSockets through the gateway with HTTP/2 extended
# CONNECT on both sides (up to 100 per connection), then, while they are held, 20 HTTP/1.1 clients read a
# 20 KiB/s stream for SECONDS. Reports how many opened and how fast, the gateway's RSS and descriptors, the
# fast clients' message latency and the gateway's scheduler delays meanwhile.
#   bench/ws-hold-h2.sh [COUNT] [SECONDS]      (defaults 100000 and 20)
# The gateway is pinned to CPU 0; the backend and the clients share CPU 1. Writes bench/results/ws-hold-h2.md.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-100000}
SECONDS_HELD=${2:-20}
RAW=bench/results/raw
OUT=bench/results/ws-hold-h2.md
mkdir -p "$RAW"
ulimit -n "$(ulimit -Hn)"
source bench/lib.sh
start_ws_backend "$RAW/ws-hold-backend.log"
start_ws_gateway "$RAW/ws-hold-gateway.log" bench/ws-gateway-h2.json
pids+=($gw)
line=$(timeout 1800 taskset -c 1 dotnet "$BENCH_DLL" hold 8080 "$COUNT" "$SECONDS_HELD" "$gw" http://127.0.0.1:8081/metrics)
echo "$line" | tee "$RAW/ws-hold-h2.json"
live=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8081/healthz/live)
python3 - "$RAW/ws-hold-h2.json" "$OUT" "$live" "$SECONDS_HELD" <<'PY'
import json, sys, datetime, os, platform
r = json.load(open(sys.argv[1])); out, live, held = sys.argv[2], sys.argv[3], sys.argv[4]
lines = ["# Idle WebSockets over HTTP/2, as many as this machine allows", "",
  f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `bench/ws-hold-h2.sh` on {os.cpu_count()} CPUs (Linux {platform.release()}); "
  "gateway pinned to CPU 0 with `bench/ws-gateway-h2.json` (backends over HTTP/2), backend and clients on CPU 1.", "",
  "| asked | opened | failed | time to open (s) | gateway RSS (MiB) | KiB per WebSocket, all in | gateway descriptors | fast p50 / p99 (ms) | scheduler delay p50 / p99 under (s) | socket delay p99 under (s) | /healthz/live |",
  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  f"| {r['requested']:,} | {r['opened']:,} | {r['failures']:,} | {r['open_seconds']} | {r['gateway_rss_kib']/1024:,.0f} | {r['gateway_rss_kib']/max(r['opened'],1):.1f} | {r['gateway_fds']:,} | "
  f"{r['fast_p50_ms']} / {r['fast_p99_ms']} | {r['scheduler_delay_p50_le_s']} / {r['scheduler_delay_p99_le_s']} | {r['socket_delay_p99_le_s']} | {live} |",
  "", f"The fast clients (20, HTTP/1.1, a 1 KiB message every 50 ms each) read for {held} s while the idle WebSockets were held. "
  "Scheduler delays are the gateway's own histograms over that time: the bucket bound under which the quantile fell."]
open(out, "w").write("\n".join(lines) + "\n"); print("\n".join(lines))
PY
