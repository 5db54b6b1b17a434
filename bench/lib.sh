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
