#!/usr/bin/env bash
# bench/all.sh: `make bench`. bench/run.sh on SQLite, then on PostgreSQL: a durable cluster
# (fsync and synchronous_commit on; scripts/pg-test-cluster.sh with SCIMD_PG_DURABLE=1, in its
# own directory) with one empty database per size, stopped at the end.
#
# Environment: BACKENDS="sqlite postgresql" (default both); N, DURATION, SCENARIOS, OUT, WORK
# and the other knobs of bench/run.sh are passed through.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BACKENDS=${BACKENDS:-"sqlite postgresql"}
N=${N:-"10000 100000 1000000"}
export WORK=${WORK:-$(mktemp -d /tmp/scimd-bench.XXXXXX)}
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

for backend in $BACKENDS; do
    case $backend in
    sqlite)
        N="$N" "$SRC/bench/run.sh"
        ;;
    postgresql)
        export SCIMD_PG_CLUSTER=${SCIMD_PG_BENCH_CLUSTER:-/tmp/scimd-pg-bench-$(id -u)}
        "$SRC/scripts/pg-test-cluster.sh" stop >/dev/null 2>&1 || true
        admin=$(SCIMD_PG_DURABLE=1 "$SRC/scripts/pg-test-cluster.sh" start)
        trap '"$SRC/scripts/pg-test-cluster.sh" stop >/dev/null 2>&1 || true' EXIT
        log "PostgreSQL cluster (durable settings): ${admin%/*}"
        for n in $N; do
            psql -q -d "$admin" -c "DROP DATABASE IF EXISTS bench$n" -c "CREATE DATABASE bench$n"
            BACKEND=postgresql DB="${admin%/*}/bench$n" N=$n "$SRC/bench/run.sh"
        done
        "$SRC/scripts/pg-test-cluster.sh" stop
        trap - EXIT
        ;;
    *)
        log "unknown backend $backend"
        exit 2
        ;;
    esac
done
