#!/usr/bin/env bash
# Start, stop or locate a private PostgreSQL server on loopback, for tests.
#
#   scripts/postgres.sh start   # install if missing, start (or reuse) the server; prints its URL
#   scripts/postgres.sh stop    # stop exactly the server `start` started (pg_ctl, by its data dir)
#   scripts/postgres.sh status  # exit 0 when it accepts connections
#   scripts/postgres.sh url     # print the URL of the test role's database
#
# The URL, postgresql://conductor:conductor@127.0.0.1:PORT/conductor, names a role that may
# create databases (CREATEDB): the state-store tests make one database per test from it, so
# they run in parallel without seeing each other.
#
# Everything is private: its own data directory, socket directory and log under a state
# dir, its own port (CONDUCTOR_POSTGRES_PORT, default 5433), listening on 127.0.0.1 only;
# Debian's own cluster (5432) is neither used nor started. The server refuses to run as
# root, so it runs as the user postgres (runuser), which owns the state dir. When Debian's
# `postgresql` is missing, `start` installs it with /usr/sbin/policy-rc.d answering 101, so
# the package does not start its cluster; that file is removed again only if we wrote it.
# See docs/testing.md and the environment variables below.
set -euo pipefail

PORT="${CONDUCTOR_POSTGRES_PORT:-5433}"
STATE_DIR="${CONDUCTOR_POSTGRES_DIR:-${TMPDIR:-/tmp}/conductor-postgres}"
START_TIMEOUT="${CONDUCTOR_POSTGRES_START_TIMEOUT:-60}"
ROLE=conductor
PASSWORD=conductor
DATABASE=conductor
URL="postgresql://${ROLE}:${PASSWORD}@127.0.0.1:${PORT}/${DATABASE}"
DATA="$STATE_DIR/data"

die() { echo "postgres.sh: $*" >&2; exit 1; }

find_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n "$dir" && -x "$dir/pg_ctl" ]] && echo "$dir"
}

install_postgres() {
    [[ $(id -u) == 0 ]] || die "PostgreSQL is not installed, and installing it needs root (apt-get install -y postgresql)"
    local wrote_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        wrote_policy=1
    fi
    local status=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql > "${TMPDIR:-/tmp}/conductor-postgres-install.log" 2>&1 || status=$?
    [[ -n "$wrote_policy" ]] && rm -f /usr/sbin/policy-rc.d
    (( status == 0 )) || { tail -n 20 "${TMPDIR:-/tmp}/conductor-postgres-install.log" >&2; die "apt-get install postgresql failed"; }
}

as_postgres() {
    if [[ $(id -un) == postgres ]]; then "$@"; else runuser -u postgres -- "$@"; fi
}

port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null
}

# Ours when our data directory's server is up (pg_ctl status reads its postmaster.pid).
ours_running() {
    local bin
    bin=$(find_bin) || return 1
    [[ -d "$DATA" ]] && as_postgres "$bin/pg_ctl" -D "$DATA" status > /dev/null 2>&1
}

start() {
    if ours_running; then
        echo "$URL"
        return 0
    fi
    port_open && die "port $PORT on 127.0.0.1 is taken by another program; set CONDUCTOR_POSTGRES_PORT"
    local bin
    bin=$(find_bin) || { install_postgres; bin=$(find_bin) || die "no pg_ctl after installing postgresql"; }
    mkdir -p "$STATE_DIR"
    chown postgres "$STATE_DIR"
    chmod 700 "$STATE_DIR"
    if [[ ! -s "$DATA/PG_VERSION" ]]; then
        rm -rf "$DATA"
        as_postgres "$bin/initdb" -D "$DATA" -A trust -U postgres > "$STATE_DIR/initdb.log" 2>&1 \
            || { tail -n 20 "$STATE_DIR/initdb.log" >&2; die "initdb failed"; }
        # The test role logs in with a password over TCP, as a real deployment would.
        printf 'local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n' > "$DATA/pg_hba.conf"
        chown postgres "$DATA/pg_hba.conf"
    fi
    as_postgres "$bin/pg_ctl" -D "$DATA" -l "$STATE_DIR/server.log" -w -t "$START_TIMEOUT" \
        -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$STATE_DIR -c max_connections=200 -c fsync=on" \
        start > "$STATE_DIR/pg_ctl.out" 2>&1 || { tail -n 30 "$STATE_DIR/server.log" >&2 || true; die "the server did not start"; }
    local psql=("$bin/psql" -h "$STATE_DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
    if [[ -z "$(as_postgres "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" ]]; then
        as_postgres "${psql[@]}" -c "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'" > /dev/null
    fi
    if [[ -z "$(as_postgres "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" ]]; then
        as_postgres "${psql[@]}" -c "CREATE DATABASE $DATABASE OWNER $ROLE" > /dev/null
    fi
    echo "$URL"
}

stop() {
    local bin
    bin=$(find_bin) || { echo "postgres.sh: not running"; return 0; }
    if ! ours_running; then
        echo "postgres.sh: not running"
        return 0
    fi
    as_postgres "$bin/pg_ctl" -D "$DATA" -m fast -w -t 30 stop > /dev/null 2>&1 \
        || as_postgres "$bin/pg_ctl" -D "$DATA" -m immediate -w -t 30 stop > /dev/null 2>&1 || true
    ours_running && die "the server of $DATA is still running after stop"
    echo "postgres.sh: stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) echo "$URL" ;;
    status)
        if ours_running && port_open; then echo "running: $URL"; else echo "not running"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
