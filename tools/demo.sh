#!/bin/sh
# `make run`: start a coordinator on ./data, write a few concepts from one
# process, read them zero-copy from another, stop the coordinator cleanly.
set -eu
BUILD=${BUILD:-build}
DATA=${SUTRA_DATA:-./data}
BIN="$BUILD/bin"
mkdir -p "$DATA"
echo "== starting sutra-coordinator on $DATA (log: $DATA/coordinator.log)"
"$BIN/sutra-coordinator" "$DATA" 2>>"$DATA/coordinator.log" &
coord=$!
trap 'kill -TERM $coord 2>/dev/null || true' EXIT

# True while process $1 runs (an exited child stays a zombie until waited
# for, and kill -0 succeeds on zombies, so read its state instead).
running() {
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -n "$state" ] && [ "$state" != Z ]
}

# Wait for the coordinator to answer, unless it exits first: then say why,
# from its log (a data directory it cannot open, say), instead of waiting
# for the ping to give up.
"$BIN/sutra-demo" ping "$DATA" &
pinger=$!
while running "$pinger" && running "$coord"; do
    sleep 0.1
done
if ! running "$coord"; then
    kill "$pinger" 2>/dev/null || true
    wait "$pinger" 2>/dev/null || true
    echo "== the coordinator exited; the end of $DATA/coordinator.log:" >&2
    tail -n 5 "$DATA/coordinator.log" >&2
    exit 1
fi
wait "$pinger"
echo "== writing from one process"
out=$("$BIN/sutra-demo" write "$DATA")
echo "$out" | grep -v '^GENERATION='
gen=$(echo "$out" | sed -n 's/^GENERATION=//p')
echo "== reading from another process (mmap, read-only)"
"$BIN/sutra-demo" read "$DATA" "$gen"
echo "== stopping the coordinator (SIGTERM)"
kill -TERM "$coord"
status=0
wait "$coord" || status=$?
trap - EXIT
echo "coordinator exited with status $status"
tail -n 3 "$DATA/coordinator.log"
exit "$status"
