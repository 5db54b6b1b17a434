#!/usr/bin/env bash
# Publishes the gateway as a native AOT executable, for the benchmarks' AOT contender (bench/storm.sh's AOT_EXE,
# GATEWAY_EXE for the WebSocket benchmarks), as deploy/Dockerfile.aot builds it; the default image is the JIT build
# (docs/performance-history.md, "Native AOT").
#   bench/aot.sh [DIR]   (default /tmp/yarpgateway-aot; the executable is DIR/YarpGateway; about 2 minutes)
# The gateway's configuration checks read option types by reflection: what a trimmed build must keep of them is kept
# (src/YarpGateway/Configuration/KeptForReflection.cs), and trim and AOT analysis warnings are errors here as everywhere.
# CI checks such a build against the JIT one (tests/aot/check.sh): --check's answers, and the tests that start the
# gateway as a process.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/yarpgateway-aot}
source bench/lib.sh
install_missing clang=clang # the native linker's driver
dotnet publish src/YarpGateway -c Release -r linux-x64 -p:PublishAot=true --nologo -v q -o "$DIR" >/dev/null
echo "$DIR/YarpGateway"
