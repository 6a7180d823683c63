#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite.
# Usage: scripts/pg-test-cluster.sh start|stop|restart|url|status
#   start    installs postgresql (Debian) when missing, creates and starts a cluster in a
#            temporary directory (unix socket there + a free TCP port on 127.0.0.1) and prints
#            its admin URL (postgresql://postgres@127.0.0.1:PORT/postgres)
#   stop     stops the cluster and removes its directory
#   restart [SECONDS]  pg_ctl restart; with SECONDS, stop, stay down that long, then start
#            (the failure-handling test uses it to make an outage)
#   url      prints the URL of the running cluster
# The cluster directory is $SCIMD_PG_CLUSTER, by default /tmp/scimd-pg-<uid>-<hash of this
# checkout>, so several checkouts on one machine each get their own cluster.
# SCIMD_PG_DURABLE=1 at start: fsync, synchronous_commit and full_page_writes on (PostgreSQL's
# defaults) instead of off, shared_buffers 256MB: what bench/all.sh measures.
# PostgreSQL refuses to run as root: as root the cluster runs as the user `scimd-test`
# (created with useradd when missing; `nobody` when that fails).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${SCIMD_PG_CLUSTER:-${TMPDIR:-/tmp}/scimd-pg-$(id -u)-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)}
DATA="$DIR/data"

pgbin() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    done
    return 1
}

ensure_installed() {
    pgbin >/dev/null && return 0
    echo "pg-test-cluster: installing postgresql" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    pgbin >/dev/null
}

# The user the server runs as, and a way to run a command as that user.
RUNAS=()
pick_user() {
    if [ "$(id -u)" -ne 0 ]; then RUNAS=(); PGUSER_OS=$(id -un); return; fi
    if ! id scimd-test >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin scimd-test >/dev/null 2>&1 || true
    fi
    if id scimd-test >/dev/null 2>&1; then PGUSER_OS=scimd-test; else PGUSER_OS=nobody; fi
    RUNAS=(runuser -u "$PGUSER_OS" --)
}

free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    return 1
}

url() {
    [ -f "$DIR/port" ] || { echo "pg-test-cluster: no cluster in $DIR" >&2; return 1; }
    echo "postgresql://postgres@127.0.0.1:$(cat "$DIR/port")/postgres"
}

running() {
    local bin
    bin=$(pgbin) || return 1
    [ -f "$DATA/postmaster.pid" ] && pick_user && "${RUNAS[@]}" "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

start() {
    ensure_installed
    local bin
    bin=$(pgbin)
    pick_user
    if running; then url; return 0; fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    [ -n "${RUNAS[*]}" ] && chown "$PGUSER_OS" "$DIR"
    # /tmp-like parents must be traversable by the server's user
    "${RUNAS[@]}" "$bin/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$DIR/initdb.log" 2>&1 || "${RUNAS[@]}" "$bin/initdb" -D "$DATA" -U postgres --auth=trust \
        -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; return 1; }
    # a test cluster: durability off for speed, room for many test databases and pools;
    # SCIMD_PG_DURABLE=1 (the benchmarks): PostgreSQL's durable defaults, a bigger cache
    local durable=off buffers=64MB
    if [ "${SCIMD_PG_DURABLE:-0}" = 1 ]; then durable=on buffers=256MB; fi
    cat >>"$DATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
max_connections = 400
fsync = $durable
synchronous_commit = $durable
full_page_writes = $durable
shared_buffers = $buffers
log_min_messages = warning
EOF
    local p try
    for try in 1 2 3 4 5; do
        p=$(free_port)
        if "${RUNAS[@]}" "$bin/pg_ctl" -D "$DATA" -l "$DIR/server.log" -o "-p $p" -w -t 30 start \
            >/dev/null 2>&1; then
            echo "$p" >"$DIR/port"
            url
            return 0
        fi
    done
    echo "pg-test-cluster: cannot start the server; see $DIR/server.log" >&2
    tail -20 "$DIR/server.log" >&2 || true
    return 1
}

stop() {
    local bin
    bin=$(pgbin) || return 0
    pick_user
    if [ -f "$DATA/postmaster.pid" ]; then
        "${RUNAS[@]}" "$bin/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
}

restart() {
    local bin down=${1:-0}
    bin=$(pgbin)
    pick_user
    if [ "$down" = 0 ]; then
        "${RUNAS[@]}" "$bin/pg_ctl" -D "$DATA" -l "$DIR/server.log" -o "-p $(cat "$DIR/port")" \
            -m fast -w -t 60 restart >/dev/null
        return
    fi
    "${RUNAS[@]}" "$bin/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
    sleep "$down"
    "${RUNAS[@]}" "$bin/pg_ctl" -D "$DATA" -l "$DIR/server.log" -o "-p $(cat "$DIR/port")" \
        -w -t 60 start >/dev/null
}

case "${1:-}" in
start) start ;;
stop) stop ;;
restart) restart "${2:-0}" ;;
url) url ;;
status) running && echo running || { echo stopped; exit 1; } ;;
*) echo "usage: $0 start|stop|restart|url|status" >&2; exit 2 ;;
esac
