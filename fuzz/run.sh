#!/bin/sh
# Runs fuzz targets one after another, each until 10M executions or a time limit.
# Usage: fuzz/run.sh [seconds per target] [target...]   (default: 600 s, every target)
# Needs the nightly toolchain and cargo-fuzz (see docs/fuzzing.md). Logs go to
# fuzz/logs/<target>.log; the corpus grows in fuzz/corpus/<target>, crashes land in
# fuzz/artifacts/<target>.
set -eu
cd "$(dirname "$0")"
secs=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-"frames block credential repl_message signal invitation json_add merge_patch yjs"}
mkdir -p logs
nice -n 10 cargo +nightly fuzz build -s none
for t in $targets; do
    mkdir -p "corpus/$t"
    case $t in json_add | merge_patch) dict="-dict=dict/json.dict" ;; *) dict="" ;; esac
    nice -n 19 cargo +nightly fuzz run -s none "$t" "corpus/$t" -- \
        -runs=10000000 -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
        $dict >"logs/$t.log" 2>&1 || echo "$t: fuzzer exited with an error, see logs/$t.log"
    tail -n 12 "logs/$t.log" | grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|Done|DEATH|panicked' || true
done
