#!/bin/sh
# Run every test binary given on the command line, print each one's cmocka
# output, and close with one "N passed, N failed" line over all test cases.
# Exits non-zero if any binary failed (a crash counts as a failure).  The
# end of each failing binary's output is repeated just before the summary,
# so that a log read from its tail shows why.
#
# Integration tests find the coordinator through SUTRA_COORDINATOR and the
# build directory through SUTRA_BUILD.
set -u
BUILD=${BUILD:-build}
export SUTRA_COORDINATOR="${SUTRA_COORDINATOR:-$BUILD/bin/sutra-coordinator}"
export SUTRA_BUILD="$BUILD"
passed=0
failed=0
bad_binaries=""
log=$(mktemp)
failures=$(mktemp)
trap 'rm -f "$log" "$failures"' EXIT
for t in "$@"; do
    echo "== $t"
    start=$(date +%s)
    "$t" >"$log" 2>&1
    rc=$?
    cat "$log"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        failed=$((failed + 1))   # crashed or exited early: count it
    fi
    if [ "$rc" -ne 0 ]; then
        bad_binaries="$bad_binaries $t"
        { echo "== $t (exit $rc), last 40 lines:"; tail -n 40 "$log"; } >>"$failures"
    fi
    echo "== $t: exit $rc in $(( $(date +%s) - start ))s"
done
echo
if [ -n "$bad_binaries" ]; then
    cat "$failures"
    echo
    echo "failing binaries:$bad_binaries"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ -z "$bad_binaries" ]
