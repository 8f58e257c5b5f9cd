#!/usr/bin/env bash
# Start, stop or locate a private RabbitMQ node on loopback, for tests.
#
#   scripts/rabbitmq.sh start   # start (or reuse) the node; prints its AMQP URL
#   scripts/rabbitmq.sh stop    # stop it (rabbitmqctl stop, then by PID); bounded
#   scripts/rabbitmq.sh status  # exit 0 when it accepts connections
#   scripts/rabbitmq.sh url     # print the AMQP URL
#   scripts/rabbitmq.sh tls-url # print the amqps URL (with ?cacertfile= of the test CA)
#   scripts/rabbitmq.sh tls-ca  # print the test CA's path
#   scripts/rabbitmq.sh tls-status  # exit 0 when the TLS listener accepts connections
#   scripts/rabbitmq.sh mgmt-url    # print the management API's URL (http://guest:guest@127.0.0.1:15673)
#   scripts/rabbitmq.sh mgmt-status # exit 0 when the management API answers
#   scripts/rabbitmq.sh cluster start|stop|status|urls|mgmt-urls|stop-node N|start-node N
#                                   # the three-node cluster of scripts/rabbitmq-cluster.sh (separate from this node)
#
# The node runs the management plugin (rabbitmq_management, enabled through a private
# enabled_plugins file) with its HTTP listener on 127.0.0.1, port
# CONDUCTOR_RABBITMQ_MGMT_PORT (default 15673), so tests can provision users and
# permissions through the same API the coordinator uses; `start` waits until it answers.
#
# The node also has a TLS listener (CONDUCTOR_RABBITMQ_TLS_PORT, default 5674) with a
# server certificate for localhost/127.0.0.1 signed by a throwaway CA that
# scripts/make-test-certs.sh makes under the state dir (tls/), so TLS clients can be
# tested against it; it does not ask for client certificates.
#
# Everything is private: its own node name, ports, epmd, cookie, mnesia and log dirs
# under a state dir, only the management plugin, and /etc/rabbitmq is ignored. The Debian wrapper
# /usr/sbin/rabbitmq-server switches users and drops the environment, so this runs
# the real server script. See docs/testing.md and the environment variables below.
set -euo pipefail

PORT="${CONDUCTOR_RABBITMQ_PORT:-5673}"
DIST_PORT="${CONDUCTOR_RABBITMQ_DIST_PORT:-25673}"
EPMD_PORT="${CONDUCTOR_RABBITMQ_EPMD_PORT:-4370}"
NODENAME="${CONDUCTOR_RABBITMQ_NODENAME:-conductor-test@localhost}"
STATE_DIR="${CONDUCTOR_RABBITMQ_DIR:-${TMPDIR:-/tmp}/conductor-rabbitmq}"
START_TIMEOUT="${CONDUCTOR_RABBITMQ_START_TIMEOUT:-60}"
URL="amqp://guest:guest@127.0.0.1:${PORT}/%2F"
TLS_PORT="${CONDUCTOR_RABBITMQ_TLS_PORT:-5674}"
TLS_DIR="$STATE_DIR/tls"
TLS_URL="amqps://guest:guest@localhost:${TLS_PORT}/%2F?cacertfile=${TLS_DIR}/ca.pem"
MGMT_PORT="${CONDUCTOR_RABBITMQ_MGMT_PORT:-15673}"
MGMT_URL="http://guest:guest@127.0.0.1:${MGMT_PORT}"

die() { echo "rabbitmq.sh: $*" >&2; exit 1; }

find_sbin() {
    local dir
    dir=$(ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n "$dir" && -x "$dir/rabbitmq-server" ]] \
        || die "RabbitMQ is not installed (apt-get install -y --no-install-recommends rabbitmq-server)"
    echo "$dir"
}

setup_env() {
    mkdir -p "$STATE_DIR/home" "$STATE_DIR/mnesia" "$STATE_DIR/log"
    export HOME="$STATE_DIR/home"
    local cookie="$HOME/.erlang.cookie"
    if [[ ! -s "$cookie" ]]; then
        rm -f "$cookie"
        (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' > "$cookie")
    fi
    chmod 400 "$cookie"
    printf 'listeners.tcp.1 = 127.0.0.1:%s\nloopback_users.guest = true\n' "$PORT" > "$STATE_DIR/rabbitmq.conf"
    # The TLS listener, with certificates from a throwaway CA (made once per state dir).
    if [[ ! -s "$TLS_DIR/server.pem" || ! -s "$TLS_DIR/ca.pem" ]]; then
        "$(dirname "${BASH_SOURCE[0]}")/make-test-certs.sh" "$TLS_DIR" > /dev/null
    fi
    cat >> "$STATE_DIR/rabbitmq.conf" <<CONF
listeners.ssl.1 = 127.0.0.1:$TLS_PORT
ssl_options.cacertfile = $TLS_DIR/ca.pem
ssl_options.certfile = $TLS_DIR/server.pem
ssl_options.keyfile = $TLS_DIR/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF
    # The management API on loopback only; its plugin from a private enabled_plugins file.
    printf 'management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = %s\n' "$MGMT_PORT" >> "$STATE_DIR/rabbitmq.conf"
    echo '[rabbitmq_management].' > "$STATE_DIR/enabled_plugins"
    : > "$STATE_DIR/rabbitmq-env.conf"

    export RABBITMQ_NODENAME="$NODENAME"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$PORT"
    export RABBITMQ_DIST_PORT="$DIST_PORT"
    export ERL_EPMD_ADDRESS=127.0.0.1
    export ERL_EPMD_PORT="$EPMD_PORT"
    export RABBITMQ_MNESIA_BASE="$STATE_DIR/mnesia"
    export RABBITMQ_LOG_BASE="$STATE_DIR/log"
    export RABBITMQ_PID_FILE="$STATE_DIR/rabbitmq.pid"
    export RABBITMQ_CONFIG_FILE="$STATE_DIR/rabbitmq.conf"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$STATE_DIR/enabled_plugins"
    export RABBITMQ_CONF_ENV_FILE="$STATE_DIR/rabbitmq-env.conf"
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/${1:-$PORT}" 2>/dev/null
}

# The AMQP listener answers a bad protocol header with its own header: that tells a
# RabbitMQ apart from any other program that happens to hold the port.
speaks_amqp() {
    local reply
    reply=$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; printf 'XXXXXXXX' >&3; head -c 4 <&3" 2>/dev/null || true)
    [[ "$reply" == "AMQP" ]]
}

# The management API answers an authenticated request (not just an open port).
mgmt_answers() {
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -u guest:guest "http://127.0.0.1:${MGMT_PORT}/api/overview" 2>/dev/null)" == 200 ]]
}

node_pid() {
    local pid=""
    [[ -s "$STATE_DIR/rabbitmq.pid" ]] && pid=$(tr -dc '0-9' < "$STATE_DIR/rabbitmq.pid")
    [[ -z "$pid" && -s "$STATE_DIR/launcher.pid" ]] && pid=$(tr -dc '0-9' < "$STATE_DIR/launcher.pid")
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

start() {
    if port_open; then
        if [[ -n "$(node_pid)" ]] && speaks_amqp; then
            mgmt_answers || echo "rabbitmq.sh: warning: the running node has no management API on 127.0.0.1:$MGMT_PORT (started by an older rabbitmq.sh?); 'stop' then 'start' gives it one" >&2
            echo "$URL"
            return 0
        fi
        die "port $PORT on 127.0.0.1 is taken by another program; set CONDUCTOR_RABBITMQ_PORT"
    fi
    local sbin
    sbin=$(find_sbin)
    setup_env
    rm -f "$STATE_DIR/rabbitmq.pid"
    # setsid: the node survives the caller's terminal and gets its own process group.
    setsid "$sbin/rabbitmq-server" > "$STATE_DIR/server.out" 2>&1 < /dev/null &
    echo $! > "$STATE_DIR/launcher.pid"
    local deadline=$((SECONDS + START_TIMEOUT))
    while (( SECONDS < deadline )); do
        if port_open; then
            # The TLS listener comes up with the plain one; give it a moment.
            while (( SECONDS < deadline )) && ! port_open "$TLS_PORT"; do sleep 0.2; done
            port_open "$TLS_PORT" || echo "rabbitmq.sh: warning: no TLS listener on 127.0.0.1:$TLS_PORT" >&2
            # The management plugin starts after the AMQP listener, within seconds.
            while (( SECONDS < deadline )) && ! mgmt_answers; do sleep 0.5; done
            mgmt_answers || echo "rabbitmq.sh: warning: no management API on 127.0.0.1:$MGMT_PORT after ${START_TIMEOUT}s" >&2
            echo "$URL"
            return 0
        fi
        if ! kill -0 "$(cat "$STATE_DIR/launcher.pid")" 2>/dev/null; then
            echo "rabbitmq.sh: the server exited during start; last lines of its output:" >&2
            tail -n 30 "$STATE_DIR/server.out" >&2 || true
            exit 1
        fi
        sleep 0.5
    done
    echo "rabbitmq.sh: no listener on 127.0.0.1:$PORT after ${START_TIMEOUT}s; last lines of its output:" >&2
    tail -n 30 "$STATE_DIR/server.out" >&2 || true
    stop >&2 || true
    exit 1
}

stop() {
    local sbin pid
    sbin=$(find_sbin)
    setup_env
    pid=$(node_pid)
    if [[ -z "$pid" ]] && ! port_open; then
        echo "rabbitmq.sh: not running"
        return 0
    fi
    timeout 30 "$sbin/rabbitmqctl" -n "$NODENAME" stop > "$STATE_DIR/stop.out" 2>&1 || true
    local p
    for p in $pid $(node_pid); do
        kill -TERM "$p" 2>/dev/null || true
    done
    local deadline=$((SECONDS + 20))
    while (( SECONDS < deadline )); do
        [[ -z "$(node_pid)" ]] && ! port_open && break
        sleep 0.5
    done
    for p in $pid $(node_pid); do
        kill -KILL "$p" 2>/dev/null || true
    done
    # Our epmd listens on a private port; stop it too (harmless if it stays).
    if command -v epmd > /dev/null; then
        timeout 5 epmd -port "$EPMD_PORT" -kill > /dev/null 2>&1 || true
    fi
    rm -f "$STATE_DIR/rabbitmq.pid" "$STATE_DIR/launcher.pid"
    if port_open; then
        die "something still listens on 127.0.0.1:$PORT after stop"
    fi
    echo "rabbitmq.sh: stopped"
}

case "${1:-}" in
    cluster) shift; exec "$(dirname "${BASH_SOURCE[0]}")/rabbitmq-cluster.sh" "$@" ;;
    start) start ;;
    stop) stop ;;
    url) echo "$URL" ;;
    tls-url) echo "$TLS_URL" ;;
    tls-ca) echo "$TLS_DIR/ca.pem" ;;
    mgmt-url) echo "$MGMT_URL" ;;
    mgmt-status)
        if mgmt_answers; then echo "running: $MGMT_URL"; else echo "no management API on $MGMT_PORT"; exit 1; fi ;;
    tls-status)
        if port_open "$TLS_PORT" && [[ -s "$TLS_DIR/ca.pem" ]]; then echo "running: $TLS_URL"; else echo "no TLS listener on $TLS_PORT"; exit 1; fi ;;
    status)
        if port_open && speaks_amqp; then echo "running: $URL"; else echo "not running"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|status|url|tls-url|tls-ca|tls-status|mgmt-url|mgmt-status|cluster ..." >&2; exit 2 ;;
esac
