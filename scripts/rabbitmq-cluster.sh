#!/usr/bin/env bash
# Start, stop or locate a private three-node RabbitMQ cluster on loopback, for the tests
# of failover across a cluster's nodes (docs/testing.md, "The RabbitMQ cluster").
#
#   scripts/rabbitmq-cluster.sh start         # start the three nodes, join them; prints the AMQP URLs (comma separated)
#   scripts/rabbitmq-cluster.sh stop          # stop the three nodes (rabbitmqctl stop, then by PID); bounded
#   scripts/rabbitmq-cluster.sh status        # exit 0 when every node accepts connections and the cluster has three running nodes
#   scripts/rabbitmq-cluster.sh urls          # print the AMQP URLs, comma separated
#   scripts/rabbitmq-cluster.sh mgmt-urls     # print the management APIs' URLs, comma separated
#   scripts/rabbitmq-cluster.sh stop-node N   # stop node N (1-3) as a crash would take it away, keeping its data
#   scripts/rabbitmq-cluster.sh start-node N  # start node N again; it rejoins the cluster from its data
#   scripts/rabbitmq-cluster.sh node-name N   # print node N's Erlang node name (ccl1@localhost, ...)
#
# `scripts/rabbitmq.sh cluster COMMAND` runs this script too.
#
# It lives next to the single node of scripts/rabbitmq.sh and shares nothing with it: its own
# node names (ccl1@localhost, ccl2@localhost, ccl3@localhost), AMQP ports (5771-5773),
# distribution ports (25771-25773), management ports (15771-15773), an epmd of its own on
# port 4371, one Erlang cookie for the three nodes (the cluster's), and data and log
# directories under one scratch folder (CONDUCTOR_RABBITMQ_CLUSTER_DIR). Every node runs
# the management plugin on loopback, so tests create per-agent logins through any node.
# `start` begins from empty data (a fresh cluster) unless a node of it already runs, in
# which case it reuses the cluster when it is whole. `stop` stops exactly these three
# nodes and their epmd. Every wait is bounded.
set -euo pipefail

BASE_PORT="${CONDUCTOR_RABBITMQ_CLUSTER_PORT:-5771}"
BASE_DIST_PORT="${CONDUCTOR_RABBITMQ_CLUSTER_DIST_PORT:-25771}"
BASE_MGMT_PORT="${CONDUCTOR_RABBITMQ_CLUSTER_MGMT_PORT:-15771}"
EPMD_PORT="${CONDUCTOR_RABBITMQ_CLUSTER_EPMD_PORT:-4371}"
NODE_PREFIX="${CONDUCTOR_RABBITMQ_CLUSTER_NODE_PREFIX:-ccl}"
STATE_DIR="${CONDUCTOR_RABBITMQ_CLUSTER_DIR:-${TMPDIR:-/tmp}/conductor-rabbitmq-cluster}"
START_TIMEOUT="${CONDUCTOR_RABBITMQ_CLUSTER_START_TIMEOUT:-120}"
NODES=(1 2 3)

die() { echo "rabbitmq-cluster.sh: $*" >&2; exit 1; }

node_name() { echo "${NODE_PREFIX}$1@localhost"; }
amqp_port() { echo $((BASE_PORT + $1 - 1)); }
dist_port() { echo $((BASE_DIST_PORT + $1 - 1)); }
mgmt_port() { echo $((BASE_MGMT_PORT + $1 - 1)); }
node_dir() { echo "$STATE_DIR/node$1"; }
amqp_url() { echo "amqp://guest:guest@127.0.0.1:$(amqp_port "$1")/%2F"; }
mgmt_url() { echo "http://guest:guest@127.0.0.1:$(mgmt_port "$1")"; }

urls() { local n out=(); for n in "${NODES[@]}"; do out+=("$(amqp_url "$n")"); done; (IFS=,; echo "${out[*]}"); }
mgmt_urls() { local n out=(); for n in "${NODES[@]}"; do out+=("$(mgmt_url "$n")"); done; (IFS=,; echo "${out[*]}"); }

find_sbin() {
    local dir
    dir=$(ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n "$dir" && -x "$dir/rabbitmq-server" ]] \
        || die "RabbitMQ is not installed (apt-get install -y --no-install-recommends rabbitmq-server)"
    echo "$dir"
}

check_node() { [[ "$1" =~ ^[123]$ ]] || die "the node is 1, 2 or 3, not '$1'"; }

# The shared cookie: made once per state dir, read by all three nodes and rabbitmqctl.
make_cookie() {
    mkdir -p "$STATE_DIR/home"
    local cookie="$STATE_DIR/home/.erlang.cookie"
    if [[ ! -s "$cookie" ]]; then
        rm -f "$cookie"
        (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' > "$cookie")
    fi
    chmod 400 "$cookie"
}

# Exports node N's environment (run in a subshell, or before rabbitmqctl for that node).
node_env() {
    local n="$1" dir
    dir=$(node_dir "$n")
    mkdir -p "$dir/mnesia" "$dir/log"
    make_cookie
    export HOME="$STATE_DIR/home"
    {
        printf 'listeners.tcp.1 = 127.0.0.1:%s\nloopback_users.guest = true\n' "$(amqp_port "$n")"
        printf 'management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = %s\n' "$(mgmt_port "$n")"
        # A node that loses its peers keeps serving what it can (the default); quorum queues
        # need a majority anyway.
        printf 'cluster_partition_handling = ignore\n'
    } > "$dir/rabbitmq.conf"
    echo '[rabbitmq_management].' > "$dir/enabled_plugins"
    : > "$dir/rabbitmq-env.conf"
    export RABBITMQ_NODENAME; RABBITMQ_NODENAME=$(node_name "$n")
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT; RABBITMQ_NODE_PORT=$(amqp_port "$n")
    export RABBITMQ_DIST_PORT; RABBITMQ_DIST_PORT=$(dist_port "$n")
    export ERL_EPMD_ADDRESS=127.0.0.1
    export ERL_EPMD_PORT="$EPMD_PORT"
    export RABBITMQ_MNESIA_BASE="$dir/mnesia"
    export RABBITMQ_LOG_BASE="$dir/log"
    export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
    export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
    export RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

speaks_amqp() {
    local reply
    reply=$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; printf 'XXXXXXXX' >&3; head -c 4 <&3" 2>/dev/null || true)
    [[ "$reply" == "AMQP" ]]
}

mgmt_answers() {
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -u guest:guest "http://127.0.0.1:$(mgmt_port "$1")/api/overview" 2>/dev/null)" == 200 ]]
}

node_pid() {
    local dir pid=""
    dir=$(node_dir "$1")
    [[ -s "$dir/rabbitmq.pid" ]] && pid=$(tr -dc '0-9' < "$dir/rabbitmq.pid")
    [[ -z "$pid" && -s "$dir/launcher.pid" ]] && pid=$(tr -dc '0-9' < "$dir/launcher.pid")
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

node_up() { port_open "$(amqp_port "$1")" && speaks_amqp "$(amqp_port "$1")"; }

ctl() {  # ctl N ARGS...: rabbitmqctl against node N, bounded
    local n="$1"; shift
    ( node_env "$n"; timeout 60 "$SBIN/rabbitmqctl" -n "$(node_name "$n")" "$@" )
}

# Starts node N's server in the background (its own session), without waiting.
launch_node() {
    local n="$1" dir
    dir=$(node_dir "$n")
    port_open "$(amqp_port "$n")" && die "port $(amqp_port "$n") on 127.0.0.1 is taken; set CONDUCTOR_RABBITMQ_CLUSTER_PORT"
    port_open "$(mgmt_port "$n")" && die "port $(mgmt_port "$n") on 127.0.0.1 is taken; set CONDUCTOR_RABBITMQ_CLUSTER_MGMT_PORT"
    (
        node_env "$n"
        rm -f "$dir/rabbitmq.pid"
        setsid "$SBIN/rabbitmq-server" > "$dir/server.out" 2>&1 < /dev/null &
        echo $! > "$dir/launcher.pid"
    )
}

# Waits (bounded) until node N accepts AMQP connections and its management API answers.
wait_node() {
    local n="$1" deadline=$((SECONDS + START_TIMEOUT)) dir
    dir=$(node_dir "$n")
    while (( SECONDS < deadline )); do
        if node_up "$n"; then
            while (( SECONDS < deadline )) && ! mgmt_answers "$n"; do sleep 0.5; done
            mgmt_answers "$n" || echo "rabbitmq-cluster.sh: warning: node $n has no management API on 127.0.0.1:$(mgmt_port "$n")" >&2
            return 0
        fi
        if ! kill -0 "$(cat "$dir/launcher.pid" 2>/dev/null || echo 0)" 2>/dev/null; then
            echo "rabbitmq-cluster.sh: node $n exited during start; last lines of its output:" >&2
            tail -n 30 "$dir/server.out" >&2 || true
            return 1
        fi
        sleep 0.5
    done
    echo "rabbitmq-cluster.sh: node $n did not listen on 127.0.0.1:$(amqp_port "$n") within ${START_TIMEOUT}s; last lines of its output:" >&2
    tail -n 30 "$dir/server.out" >&2 || true
    return 1
}

running_nodes() {  # how many nodes node N sees running in its cluster
    ctl "$1" cluster_status --formatter json 2>/dev/null \
        | python3 -c 'import json, sys; print(len(json.load(sys.stdin).get("running_nodes", [])))' 2>/dev/null || echo 0
}

start() {
    SBIN=$(find_sbin)
    local n any=0 all=1
    for n in "${NODES[@]}"; do
        if node_up "$n" && [[ -n "$(node_pid "$n")" ]]; then any=1; else all=0; fi
    done
    if (( all )) && [[ "$(running_nodes 1)" == 3 ]]; then
        urls
        return 0
    fi
    (( any )) && die "part of the cluster runs already (not all three nodes, or not joined): 'stop' it first"
    # A fresh cluster: no queues, users or membership left from an earlier run.
    rm -rf "$STATE_DIR/node1" "$STATE_DIR/node2" "$STATE_DIR/node3"
    local started=$SECONDS
    # The three servers boot side by side (each takes 7-11 s alone on this kind of machine).
    for n in "${NODES[@]}"; do launch_node "$n"; done
    for n in "${NODES[@]}"; do
        wait_node "$n" || { stop >&2 || true; exit 1; }
    done
    # Nodes 2 and 3 join node 1 (join_cluster needs the app stopped; a fresh node has no data to lose).
    for n in 2 3; do
        if ! { ctl "$n" stop_app > /dev/null && ctl "$n" join_cluster "$(node_name 1)" > /dev/null && ctl "$n" start_app > /dev/null; }; then
            echo "rabbitmq-cluster.sh: node $n could not join $(node_name 1); see $(node_dir "$n")/log" >&2
            stop >&2 || true
            exit 1
        fi
    done
    for n in "${NODES[@]}"; do
        wait_node "$n" || { stop >&2 || true; exit 1; }
    done
    local seen
    seen=$(running_nodes 1)
    [[ "$seen" == 3 ]] || { echo "rabbitmq-cluster.sh: the cluster has $seen running nodes, not 3" >&2; stop >&2 || true; exit 1; }
    echo "rabbitmq-cluster.sh: three nodes joined in $((SECONDS - started))s" >&2
    urls
}

stop_one() {
    local n="$1" pid p
    pid=$(node_pid "$n")
    if [[ -z "$pid" ]] && ! port_open "$(amqp_port "$n")"; then return 0; fi
    ctl "$n" stop > "$(node_dir "$n")/stop.out" 2>&1 || true
    for p in $pid $(node_pid "$n"); do kill -TERM "$p" 2>/dev/null || true; done
    local deadline=$((SECONDS + 20))
    while (( SECONDS < deadline )); do
        [[ -z "$(node_pid "$n")" ]] && ! port_open "$(amqp_port "$n")" && break
        sleep 0.5
    done
    for p in $pid $(node_pid "$n"); do kill -KILL "$p" 2>/dev/null || true; done
    rm -f "$(node_dir "$n")/rabbitmq.pid" "$(node_dir "$n")/launcher.pid"
    ! port_open "$(amqp_port "$n")" || die "something still listens on 127.0.0.1:$(amqp_port "$n") after stopping node $n"
}

stop() {
    SBIN=$(find_sbin)
    local n
    for n in "${NODES[@]}"; do stop_one "$n"; done
    # The cluster's own epmd (a private port); harmless if it stays.
    if command -v epmd > /dev/null; then
        ERL_EPMD_ADDRESS=127.0.0.1 timeout 5 epmd -port "$EPMD_PORT" -kill > /dev/null 2>&1 || true
    fi
    echo "rabbitmq-cluster.sh: stopped"
}

stop_node() {
    check_node "$1"
    SBIN=$(find_sbin)
    stop_one "$1"
    echo "rabbitmq-cluster.sh: node $1 ($(node_name "$1")) stopped"
}

start_node() {
    check_node "$1"
    SBIN=$(find_sbin)
    if node_up "$1"; then echo "rabbitmq-cluster.sh: node $1 runs already"; return 0; fi
    [[ -d "$(node_dir "$1")/mnesia" ]] || die "node $1 has no data: 'start' the cluster first"
    launch_node "$1"
    wait_node "$1" || exit 1
    echo "rabbitmq-cluster.sh: node $1 ($(node_name "$1")) started"
}

status() {
    SBIN=$(find_sbin)
    local n
    for n in "${NODES[@]}"; do
        node_up "$n" || { echo "node $n is not running"; return 1; }
    done
    local seen
    seen=$(running_nodes 1)
    [[ "$seen" == 3 ]] || { echo "the cluster has $seen running nodes, not 3"; return 1; }
    echo "running: $(urls)"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    urls) urls ;;
    mgmt-urls) mgmt_urls ;;
    stop-node) stop_node "${2:-}" ;;
    start-node) start_node "${2:-}" ;;
    node-name) check_node "${2:-}"; node_name "$2" ;;
    *) echo "usage: $0 start|stop|status|urls|mgmt-urls|stop-node N|start-node N|node-name N" >&2; exit 2 ;;
esac
