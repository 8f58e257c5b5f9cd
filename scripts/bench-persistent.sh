#!/usr/bin/env bash
# Persistent messages with publisher confirms, the embedded broker vs RabbitMQ side by side.
#
#   scripts/bench-persistent.sh      # build release, run, print a markdown table
#
# Both brokers write to disk: RabbitMQ (scripts/rabbitmq.sh on its own ports and state
# dir) with a durable queue, `conductor broker --data-dir` (a fresh temporary directory)
# likewise. `conductor perf-test --persistent` declares the queue durable and publishes
# delivery-mode-2 messages; every producer keeps at most BENCH_CONFIRM unconfirmed, so
# the rate is bounded by how fast each broker gets messages onto disk (fsync) and
# confirms them. Runs alternate between the brokers so background load hits both alike.
# Our broker runs without its per-queue and body-bytes flow limits (--queue-max-ready 0
# --max-memory 0), as RabbitMQ has none: the publish-only run would otherwise stop at
# 50,000 ready messages (docs/broker.md, "Flow control"); the memory watermark stays.
#
# Environment:
#   BENCH_SECONDS (10)          length of each run
#   BENCH_SIZE (1024)           message size in bytes
#   BENCH_CONFIRM (500)         unconfirmed messages allowed per producer
#   BENCH_SCRATCH (.build-bench) swift build scratch path
#   BENCH_BROKER_PORT (5693)    our broker's port
#   BENCH_RABBITMQ_PORT (5692), BENCH_RABBITMQ_DIST_PORT (25692), BENCH_RABBITMQ_EPMD_PORT (4392)
#   BENCH_SKIP_BUILD=1          use the binary already built in BENCH_SCRATCH
set -euo pipefail

cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
SIZE="${BENCH_SIZE:-1024}"
CONFIRM="${BENCH_CONFIRM:-500}"
SCRATCH="${BENCH_SCRATCH:-.build-bench}"
BROKER_PORT="${BENCH_BROKER_PORT:-5693}"
export CONDUCTOR_RABBITMQ_PORT="${BENCH_RABBITMQ_PORT:-5692}"
export CONDUCTOR_RABBITMQ_DIST_PORT="${BENCH_RABBITMQ_DIST_PORT:-25692}"
export CONDUCTOR_RABBITMQ_EPMD_PORT="${BENCH_RABBITMQ_EPMD_PORT:-4392}"
export CONDUCTOR_RABBITMQ_NODENAME="conductor-bench-persistent@localhost"
export CONDUCTOR_RABBITMQ_DIR="${TMPDIR:-/tmp}/conductor-bench-persistent-rabbitmq"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/conductor-bench-persistent.XXXXXX")"

source scripts/bench-common.sh
bench_start_broker --data-dir "$WORK/data" --queue-max-ready 0 --max-memory 0

# run NAME URL ARGS...: one perf-test run, its JSON report in $WORK/NAME.json.
run() {
    local name=$1 url=$2
    shift 2
    echo "bench: $name: perf-test $*" >&2
    "$CONDUCTOR" perf-test --url "$url" --persistent --size "$SIZE" --confirm "$CONFIRM" --prefetch 1000 \
        --time "$SECONDS_PER_RUN" --queue "bench-persistent-$name" --json "$@" > "$WORK/$name.json"
}

for test in 1p1c 4p1c 1p0c; do
    case $test in
        1p1c) args=(--producers 1 --consumers 1) ;;
        4p1c) args=(--producers 4 --consumers 1) ;;
        1p0c) args=(--producers 1 --consumers 0) ;;
    esac
    run "rabbitmq-$test" "$RABBITMQ_URL" "${args[@]}"
    run "conductor-$test" "$BROKER_URL" "${args[@]}"
done
LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
DISK="$(df -P "$WORK" | awk 'NR==2 {print $1}')"

python3 - "$WORK" "$SIZE" "$CONFIRM" "$SECONDS_PER_RUN" "$(nproc)" "$LOAD" "$DISK" <<'PY'
import json, sys
work, size, confirm, seconds, cores, loadavg, disk = sys.argv[1:8]
def load(name):
    with open(f"{work}/{name}.json") as f:
        return json.load(f)
tests = (("1p1c", "1 producer, 1 consumer"), ("4p1c", "4 producers, 1 consumer"), ("1p0c", "1 producer, no consumer"))
print(f"{size}-byte persistent messages (delivery mode 2) to a durable queue, publisher confirms with at most "
      f"{confirm} unconfirmed per producer, consumers ack with prefetch 1000, {seconds} s per run, {cores} cores "
      f"(load average at the end: {loadavg}; file system {disk}).")
print()
print("| test | RabbitMQ confirmed msg/s (received) | conductor broker confirmed msg/s (received) | conductor / RabbitMQ |")
print("| --- | --- | --- | --- |")
for key, label in tests:
    rab, con = load(f"rabbitmq-{key}"), load(f"conductor-{key}")
    def rate(report):
        return report["confirmRate"]
    ratio = f"{rate(con) / rate(rab):.2f}x" if rate(rab) else "n/a"
    print(f"| {label} | {rate(rab):,.0f} ({rab['receiveRate']:,.0f}) | {rate(con):,.0f} ({con['receiveRate']:,.0f}) | {ratio} |")
PY
