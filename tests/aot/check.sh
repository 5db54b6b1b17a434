#!/usr/bin/env bash
# The native AOT build (bench/aot.sh), checked against the JIT build the tests run on. CI runs it after the test run.
#   tests/aot/check.sh [CONFIGURATION]   (Debug by default, as CI builds; the solution must be built; about 6 minutes)
# 1. Publishes it with trim and AOT analysis warnings as errors: a new reflection the trimmer cannot follow fails here.
# 2. Gives the same bad value of every key in tests/aot/keys.txt (and each shipped configuration file) to --check on both
#    builds; the answers (exit code and text) must be the same. The configuration checks read option types by
#    reflection, and what a trimmed build keeps of them is what src/YarpGateway/Configuration/KeptForReflection.cs says.
# 3. Runs every test that starts the gateway as a process (GatewayProcess) against the AOT executable (GATEWAY_TEST_EXE).
# The last line is "aot: N differences, N failed tests"; the exit code is 1 if either is not 0.
set -uo pipefail
cd "$(dirname "$0")/../.."
configuration=${1:-Debug}
work=$(mktemp -d /tmp/yarpgateway-aot-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # a test runs the gateway as nobody

if ! command -v clang >/dev/null 2>&1; then # the native linker's driver
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang >/dev/null
fi

echo "== aot: publish (trim and AOT warnings are errors)"
if ! dotnet publish src/YarpGateway -c Release -r linux-x64 -p:PublishAot=true --nologo -v q -o "$work/aot"; then
  echo "aot: the native AOT publish failed"
  exit 1
fi
aot="$work/aot/YarpGateway"
jit="$PWD/src/YarpGateway/bin/$configuration/net10.0/YarpGateway.dll"
[ -f "$jit" ] || { echo "aot: no JIT build at $jit (build the solution first)"; exit 1; }

# What --check answers, with each build's own directory written the same.
answer() {
  local out="$work/out.$BASHPID" # this shell's: the two builds answer at once
  ASPNETCORE_ENVIRONMENT=Production DOTNET_ENVIRONMENT=Production timeout 30 "$@" > "$out" 2>&1
  echo "exit $?"
  sed -e "s#$work/aot/#BIN/#g" -e "s#$(dirname "$jit")/#BIN/#g" "$out" | grep -v '^ *at '
}
differences=0
compare() { # label, arguments
  local label=$1; shift
  answer "$aot" "$@" > "$work/a" & answer dotnet "$jit" "$@" > "$work/j"; wait
  if ! cmp -s "$work/a" "$work/j"; then
    differences=$((differences + 1))
    echo "-- differs: $label"
    diff "$work/a" "$work/j" | head -n 8
  fi
}

echo "== aot: --check, bad values"
base="$work/base.json"
printf '{ "ReverseProxy": { "Routes": { "all": { "ClusterId": "b", "Match": { "Path": "{**catch-all}" } } }, "Clusters": { "b": { "Destinations": { "d": { "Address": "http://127.0.0.1:9/" } } } } } }' > "$base"
keys=0
while read -r key; do
  [[ -z "$key" || "$key" == \#* ]] && continue
  keys=$((keys + 1))
  for value in x -1; do
    compare "$key=$value" --check --config "$base" "--$key=$value"
  done
done < tests/aot/keys.txt
echo "$keys keys, 2 values each"

echo "== aot: --check, shipped configuration files"
for file in appsettings/appsettings.Development.json deploy/kubernetes/appsettings.Production.json deploy/kubernetes/examples/*.json bench/*.json; do
  [ -f "$file" ] && compare "$file" --check --config "$PWD/$file"
done

echo "== aot: the tests that start the gateway as a process, against the AOT build"
filter=$(grep -rl 'GatewayProcess\.Start' tests/YarpGateway.Tests --include='*.cs' | xargs -n1 basename -s .cs | sed 's/^/FullyQualifiedName~./; s/$/./' | paste -sd'|')
GATEWAY_TEST_EXE="$aot" timeout 1200 dotnet test tests/YarpGateway.Tests --no-build -c "$configuration" --filter "$filter" < /dev/null > "$work/tests.log" 2>&1
grep -E '^\s+Failed |^(Passed|Failed)!' "$work/tests.log" || tail -n 20 "$work/tests.log"
# Each failure's message (up to its stack trace), since $work goes with the log when this script ends.
awk '/^  Failed /{show=1; n=0} /^  Stack Trace:/{show=0} show && n++ < 40' "$work/tests.log"
failed=$(sed -nE 's/.*Failed: +([0-9]+).*/\1/p' "$work/tests.log" | tail -n 1)
grep -qE '^(Passed|Failed)!' "$work/tests.log" || failed=${failed:-1}

echo "aot: $differences differences, ${failed:-0} failed tests"
[[ "$differences" -eq 0 && "${failed:-0}" -eq 0 ]]
