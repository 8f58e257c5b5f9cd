#!/usr/bin/env bash
# A thousand agents on one bus (issue 14), on the embedded broker and on RabbitMQ, side by
# side in one run. Per bus:
#   1. the bus (`conductor broker`, or a private RabbitMQ node on its own ports), then a
#      coordinator (`conductor serve --broker URL`, its own process);
#   2. AGENTS agents as PROCESSES `conductor bench-agents` processes, each agent with its
#      own connection; timed from spawning them until `conductor facts` counts all of them;
#   3. REPEATS fact queries (`conductor facts --json`, wall time of the command, process
#      start included), each checked to have AGENTS answers and to have ended because every
#      live agent answered; then the same with --broadcast --expect AGENTS (discovery as it
#      was before the registry, told how many to expect) for comparison;
#   4. REPEATS `conductor run --all --json -- true`, every result counted (AGENTS
#      succeeded); then --broadcast --expect AGENTS;
#   5. VmRSS / VmHWM of the coordinator and the broker (beam.smp for RabbitMQ), and of the
#      agent processes (summed).
# Every wait is bounded; everything started is stopped on exit. Results go into
# docs/benchmarks.md by hand, with the load average printed here.
#
#   scripts/bench-thousand.sh [AGENTS] [PROCESSES] [REPEATS]      # default 1000 4 10
#   CONDUCTOR_BENCH_BIN=path/to/conductor   use this binary (else the release build of
#                                           scripts/build-release.sh in .build-bench)
#   BENCH_BEFORE_BIN=path/to/conductor      also run everything with this (older) binary,
#                                           in a column of its own right before the other,
#                                           for each bus: before/after in one run
#   BENCH_BUSES="embedded rabbitmq"         which buses, in this order
#   BENCH_HEARTBEAT=10                      the agents' heartbeat interval (s)
#   BENCH_RABBITMQ_PORT (5692), _DIST_PORT (25692), _EPMD_PORT (4392), _TLS_PORT (5697),
#   _MGMT_PORT (15692): the private RabbitMQ node, stopped at the end (never the shared test node)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
AGENTS="${1:-1000}"
PROCESSES="${2:-4}"
REPEATS="${3:-10}"
BUSES="${BENCH_BUSES:-embedded rabbitmq}"
HEARTBEAT="${BENCH_HEARTBEAT:-10}"
SCOPE=thousand
if [[ -n "${CONDUCTOR_BENCH_BIN:-}" ]]; then
    BIN="$CONDUCTOR_BENCH_BIN"
else
    SCRATCH="${CONDUCTOR_BENCH_SCRATCH_PATH:-.build-bench}"
    scripts/build-release.sh --scratch-path "$SCRATCH" >/dev/null
    BIN="$SCRATCH/release/conductor"
fi
export CONDUCTOR_RABBITMQ_PORT="${BENCH_RABBITMQ_PORT:-5692}"
export CONDUCTOR_RABBITMQ_DIST_PORT="${BENCH_RABBITMQ_DIST_PORT:-25692}"
export CONDUCTOR_RABBITMQ_EPMD_PORT="${BENCH_RABBITMQ_EPMD_PORT:-4392}"
export CONDUCTOR_RABBITMQ_TLS_PORT="${BENCH_RABBITMQ_TLS_PORT:-5697}"
export CONDUCTOR_RABBITMQ_MGMT_PORT="${BENCH_RABBITMQ_MGMT_PORT:-15692}"
export CONDUCTOR_RABBITMQ_NODENAME="conductor-thousand@localhost"
export CONDUCTOR_RABBITMQ_DIR="${TMPDIR:-/tmp}/conductor-thousand-rabbitmq"
# Nothing else of the environment decides where the commands connect.
unset CONDUCTOR_BROKER_URL CONDUCTOR_COORDINATOR_SCOPE
ulimit -n "$(ulimit -Hn)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/conductor-thousand.XXXXXX")"
export CONDUCTOR_STATE_DIR="$WORK/cli-state"
PIDS=()
RABBIT_STARTED=""
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [[ $alive == 0 ]] && break
        sleep 0.2
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    [[ -n "$RABBIT_STARTED" ]] && scripts/rabbitmq.sh stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
rss() { awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {printf "%.1f MiB (peak %.1f MiB)", r/1024, h/1024}' "/proc/$1/status"; }
rss_sum() {
    local total=0 pid
    for pid in "$@"; do total=$(( total + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status") )); done
    awk -v t="$total" 'BEGIN {printf "%.0f MiB", t/1024}'
}
# stats NAME VALUES...: "median / p95 / max" of integer milliseconds
stats() {
    printf '%s\n' "$@" | sort -n | awk '{ t[NR] = $1 } END {
        printf "%d / %d / %d ms", t[int((NR + 1) / 2)], t[int(NR * 0.95 + 0.999)], t[NR] }'
}
# ticks PID...: user + system CPU ticks (1/100 s) used so far by these processes
ticks() {
    local total=0 pid
    for pid in "$@"; do total=$(( total + $(awk '{print $14 + $15}' "/proc/$pid/stat") )); done
    echo "$total"
}
# cpu_note BEFORE_BUS BEFORE_SERVE BEFORE_FLEETS CLI_MS_TOTAL: CPU ms per call of each party
cpu_note() {
    local bus=$(( ($(ticks "$BUS_PID") - $1) * 10 / REPEATS )) serve=$(( ($(ticks "$SERVE_PID") - $2) * 10 / REPEATS ))
    local fleets=$(( ($(ticks "${FLEETS[@]}") - $3) * 10 / REPEATS )) cli=$(( $4 / REPEATS ))
    echo "broker $bus, agents $fleets, coordinator $serve, command $cli"
}
# timed OUT ERR CMD...: runs CMD; sets LAST_WALL_MS and adds its user + system CPU to CLI_MS
timed() {
    local out=$1 err=$2
    shift 2
    local t0
    t0=$(date +%s%N)
    /usr/bin/time -f "%U %S" -o "$WORK/time" "$@" >"$out" 2>"$err" || return 1
    LAST_WALL_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
    CLI_MS=$(( CLI_MS + $(awk '{printf "%d", ($1 + $2) * 1000}' "$WORK/time") ))
}
json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$@"; }

declare -A RESULT
echo "bench-thousand: $AGENTS agents in $PROCESSES processes, $REPEATS repeats, heartbeat ${HEARTBEAT}s; load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

LABELS=(after)
declare -A BINARY=([after]="$BIN")
if [[ -n "${BENCH_BEFORE_BIN:-}" ]]; then
    LABELS=(before after)
    BINARY[before]="$BENCH_BEFORE_BIN"
fi
COLUMNS=()
for bus_name in $BUSES; do
  for label in "${LABELS[@]}"; do
    BIN="${BINARY[$label]}"
    bus="$bus_name"
    [[ ${#LABELS[@]} -gt 1 ]] && bus="$bus_name ($label)"
    COLUMNS+=("$bus")
    echo "bench-thousand: --- $bus" >&2
    BUS_PID=""
    if [[ $bus_name == embedded ]]; then
        "$BIN" broker --listen 127.0.0.1:0 --no-persistence --log-level warning >"$WORK/broker.out" 2>&1 &
        BUS_PID=$!
        PIDS+=("$BUS_PID")
        for _ in $(seq 100); do grep -qs listening "$WORK/broker.out" && break; sleep 0.1; done
        PORT="$(grep -o '[0-9]*$' "$WORK/broker.out" | head -n 1)"
        URL="amqp://guest:guest@127.0.0.1:$PORT/%2F"
    else
        URL="$(scripts/rabbitmq.sh start)"
        RABBIT_STARTED=1
        BUS_PID="$(cat "$CONDUCTOR_RABBITMQ_DIR/rabbitmq.pid")"
    fi
    SERVE_DIR="$WORK/serve-$bus_name-$label"
    "$BIN" serve --broker "$URL" --state-dir "$SERVE_DIR" --scope "$SCOPE" --shared-agent-login --watch-interval 0 >"$SERVE_DIR.out" 2>&1 &
    SERVE_PID=$!
    PIDS+=("$SERVE_PID")
    for _ in $(seq 300); do grep -qs "serving on" "$SERVE_DIR.out" && break; sleep 0.1; done
    grep -qs "serving on" "$SERVE_DIR.out" || { echo "serve did not start:"; cat "$SERVE_DIR.out"; exit 1; }
    sleep 2.5   # the registry's locate sweep (2 s) is over: it is complete

    # 2. Start the fleets; time until one query counts every agent.
    FLEETS=()
    per=$(( AGENTS / PROCESSES ))
    START=$(now_ms)
    for p in $(seq "$PROCESSES"); do
        n=$per
        [[ $p == "$PROCESSES" ]] && n=$(( AGENTS - per * (PROCESSES - 1) ))
        "$BIN" bench-agents --broker "$URL" --agents "$n" --prefix "f$p" --queries 0 --hold 1800 --heartbeat-interval "$HEARTBEAT" \
            >"$WORK/fleet-$bus_name-$label-$p.out" 2>&1 &
        FLEETS+=($!)
        PIDS+=($!)
    done
    ANSWERED=0
    for _ in $(seq 120); do
        "$BIN" facts --broker "$URL" --scope "$SCOPE" --json --timeout 5s >"$WORK/facts.json" 2>"$WORK/facts.err" || true
        ANSWERED=$(json_get "$WORK/facts.json" 'len(d["agents"])' 2>/dev/null || echo 0)
        [[ $ANSWERED == "$AGENTS" ]] && break
        (( $(now_ms) - START > 180000 )) && break
    done
    UP_MS=$(( $(now_ms) - START ))
    [[ $ANSWERED == "$AGENTS" ]] || { echo "only $ANSWERED of $AGENTS agents answered after ${UP_MS} ms"; cat "$WORK/facts.err"; for f in "$WORK"/fleet-"$bus_name-$label"-*.out; do tail -n 3 "$f"; done; exit 1; }
    RESULT[$bus,up]="$UP_MS ms"
    sleep 3   # let the fleets' own readiness locates settle

    # 3. Fact queries. CPU per call of each process is read from /proc before and after.
    FACTS=(facts --broker "$URL" --scope "$SCOPE" --json --timeout 10s)
    for mode in registry broadcast; do
        extra=()
        [[ $mode == broadcast ]] && extra=(--broadcast --expect "$AGENTS")
        WALL=(); INSIDE=(); CLI_MS=0
        B0=$(ticks "$BUS_PID"); S0=$(ticks "$SERVE_PID"); F0=$(ticks "${FLEETS[@]}")
        for _ in $(seq "$REPEATS"); do
            timed "$WORK/q.json" "$WORK/q.err" "$BIN" "${FACTS[@]}" "${extra[@]}" || { echo "facts ($mode) failed:"; cat "$WORK/q.err"; exit 1; }
            WALL+=("$LAST_WALL_MS")
            got=$(json_get "$WORK/q.json" 'len(d["agents"]), d["ended"]')
            want="($AGENTS, 'all_live_answered')"
            [[ $mode == broadcast ]] && want="($AGENTS, 'expected_answered')"
            [[ $got == "$want" ]] || { echo "facts ($mode): $got, $(json_get "$WORK/q.json" 'd["silent"], d["discovery"]')"; exit 1; }
            INSIDE+=($(json_get "$WORK/q.json" 'd["elapsed_ms"]'))
        done
        RESULT[$bus,facts_$mode]="$(stats "${WALL[@]}")"
        RESULT[$bus,facts_${mode}_inside]="$(stats "${INSIDE[@]}")"
        RESULT[$bus,facts_${mode}_cpu]="$(cpu_note "$B0" "$S0" "$F0" "$CLI_MS")"
    done

    # 4. Runs of `true` on every agent.
    for mode in registry broadcast; do
        extra=()
        [[ $mode == broadcast ]] && extra=(--broadcast --expect "$AGENTS")
        WALL=(); CLI_MS=0
        B0=$(ticks "$BUS_PID"); S0=$(ticks "$SERVE_PID"); F0=$(ticks "${FLEETS[@]}")
        for _ in $(seq "$REPEATS"); do
            timed "$WORK/r.json" "$WORK/r.err" "$BIN" run --broker "$URL" --scope "$SCOPE" --all "${extra[@]}" --discovery-timeout 10s --json -- true \
                || { echo "run ($mode) failed:"; cat "$WORK/r.err"; json_get "$WORK/r.json" '{k: len(v) for k, v in d["summary"].items()}' || true; exit 1; }
            WALL+=("$LAST_WALL_MS")
            [[ $(json_get "$WORK/r.json" 'len(d["summary"]["succeeded"])') == "$AGENTS" ]] || { echo "run ($mode): $(json_get "$WORK/r.json" 'd["summary"]')"; exit 1; }
        done
        RESULT[$bus,run_$mode]="$(stats "${WALL[@]}")"
        RESULT[$bus,run_${mode}_cpu]="$(cpu_note "$B0" "$S0" "$F0" "$CLI_MS")"
    done

    # 5. Memory.
    RESULT[$bus,serve_rss]="$(rss "$SERVE_PID")"
    RESULT[$bus,broker_rss]="$(rss "$BUS_PID")"
    RESULT[$bus,fleet_rss]="$(rss_sum "${FLEETS[@]}") over $PROCESSES processes"
    RESULT[$bus,load]="$(cut -d' ' -f1-3 /proc/loadavg)"

    for pid in "${FLEETS[@]}" "$SERVE_PID"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${FLEETS[@]}" "$SERVE_PID"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ $bus_name == embedded ]]; then
        kill -TERM "$BUS_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$BUS_PID" 2>/dev/null || break; sleep 0.1; done
    else
        scripts/rabbitmq.sh stop >/dev/null 2>&1 || true
        RABBIT_STARTED=""
    fi
  done
done

echo
echo "$AGENTS agents in $PROCESSES \`bench-agents\` processes (each agent its own connection), heartbeat ${HEARTBEAT} s, $REPEATS repeats; median / p95 / max, wall time of the command (process start included); 2 cores shared by bus, coordinator, agents and CLI."
echo
header="| measurement |"; rule="| --- |"
for bus in "${COLUMNS[@]}"; do header+=" $bus |"; rule+=" --- |"; done
echo "$header"; echo "$rule"
row() {
    local line="| $1 |"
    for bus in "${COLUMNS[@]}"; do line+=" ${RESULT[$bus,$2]:-} |"; done
    echo "$line"
}
row "agents started → \`conductor facts\` counts all $AGENTS" up
row "\`conductor facts --json\` (registry), every agent answered" facts_registry
row "  of which inside the command (connect → last answer)" facts_registry_inside
row "  CPU ms per call" facts_registry_cpu
row "\`conductor facts --broadcast --expect $AGENTS\` (discovery before the registry)" facts_broadcast
row "  of which inside the command" facts_broadcast_inside
row "  CPU ms per call" facts_broadcast_cpu
row "\`conductor run --all -- true\` (registry), $AGENTS succeeded" run_registry
row "  CPU ms per call" run_registry_cpu
row "\`conductor run --all --broadcast --expect $AGENTS -- true\`" run_broadcast
row "  CPU ms per call" run_broadcast_cpu
row "coordinator (\`conductor serve\`) VmRSS" serve_rss
row "broker VmRSS (\`conductor broker\` / RabbitMQ's beam.smp)" broker_rss
row "agent processes, VmRSS summed" fleet_rss
row "load average after the bus's runs" load
