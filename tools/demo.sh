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
"$BIN/sutra-demo" ping "$DATA"
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
