#!/usr/bin/env bash
# Publishes the gateway as a native AOT executable, for the benchmarks' AOT contender (bench/storm.sh's AOT_EXE,
# GATEWAY_EXE for the WebSocket benchmarks): an experiment, not what the image ships (docs/performance-history.md,
# "Native AOT").
#   bench/aot.sh [DIR]   (default /tmp/yarpgateway-aot; the executable is DIR/YarpGateway; about 2 minutes)
# The gateway's configuration checks read option types by reflection, which the trimmer cannot follow: when PublishAot
# is set, YarpGateway.csproj keeps the gateway's assembly and YARP's whole, and their trim and AOT analysis warnings
# are not errors here. Such a build starts, proxies and checks its configuration, but the test suite runs on the JIT
# build only.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/yarpgateway-aot}
source bench/lib.sh
install_missing clang=clang # the native linker's driver
dotnet publish src/YarpGateway -c Release -r linux-x64 -p:PublishAot=true \
  -p:TreatWarningsAsErrors=false -p:MSBuildTreatWarningsAsErrors=false --nologo -v q -o "$DIR" >/dev/null
echo "$DIR/YarpGateway"
