#!/usr/bin/env bash
# bench/run.sh: the scimd benchmark driver (`make bench`). See bench/README.md.
#
# For each N: generate N users (+ spare users and 4 groups) with bench/gen, load them with
# `scimctl import`, start scimd, then drive each scenario over loopback with wrk and
# bench/scimd.lua. The transport ceiling (bench/ceiling.c, same MHD options as scimd) is measured
# in the same run. Results: one JSON object per scenario in $OUT/<backend>-<N>.json.
#
# Environment (all optional):
#   N="10000 100000 1000000"  directory sizes          DURATION=10   seconds per scenario
#   THREADS=2 CONNECTIONS=16  wrk settings             SERVER_THREADS=8  scimd --threads
#   SCENARIOS="..."           subset (names below)     OUT=bench/results
#   BACKEND=sqlite|postgresql DB=URI (postgresql: an EMPTY database; sqlite: a file per N in WORK)
#   SCIMD_BIN, SCIMCTL_BIN    use these binaries (default: build the release tree build-release)
#   WORK=dir                  scratch (generated files, databases, logs); default a temp dir
#   REUSE_DB=1                keep an existing SQLite database in WORK (no import; results are
#                             appended to a fresh file all the same)
#   EXPORT_LIMIT_S=0          stop the full export after this many seconds (0: never)
#   SMOKE=1                   ctest smoke: N=200, 1 s per scenario; fails on any error
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
    N=${N:-200}
    DURATION=${DURATION:-1}
    CONNECTIONS=${CONNECTIONS:-4}
fi
N=${N:-"10000 100000 1000000"}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
SERVER_THREADS=${SERVER_THREADS:-8}
BACKEND=${BACKEND:-sqlite}
OUT=${OUT:-$SRC/bench/results}
ALL_SCENARIOS="ceiling lookup page group-get patch-user group-add group-remove entra-cycle create create-normal export"
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
PREFIX=/scim/v2
PORT=

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools --------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    log "wrk is missing; installing the Debian package"
    if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null || true
    elif command -v sudo >/dev/null; then sudo apt-get install -y wrk >/dev/null || true; fi
    command -v wrk >/dev/null 2>&1 || { log "wrk is not available; skipping"; exit 77; }
fi
command -v curl >/dev/null || die "curl is needed"
CC=${CC:-cc}

WORK=${WORK:-$(mktemp -d /tmp/scimd-bench.XXXXXX)}
mkdir -p "$WORK" "$OUT"
SERVER_PID= CEIL_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    [ -n "$CEIL_PID" ] && kill "$CEIL_PID" 2>/dev/null && wait "$CEIL_PID" 2>/dev/null
    [ "$SMOKE" = 1 ] && rm -rf "$WORK"
    return 0
}
trap cleanup EXIT

if [ -z "${SCIMD_BIN:-}" ]; then
    log "building the release tree (build-release: -O2 -g, no sanitizers, no tests)"
    cmake -S "$SRC" -B "$SRC/build-release" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSCIMD_TESTS=OFF \
        -DSCIMD_SANITIZE=OFF >/dev/null
    cmake --build "$SRC/build-release" -j "$(nproc)" >/dev/null
    SCIMD_BIN=$SRC/build-release/scimd
    SCIMCTL_BIN=$SRC/build-release/scimctl
fi
SCIMCTL_BIN=${SCIMCTL_BIN:-$(dirname "$SCIMD_BIN")/scimctl}
$CC -O2 -o "$WORK/gen" "$SRC/bench/gen.c"
# shellcheck disable=SC2046
$CC -O2 -o "$WORK/ceiling" "$SRC/bench/ceiling.c" $(pkg-config --cflags --libs libmicrohttpd)

# --- helpers -------------------------------------------------------------------------------
user_id()  { printf '%08x-0000-4000-8000-%012x' "$1" "$1"; }
group_id() { printf '%08x-0000-4000-9000-%012x' "$1" "$1"; }

db_uri() {
    if [ "$BACKEND" = sqlite ]; then echo "$WORK/bench-$1.db"; else echo "${DB:?DB=postgresql://... is needed}"; fi
}

db_bytes() {
    if [ "$BACKEND" = sqlite ]; then
        local f=$1 total=0
        for x in "$f" "$f-wal" "$f-shm"; do [ -f "$x" ] && total=$((total + $(stat -c %s "$x"))); done
        echo "$total"
    elif command -v psql >/dev/null; then
        psql "$1" -Atc "select pg_database_size(current_database())" 2>/dev/null || echo null
    else
        echo null
    fi
}

kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$SERVER_PID/status"; }

# Port 0: scimd picks a free port and prints it ("listening on http://127.0.0.1:PORT/..."), so
# runs never collide with other servers on the machine.
start_server() { # $1 db uri, $2 sync mode
    local out=$WORK/scimd.out
    : >"$out"
    "$SCIMD_BIN" --listen "127.0.0.1:0" --db "$1" --threads "$SERVER_THREADS" \
        --sqlite-sync "$2" >"$out" 2>>"$WORK/scimd.log" &
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        PORT=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$out")
        if [ -n "$PORT" ] && curl -s -o /dev/null "http://127.0.0.1:$PORT$PREFIX/ServiceProviderConfig"; then
            BASE=http://127.0.0.1:$PORT
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    die "scimd did not start (see $WORK/scimd.log)"
}

free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 30000))
        ss -ltn 2>/dev/null | grep -q ":$p " || { echo "$p"; return; }
    done
    echo $((20000 + RANDOM % 30000))
}

stop_server() { # $1 signal
    kill "-$1" "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

api() { # method path [body] -> body on stdout; fails on non-2xx
    curl -sS -f -X "$1" -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/scim+json" \
        ${3:+--data "$3"} "http://127.0.0.1:$PORT$PREFIX$2"
}

total_results() { api GET "$1" | grep -o '"totalResults":[0-9]*' | head -1 | cut -d: -f2; }

# Appends one result line: the wrk JSON plus the run's context.
record() { # $1 wrk json line, $2 label, $3 extra json fields (starting with ,)
    local rss hwm db load
    rss=$(kib VmRSS) hwm=$(kib VmHWM)
    db=$(db_bytes "$DBURI")
    load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)
    echo "${1%\}},\"label\":\"$2\",\"n\":$n,\"backend\":\"$BACKEND\",\"rss_kib\":${rss:-null},\"hwm_kib\":${hwm:-null},\"db_bytes\":$db,\"loadavg\":[$load]${3:-}}" >>"$RESULT"
}

wrk_run() { # $1 scenario, $2 label, $3 url, [$4 group id]
    local tmp=$WORK/wrk.out
    rm -f "$tmp"
    BENCH_SCENARIO=$1 BENCH_TOKEN=$TOKEN BENCH_PREFIX=$PREFIX BENCH_N=$n BENCH_SPARE=$spare \
        BENCH_GROUP=${4:-} BENCH_RUN="$RANDOM$RANDOM" BENCH_OUT=$tmp \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s -s "$SRC/bench/scimd.lua" \
        "$3" >"$WORK/wrk-$2.txt" 2>&1 || die "wrk failed for $2 (see $WORK/wrk-$2.txt)"
    [ -s "$tmp" ] || die "no result from wrk for $2"
    local line
    line=$(cat "$tmp")
    LAST_REQUESTS=$(echo "$line" | grep -o '"requests":[0-9]*' | cut -d: -f2)
    local errs
    errs=$(echo "$line" | grep -o '"errors":[0-9]*' | cut -d: -f2)
    [ "$errs" = 0 ] || { log "$2: $errs errors"; ERRORS=$((ERRORS + errs)); }
    if [ -n "$SERVER_PID" ]; then record "$line" "$2" "${5:-}"; else
        echo "${line%\}},\"label\":\"$2\",\"n\":$n,\"loadavg\":[$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)]}" >>"$RESULT"
    fi
    log "$2: $(echo "$line" | grep -o '"rps":[0-9.]*\|"p50_ms":[0-9.]*\|"p99_ms":[0-9.]*\|"errors":[0-9]*' | tr '\n' ' ')"
}

ceiling() { # $1 label
    local CEIL_PORT
    for _ in 1 2 3 4 5; do
        CEIL_PORT=$(free_port)
        "$WORK/ceiling" "$CEIL_PORT" "$SERVER_THREADS" >/dev/null 2>&1 &
        CEIL_PID=$!
        sleep 0.3
        kill -0 "$CEIL_PID" 2>/dev/null && break # else the port was taken meanwhile: retry
        wait "$CEIL_PID" 2>/dev/null || true
    done
    TOKEN=none wrk_run lookup "$1" "http://127.0.0.1:$CEIL_PORT"
    kill "$CEIL_PID"; wait "$CEIL_PID" 2>/dev/null || true; CEIL_PID=
}

want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# Full export: cursor paging when the server offers it (RFC 9865 "cursor"), else startIndex.
export_all() {
    local start end pages=0 items=0 mode=index body next cursor="" idx=1
    if api GET "/Users?cursor=&count=1000&attributes=id" 2>/dev/null | grep -q '"nextCursor"'; then mode=cursor; fi
    # Per page: curl into a file and one grep (no subshell copies of the 0.7 MB body, no cut):
    # the first version spent ~180 ms per page of 1000 users in the shell (fork/exec of 5
    # processes, the body echoed twice) against ~100 ms in the server (BENCHMARKS.md "Read path").
    local page_file=$WORK/export-page.json fields got t0=$SECONDS
    start=$(date +%s.%N)
    local complete=true
    while :; do
        if [ "${EXPORT_LIMIT_S:-0}" -gt 0 ] && [ $((SECONDS - t0)) -ge "${EXPORT_LIMIT_S:-0}" ]; then
            complete=false
            break
        fi
        if [ $mode = cursor ]; then api GET "/Users?cursor=$cursor&count=1000" >"$page_file" || die "export page failed"
        else api GET "/Users?startIndex=$idx&count=1000" >"$page_file" || die "export page failed"; fi
        fields=$(grep -o -E '"(itemsPerPage":[0-9]+|nextCursor":"[^"]*")' "$page_file" || true)
        got=${fields#*\"itemsPerPage\":}
        got=${got%%[!0-9]*}
        pages=$((pages + 1)); items=$((items + ${got:-0}))
        if [ $mode = cursor ]; then
            next=
            if [[ $fields == *'"nextCursor":"'* ]]; then next=${fields#*\"nextCursor\":\"}; next=${next%%\"*}; fi
            [ -n "$next" ] || break
            cursor=$next
        else
            [ "${got:-0}" -gt 0 ] || break
            idx=$((idx + got))
        fi
    done
    end=$(date +%s.%N)
    local secs
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')
    log "export ($mode paging, 1000 per page): $items users in $pages pages, $secs s (complete: $complete)"
    record "{\"scenario\":\"export\",\"complete\":$complete,\"mode\":\"$mode\",\"pages\":$pages,\"items\":$items,\"duration_s\":$secs,\"rps\":$(awk -v i="$items" -v s="$secs" 'BEGIN {printf "%.1f", i / s}'),\"errors\":0}" "export"
}

# --- the runs --------------------------------------------------------------------------------
ERRORS=0
log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo); wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s"
for n in $N; do
    spare=$((n < 10000 ? n : 10000))
    RESULT=$OUT/$BACKEND-$n.json
    [ "$SMOKE" = 1 ] && RESULT=$WORK/smoke.json
    : >"$RESULT"
    DBURI=$(db_uri "$n")
    reuse=0
    if [ "${REUSE_DB:-0}" = 1 ] && [ "$BACKEND" = sqlite ] && [ -s "$DBURI" ]; then reuse=1
    elif [ "$BACKEND" = sqlite ]; then rm -f "$DBURI" "$DBURI-wal" "$DBURI-shm"; fi
    : >"$WORK/scimd.log"

    want ceiling && ceiling ceiling

    JSONL=$WORK/dir-$n.jsonl
    [ -s "$JSONL" ] || "$WORK/gen" "$n" "$spare" >"$JSONL"
    if [ $reuse = 0 ]; then
        log "N=$n: importing $(wc -l <"$JSONL") lines ($(du -h "$JSONL" | cut -f1)) into $BACKEND"
        t0=$(date +%s.%N)
        "$SCIMCTL_BIN" --db "$DBURI" import "$JSONL" >"$WORK/import.txt" || die "import failed: $(cat "$WORK/import.txt")"
        t1=$(date +%s.%N)
        import_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
        log "N=$n: $(cat "$WORK/import.txt") (wall $import_s s)"
        echo "{\"scenario\":\"import\",\"label\":\"import\",\"n\":$n,\"backend\":\"$BACKEND\",\"lines\":$(wc -l <"$JSONL"),\"duration_s\":$import_s,\"db_bytes\":$(db_bytes "$DBURI"),\"errors\":0}" >>"$RESULT"
    else
        log "N=$n: reusing $DBURI (REUSE_DB=1)"
    fi
    TOKEN=$("$SCIMCTL_BIN" --db "$DBURI" token create --name "bench-$RANDOM$RANDOM")
    start_server "$DBURI" full

    big=$n; [ "$n" -gt 10000 ] || big=
    want lookup && wrk_run lookup lookup "$BASE"
    want page && wrk_run page page "$BASE"
    if want group-get; then
        wrk_run group-get "group-get[0]" "$BASE" "$(group_id 1)"
        [ -n "$big" ] && wrk_run group-get "group-get[$n]" "$BASE" "$(group_id 4)"
    fi
    want patch-user && wrk_run patch-user patch-user "$BASE"
    for g in 2 3 4; do
        [ $g = 4 ] && [ -z "$big" ] && continue
        size=$([ $g = 2 ] && echo 10 || { [ $g = 3 ] && echo $((n < 10000 ? n : 10000)) || echo "$n"; })
        want group-add && wrk_run group-add "group-add[$size]" "$BASE" "$(group_id $g)"
        want group-remove && wrk_run group-remove "group-remove[$size]" "$BASE" "$(group_id $g)"
    done
    want entra-cycle && wrk_run entra-cycle entra-cycle "$BASE"
    for mode in full normal; do
        label=create; [ $mode = normal ] && label=create-normal
        want $label || continue
        if [ $mode = normal ]; then stop_server TERM; start_server "$DBURI" normal; fi
        before=$(total_results "/Users?count=0")
        wrk_run create "$label" "$BASE"
        acked=$LAST_REQUESTS
        # Durability: kill -9 right after the load, restart, and count. Every acknowledged
        # create must be there (requests still in flight when wrk stopped may add a few more).
        stop_server KILL
        start_server "$DBURI" $mode
        after=$(total_results "/Users?count=0")
        survived=$((after - before))
        ok=true; [ "$survived" -ge "$acked" ] || { ok=false; ERRORS=$((ERRORS + 1)); log "$label: only $survived of $acked acknowledged creates survived kill -9"; }
        log "$label: kill -9 then restart: $survived users added, $acked acknowledged (sync=$mode)"
        sed -i '$ s/}$/,"sync":"'$mode'","kill9_acked":'"$acked"',"kill9_present":'"$survived"',"kill9_ok":'$ok'}/' "$RESULT"
        if [ $mode = normal ]; then stop_server TERM; start_server "$DBURI" full; fi
    done
    want export && export_all
    stop_server TERM
    # again at the end: on a shared machine the ceiling moves; BENCHMARKS.md shows both
    want ceiling && ceiling ceiling-end
    log "N=$n: results in $RESULT"
    [ "$SMOKE" = 1 ] && cat "$RESULT" >&2
done
[ "$ERRORS" = 0 ] || die "$ERRORS errors"
log "done, 0 errors"
