#!/bin/sh
# run_fuzz.sh - run one libFuzzer harness for a while and report its speed.
#
#   run_fuzz.sh BINARY NAME SOURCE_DIR WORK_DIR [SECONDS]
#
# $FUZZ_SECONDS, when set, overrides SECONDS (default 20). The harness first replays
# every regression input (tests/fuzz/regress/NAME/), then fuzzes with a
# writable copy of the seed corpus (WORK_DIR/corpus/NAME, new inputs land
# there, never in the source tree) and the seeds (tests/fuzz/corpus/NAME).
# Crashes are written to WORK_DIR/crashes/NAME/: copy each into
# tests/fuzz/regress/NAME/ once fixed. The last line is
#   fuzz harness=NAME seconds=S runs=N execs_per_s=E result=ok|crash
# and the same line is appended to WORK_DIR/fuzz-stats.txt.
set -u
bin=$1 name=$2 src=$3 work=$4
secs=${FUZZ_SECONDS:-${5:-20}}
seeds=$src/tests/fuzz/corpus/$name
regress=$src/tests/fuzz/regress/$name
corpus=$work/corpus/$name
crashes=$work/crashes/$name
log=$work/logs/$name.log
mkdir -p "$corpus" "$crashes" "$work/logs"

if [ -d "$regress" ] && [ -n "$(ls -A "$regress" 2>/dev/null)" ]; then
    if ! "$bin" -runs=0 "$regress"/* >"$log.regress" 2>&1; then
        tail -n 40 "$log.regress"
        echo "fuzz harness=$name seconds=0 runs=0 execs_per_s=0 result=regression"
        exit 1
    fi
fi

"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$crashes/" "$corpus" "$seeds" >"$log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
result=ok
if [ $rc -ne 0 ]; then
    result=crash
    tail -n 60 "$log"
fi
line="fuzz harness=$name seconds=$secs runs=${runs:-0} execs_per_s=${eps:-0} result=$result"
echo "$line"
echo "$line" >>"$work/fuzz-stats.txt"
[ $rc -eq 0 ]
