#!/usr/bin/env bash
# Fuzzes one target of fuzz/R1Sharp.Fuzz with AFL++ (Debian: apt install afl++) for a fixed time:
#   scripts/fuzz.sh TARGET SECONDS [FINDINGS_DIR]      (targets: dotnet run --project fuzz/R1Sharp.Fuzz -- --list)
# It publishes the fuzz program once into artifacts/fuzz/bin, instruments R1Sharp.Core and R1Sharp.Server with
# SharpFuzz (the sharpfuzz tool of dotnet-tools.json), runs afl-fuzz from the committed seeds fuzz/corpus/TARGET,
# then prints the executions, the crashes and hangs found, and replays each crash to show its exception.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then echo "usage: scripts/fuzz.sh TARGET SECONDS [FINDINGS_DIR]" >&2; exit 2; fi
target=$1 seconds=$2 out=${3:-artifacts/fuzz/findings/$1}
command -v afl-fuzz >/dev/null || { echo "error: afl-fuzz not found (Debian/Ubuntu: apt install afl++)" >&2; exit 1; }
[ -d "fuzz/corpus/$target" ] || { echo "error: no seed corpus fuzz/corpus/$target" >&2; exit 2; }

bin=artifacts/fuzz/bin
stamp=$bin/.instrumented
if [ ! -f "$stamp" ] || [ -n "$(find src fuzz -name '*.cs' -newer "$stamp" -print -quit)" ]; then
    rm -rf "$bin"
    dotnet tool restore >/dev/null
    dotnet publish fuzz/R1Sharp.Fuzz -c Release -o "$bin" --nologo -v quiet >/dev/null
    for dll in R1Sharp.Core.dll R1Sharp.Server.dll; do dotnet tool run sharpfuzz "$bin/$dll" >/dev/null; done
    touch "$stamp"
fi

dicts=()
case $target in
    request|json-schema) dicts=(-x fuzz/dict/json.dict) ;;
    reasoning|chat-template|tokenizer|gbnf) dicts=(-x fuzz/dict/text.dict) ;;
esac
mkdir -p "$out"
# dotnet is not an AFL-instrumented binary (SharpFuzz reports coverage from the managed code); a shared machine may
# refuse CPU pinning; AFL's crash detection does not need core dumps here (SharpFuzz reports exceptions itself)
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_AUTORESUME=1
afl-fuzz -i "fuzz/corpus/$target" -o "$out" -t 10000 -m none -V "$seconds" "${dicts[@]}" -- dotnet "$bin/R1Sharp.Fuzz.dll" "$target" > "$out/afl.log" 2>&1 || {
    echo "error: afl-fuzz failed; the end of its log ($out/afl.log):" >&2; tail -20 "$out/afl.log" >&2; exit 1; }

stats=$out/default/fuzzer_stats
get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
crashes=$(find "$out/default/crashes" -name 'id:*' 2>/dev/null | wc -l)
hangs=$(find "$out/default/hangs" -name 'id:*' 2>/dev/null | wc -l)
echo "$target: $(get execs_done) executions in $(get run_time) s ($(get execs_per_sec)/s), corpus $(get corpus_count), edges $(get edges_found), crashes $crashes, hangs $hangs"
if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
    # the uninstrumented build replays them: each input's exception (or hang) with its file
    dotnet build fuzz/R1Sharp.Fuzz -c Release --nologo -v quiet >/dev/null
    dotnet fuzz/R1Sharp.Fuzz/bin/Release/net10.0/R1Sharp.Fuzz.dll "$target" "$out/default/crashes" "$out/default/hangs" || true
fi
