#!/usr/bin/env bash
# bench/fsyncs.sh: fsyncs per write request, a load-independent measure of the write path.
#
# Starts scimd under `strace -f -c -e trace=fsync,fdatasync` on an existing database, drives one
# wrk scenario of bench/scimd.lua against it, stops scimd and prints the number of requests
# acknowledged, the number of fsync/fdatasync calls and their ratio, and scimd's CPU time per
# request (user + system, start-up included). strace (--seccomp-bpf) stops only at the
# traced calls; it still slows each of them, so the rate it prints is not a benchmark figure; the ratio is what this is for.
#
#   SCIMD_BIN=build-release/scimd DB=/tmp/bwork/bench-100000.db N=100000 \
#       SCENARIO=create DURATION=5 bench/fsyncs.sh
#
# Environment: SCIMD_BIN, DB (required), N (users 1..N in DB, as bench/gen made them),
# SCENARIO (create, patch-user, group-add, group-remove, entra-cycle), GROUP (group id for
# group-*; default bench-10), DURATION (s), CONNECTIONS (16), SERVER_THREADS (8), SYNC (full).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
: "${SCIMD_BIN:?}" "${DB:?}"
N=${N:-10000}
SCENARIO=${SCENARIO:-create}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-16}
SERVER_THREADS=${SERVER_THREADS:-8}
SYNC=${SYNC:-full}
SPARE=$((N < 10000 ? N : 10000))
GROUP=${GROUP:-$(printf '%08x-0000-4000-9000-%012x' 2 2)}
SCIMCTL_BIN=${SCIMCTL_BIN:-$(dirname "$SCIMD_BIN")/scimctl}
TMP=$(mktemp -d /tmp/scimd-fsyncs.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

TOKEN=$("$SCIMCTL_BIN" --db "$DB" token create --name "fsyncs-$RANDOM$RANDOM")
strace -f --seccomp-bpf -c -o "$TMP/strace.txt" -e trace=fsync,fdatasync \
    "$SCIMD_BIN" --listen 127.0.0.1:0 --db "$DB" --threads "$SERVER_THREADS" --sqlite-sync "$SYNC" \
    >"$TMP/out" 2>"$TMP/log" &
PID=$!
PORT=
for _ in $(seq 1 300); do
    PORT=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$TMP/out")
    [ -n "$PORT" ] && break
    sleep 0.1
done
[ -n "$PORT" ] || { echo "scimd did not start" >&2; cat "$TMP/log" >&2; exit 1; }
BENCH_SCENARIO=$SCENARIO BENCH_TOKEN=$TOKEN BENCH_PREFIX=/scim/v2 BENCH_N=$N BENCH_SPARE=$SPARE \
    BENCH_GROUP=$GROUP BENCH_RUN="$RANDOM$RANDOM" BENCH_OUT=$TMP/wrk.json \
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s -s "$SRC/bench/scimd.lua" \
    "http://127.0.0.1:$PORT" >"$TMP/wrk.txt" 2>&1
# scimd's CPU time (user + system, clock ticks) over its whole life, start-up included
CHILD=$(pgrep -P "$PID" | head -1)
ticks=$(awk '{print $14 + $15}' "/proc/$CHILD/stat")
kill -TERM "$CHILD" # scimd itself: strace writes its summary when its tracee exits
wait "$PID" 2>/dev/null || true
PID=
requests=$(grep -o '"requests":[0-9]*' "$TMP/wrk.json" | cut -d: -f2)
errors=$(grep -o '"errors":[0-9]*' "$TMP/wrk.json" | cut -d: -f2)
syncs=$(awk '$NF == "fsync" || $NF == "fdatasync" {s += $4} END {print s + 0}' "$TMP/strace.txt")
echo "{\"scenario\":\"$SCENARIO\",\"sync\":\"$SYNC\",\"requests\":$requests,\"errors\":$errors,\"fsyncs\":$syncs,\"fsyncs_per_request\":$(awk -v s="$syncs" -v r="$requests" 'BEGIN {printf "%.3f", r ? s / r : 0}'),\"cpu_s\":$(awk -v t="$ticks" -v h="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / h}'),\"cpu_ms_per_request\":$(awk -v t="$ticks" -v h="$(getconf CLK_TCK)" -v r="$requests" 'BEGIN {printf "%.3f", r ? 1000 * t / h / r : 0}'),\"loadavg\":[$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)]}"
