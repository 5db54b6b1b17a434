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

# wait_ready URL SECONDS: until URL answers 2xx, polling every 0.1 s; fails (status 1) after SECONDS.
wait_ready() {
  for _ in $(seq $(( $2 * 10 ))); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "not ready: $1" >&2; return 1
}
