#!/usr/bin/env bash
# Side-by-side benchmark of the embedded broker and RabbitMQ with `conductor perf-test`.
#
#   scripts/bench.sh            # build release, run everything, print a markdown table
#
# Builds `conductor` in release mode, starts a private RabbitMQ (scripts/rabbitmq.sh on
# its own ports and state dir) and `conductor broker`, and runs against each, one after
# the other so they never compete with each other:
#   - throughput: 1 producer, 1 consumer, prefetch 1000, unlimited rate, 16 B and 1 KiB;
#   - latency: the same at a fixed --rate (publish-to-delivery p50/p99).
# Both brokers are stopped on exit. See docs/benchmarks.md for results and caveats.
#
# Environment:
#   BENCH_SECONDS (10)          length of each run
#   BENCH_RATE (10000)          messages/s of the latency run
#   BENCH_SCRATCH (.build-bench) swift build scratch path
#   BENCH_BROKER_PORT (5691)    our broker's port
#   BENCH_RABBITMQ_PORT (5690), BENCH_RABBITMQ_DIST_PORT (25690), BENCH_RABBITMQ_EPMD_PORT (4390)
#   BENCH_SKIP_BUILD=1          use the binary already built in BENCH_SCRATCH
set -euo pipefail

cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
RATE="${BENCH_RATE:-10000}"
SCRATCH="${BENCH_SCRATCH:-.build-bench}"
BROKER_PORT="${BENCH_BROKER_PORT:-5691}"
export CONDUCTOR_RABBITMQ_PORT="${BENCH_RABBITMQ_PORT:-5690}"
export CONDUCTOR_RABBITMQ_DIST_PORT="${BENCH_RABBITMQ_DIST_PORT:-25690}"
export CONDUCTOR_RABBITMQ_EPMD_PORT="${BENCH_RABBITMQ_EPMD_PORT:-4390}"
export CONDUCTOR_RABBITMQ_NODENAME="conductor-bench@localhost"
export CONDUCTOR_RABBITMQ_DIR="${TMPDIR:-/tmp}/conductor-bench-rabbitmq"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/conductor-bench.XXXXXX")"

source scripts/bench-common.sh
bench_start_broker --no-persistence

# run NAME URL ARGS...: one perf-test run, its JSON report in $WORK/NAME.json.
run() {
    local name=$1 url=$2
    shift 2
    echo "bench: $name: perf-test $*" >&2
    "$CONDUCTOR" perf-test --url "$url" --producers 1 --consumers 1 --prefetch 1000 \
        --time "$SECONDS_PER_RUN" --queue "bench-$name" --json "$@" > "$WORK/$name.json"
}

# Each test runs against both brokers back to back, so a change in background load
# during the benchmark affects both sides of a comparison alike.
for test in 16 1024 latency; do
    case $test in
        latency) args=(--size 16 --rate "$RATE") ;;
        *) args=(--size "$test") ;;
    esac
    run "rabbitmq-$test" "$RABBITMQ_URL" "${args[@]}"
    run "conductor-$test" "$BROKER_URL" "${args[@]}"
done
LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"

CORES=$(nproc)
python3 - "$WORK" "$RATE" "$SECONDS_PER_RUN" "$CORES" "$LOAD" <<'EOF'
import json, sys
work, rate, seconds, cores, loadavg = sys.argv[1:6]
def load(name):
    with open(f"{work}/{name}.json") as f:
        return json.load(f)
r = {b: {k: load(f"{b}-{k}") for k in ("16", "1024", "latency")} for b in ("rabbitmq", "conductor")}
def ratio(a, b):
    return f"{a / b:.2f}x" if b else "n/a"
def rate_row(label, key):
    rab, con = r["rabbitmq"][key], r["conductor"][key]
    return (f"| {label} | {rab['receiveRate']:,.0f} ({rab['publishRate']:,.0f}) "
            f"| {con['receiveRate']:,.0f} ({con['publishRate']:,.0f}) "
            f"| {ratio(con['receiveRate'], rab['receiveRate'])} |")
def lat(b, p, key="latency"):
    l = r[b][key].get("latencyMicroseconds")
    return l[p] if l else float("nan")
print(f"1 producer, 1 consumer, prefetch 1000, {seconds} s per run, {cores} cores shared by broker and perf-test "
      f"(load average at the end: {loadavg}).")
print()
print("| test | RabbitMQ | conductor broker | conductor / RabbitMQ |")
print("| --- | --- | --- | --- |")
print(rate_row("16 B, unlimited: received msg/s (sent)", "16"))
print(rate_row("1 KiB, unlimited: received msg/s (sent)", "1024"))
for p in ("p50", "p95", "p99"):
    a, b = lat("rabbitmq", p), lat("conductor", p)
    print(f"| 16 B at {int(rate):,} msg/s: {p} latency µs | {a:,.0f} | {b:,.0f} | {ratio(b, a)} |")
for key, label in (("16", "16 B"), ("1024", "1 KiB")):
    a, b = lat("rabbitmq", "p50", key), lat("conductor", "p50", key)
    print(f"| {label}, unlimited: p50 latency µs (queue + socket buffers) | {a:,.0f} | {b:,.0f} | {ratio(b, a)} |")
print(f"| 16 B at {int(rate):,} msg/s: received msg/s | {r['rabbitmq']['latency']['receiveRate']:,.0f} "
      f"| {r['conductor']['latency']['receiveRate']:,.0f} | |")
EOF
