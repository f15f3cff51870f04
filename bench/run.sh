#!/bin/sh
# Run every benchmark binary given on the command line, show its tables, keep
# the whole output in $BUILD/bench-results.txt, and close with the summary
# lines of every benchmark (ratio, target, met or MISSED).
#
# Exits non-zero only if a benchmark failed to run (crashed, or exited
# non-zero because a step of the experiment failed).  A missed target is a
# measurement, not a failure.
#
# Knobs (read by the binaries): SUTRA_BENCH_QUICK=1 for a seconds-long smoke
# run, SUTRA_BENCH_REPEAT, SUTRA_BENCH_N, SUTRA_BENCH_LOOKUPS,
# SUTRA_BENCH_OPENS, SUTRA_BENCH_OPS, SUTRA_BENCH_DURABLE_OPS,
# SUTRA_BENCH_BATCHES, SUTRA_BENCH_DATA (where the read data set is kept).
set -u
BUILD=${BUILD:-build}
export BUILD
export SUTRA_COORDINATOR="${SUTRA_COORDINATOR:-$BUILD/bin/sutra-coordinator}"
results="$BUILD/bench-results.txt"
mkdir -p "$BUILD"
status=$(mktemp)
trap 'rm -f "$status"' EXIT

{
    echo "Sutra benchmarks, $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(uname -n)"
    echo "$(nproc) cores; $(uname -sr); quick=${SUTRA_BENCH_QUICK:-0}" \
         "repeat=${SUTRA_BENCH_REPEAT:-default}"
} | tee "$results"

failed=""
for b in "$@"; do
    echo | tee -a "$results"
    echo "#### $b" | tee -a "$results"
    start=$(date +%s)
    # the exit status of the benchmark, not of tee
    { "$b" 2>&1; echo $? >"$status"; } | tee -a "$results"
    rc=$(cat "$status")
    echo "#### $b: exit $rc in $(( $(date +%s) - start ))s" | tee -a "$results"
    [ "$rc" -ne 0 ] && failed="$failed $(basename "$b")"
done

{
    echo
    echo "==== summary (ratio = sutra / peer unless the metric says otherwise)"
    grep '^summary:' "$results" | sed 's/^summary: //'
    if [ -n "$failed" ]; then
        echo "benchmarks that failed to run:$failed"
    else
        echo "all $# benchmarks ran"
    fi
    echo "full output: $results"
} > "$status.summary"
tee -a "$results" < "$status.summary"
rm -f "$status.summary"
[ -z "$failed" ]
