#!/usr/bin/env bash
# WebSocket clients that never read (issue 26): what each one costs the proxy, and whether it comes back.
#   bench/ws-slow-readers.sh [READERS] [FAST] [SECONDS] [CONTENDERS]
# FAST clients (50) read a 20 KiB/s stream; then READERS clients (300) open /flood, where the backend sends
# 4 KiB messages as fast as it is let, and never read a byte. Reported per contender: the proxy's settled
# RSS before, with the never-readers held and 8 s after they leave (the gateway gives memory back
# after 5 s), the growth per never-reader, and the fast clients' p99 while the never-readers are
# held. CONTENDERS (default: the gateway under each
# slow-client policy; Backpressure-wb64k, Backpressure with Kestrel's own 64 KiB write queue
# (Gateway:Transport:MaxWriteBufferSize=65536; the gateway's default is 16 KiB);
# then nginx 1.22 with one worker) run one after another in one run. DropMessages-nolimit is DropMessages with its drop
# limits off (MaxDroppedMessages and MaxDroppedBytes 0), so that its never-readers stay open and its slope can be read:
# SECOND_WAVE_CONTENDERS=DropMessages-nolimit bench/ws-slow-readers.sh 300 50 10 DropMessages-nolimit.
# SECOND_WAVE (default 1000; 0 skips it) never-readers are then opened against a fresh proxy for each contender
# in SECOND_WAVE_CONTENDERS (default: Backpressure and nginx, the policies that keep every never-reader open),
# to tell what each further never-reader costs from what the first wave costs once: the slope
# (RSS with SECOND_WAVE - RSS with READERS) / (SECOND_WAVE - READERS), and the code the runtime compiled
# during the first wave (the RSS's shared memory, where .NET keeps compiled code).
# The proxy is pinned to CPU 0; the backend and the clients share CPU 1. Writes bench/results/ws-slow-readers.md.
set -euo pipefail
cd "$(dirname "$0")/.."

READERS=${1:-300}
FAST=${2:-50}
SECONDS_HELD=${3:-10}
CONTENDERS=${4:-Backpressure,DropMessages,Disconnect,Backpressure-wb64k,nginx}
SECOND_WAVE=${SECOND_WAVE:-1000}
SECOND_WAVE_CONTENDERS=${SECOND_WAVE_CONTENDERS:-Backpressure,nginx}
PROXY_PORT=8080
OUT=bench/results/ws-slow-readers.md
RAW=bench/results/raw
[ -n "${GATEWAY_EXE:-}" ] && OUT=$RAW/ws-slow-readers-aot.md # a native AOT build (bench/lib.sh): an experiment, not the results
mkdir -p "$RAW"

source bench/lib.sh
install_missing nginx=nginx
WORK=$(mktemp -d /tmp/yarpgateway-ws-slow.XXXXXX)
BENCH_CLEANUP="rm -rf $WORK"

start_ws_backend "$RAW/ws-slow-readers-backend.log"

: >"$RAW/ws-slow-readers.jsonl"
# run_wave CONTENDER READERS: one wave against a fresh proxy; prints the WsBench line.
run_wave() {
  local contender=$1 readers=$2
  if [[ $contender == nginx ]]; then
    start_nginx_ws_proxy "$WORK" "$RAW/ws-slow-readers-nginx.log" "$PROXY_PORT" $(( readers > 1500 ? 2 * readers + 1000 : 4096 ))
  else
    local policy=${contender%-wb64k} extra=()
    policy=${policy%-nolimit}
    [[ $contender == *-wb64k ]] && extra=(--Gateway:Transport:MaxWriteBufferSize=65536)
    [[ $contender == *-nolimit ]] && extra=(--Gateway:WebSockets:MaxDroppedMessages=0 --Gateway:WebSockets:MaxDroppedBytes=0)
    start_ws_gateway "$RAW/ws-slow-readers-$contender.log" bench/ws-gateway.json --Gateway:WebSockets:SlowClientPolicy=$policy "${extra[@]}"
  fi
  timeout 300 taskset -c 1 dotnet "$BENCH_DLL" neverread $PROXY_PORT "$readers" "$FAST" "$SECONDS_HELD" "$gw"
  kill -TERM "$stop_proxy"; wait "$stop_proxy" 2>/dev/null || true
}

for contender in ${CONTENDERS//,/ }; do
  line=$(run_wave "$contender" "$READERS")
  second=null
  if (( SECOND_WAVE > READERS )) && [[ ",$SECOND_WAVE_CONTENDERS," == *",$contender,"* ]]; then
    second=$(run_wave "$contender" "$SECOND_WAVE")
  fi
  echo "{\"contender\":\"$contender\",\"result\":$line,\"second\":$second}" | tee -a "$RAW/ws-slow-readers.jsonl"
done

python3 - "$RAW/ws-slow-readers.jsonl" "$OUT" "$READERS" "$FAST" <<'PY'
import json, sys, datetime, os, platform
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out, readers, fast = sys.argv[2], sys.argv[3], sys.argv[4]
lines = ["# WebSocket clients that never read", "",
  f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `bench/ws-slow-readers.sh` on {os.cpu_count()} CPUs (Linux {platform.release()}); "
  "proxy pinned to CPU 0, backend and clients on CPU 1; the gateway with its shipped defaults (64 KiB `OutboundBufferBytes`, a 16 KiB socket write queue) and `bench/ws-gateway.json`.", "",
  f"{fast} fast clients read a 1 KiB message every 50 ms; then {readers} clients open a WebSocket whose backend sends 4 KiB messages "
  "as fast as it is let, and never read. RSS is settled (two readings a second apart within 1 %); for nginx, its one worker's.", "",
  f"| proxy | RSS before (MiB) | with never-readers (MiB) | after they left (MiB) | growth per never-reader (KiB) | of which code compiled in the wave (MiB) | each never-reader past the first {readers} (KiB) | fast p50 / p99 while held (ms) |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
second_size = None
for r in rows:
    x = r["result"]; c = r["contender"]; y = r.get("second")
    name = "nginx 1.22, one worker" if c == "nginx" else f"gateway, {c[:-6]}, `MaxWriteBufferSize` 64 KiB" if c.endswith("-wb64k") else f"gateway, {c}"
    slope = "-"
    if y and y["readers"] > x["readers"]:
        second_size = y["readers"]
        slope = f"{(y['rss_with_kib'] - x['rss_with_kib']) / (y['readers'] - x['readers']):.1f}"
    lines.append(f"| {name} | {x['rss_before_kib']/1024:.0f} | {x['rss_with_kib']/1024:.0f} | {x['rss_after_kib']/1024:.0f} | {x['kib_per_reader']} | {x.get('code_grown_kib', 0)/1024:.1f} | {slope} | {x['fast_p50_ms']} / {x['fast_p99_ms']} |")
lines += ["", "Target (issue 26): at most `OutboundBufferBytes` + 16 KiB per never-reader under every policy (80 KiB with the default cap), and the memory back when they leave.", "",
  "Reading the rows: under `Disconnect` the never-readers are closed after `DisconnectAfter` (10 s), within the hold, so its row includes "
  "closing 300 connections; under `DropMessages` the backend is never held back: each never-reader's ring fills to 32 KiB (the cap less "
  "the 32 KiB Kestrel holds while a write to the client waits; `Backpressure`'s holds 16), and the copy's read buffer is rented for one "
  "read at a time, not held per connection; a flooding backend gets each never-reader closed within seconds by `MaxDroppedMessages` "
  "(1,000), so the row is read while most of them are closing or closed (at most about 230 of the 300 were open at once on 2026-12-06; "
  "with the limits off, all 300 held, the figure came out about the same). \"After they left\" is read 8 s after they left: the gateway "
  "compacts its heap once open connections have fallen to half or less for 5 s (`Gateway:Memory`, docs/configuration.md); what stays is "
  "the code the runtime compiled for them, Kestrel's pool of socket buffers and other pooled memory, which the next wave reuses "
  "(docs/websockets.md; for nginx, its worker's RSS). \"Of which code compiled in the wave\": the growth of the RSS's "
  "shared memory, where .NET keeps the code it compiles (mapped twice, for W^X); it is paid once, by the first clients down a path, "
  "not by each."]
if second_size:
    lines += ["", f"\"Each never-reader past the first {readers}\": {second_size} never-readers against a fresh proxy, the same way; the "
      f"slope between the two (RSS with {second_size} minus RSS with {readers}, over {second_size - int(readers)}) is what each further "
      "never-reader costs, without what the first wave pays once (compiled code, the collector's and the pools' first growth). Only for "
      "the policies that keep every never-reader open (`DropMessages` closes a never-reader once it has dropped too much, "
      "`Disconnect` after 10 s)."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
