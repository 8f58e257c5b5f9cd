# Sourced by scripts/bench.sh and scripts/bench-persistent.sh: the release build, a
# private RabbitMQ (scripts/rabbitmq.sh on the ports and state dir the caller exported),
# a `conductor broker`, and stopping both on exit. The caller sets SCRATCH, BROKER_PORT
# and WORK (a fresh directory, removed on exit) before sourcing.

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    echo "bench: building release ($SCRATCH)" >&2
    swift build -c release --scratch-path "$SCRATCH" --product conductor >&2
fi
CONDUCTOR="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)/conductor"
[[ -x "$CONDUCTOR" ]] || { echo "bench: no binary at $CONDUCTOR" >&2; exit 1; }

BROKER_PID=""
bench_cleanup() {
    if [[ -n "$BROKER_PID" ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$BROKER_PID" 2>/dev/null || true
    fi
    scripts/rabbitmq.sh stop > /dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap bench_cleanup EXIT

echo "bench: starting RabbitMQ on 127.0.0.1:$CONDUCTOR_RABBITMQ_PORT" >&2
RABBITMQ_URL="$(scripts/rabbitmq.sh start)"

# bench_start_broker ARGS...: `conductor broker` on BROKER_PORT with ARGS; sets BROKER_URL.
bench_start_broker() {
    echo "bench: starting conductor broker on 127.0.0.1:$BROKER_PORT $*" >&2
    "$CONDUCTOR" broker --listen "127.0.0.1:$BROKER_PORT" "$@" --log-level error > "$WORK/broker.out" 2> "$WORK/broker.err" &
    BROKER_PID=$!
    for _ in $(seq 1 100); do
        grep -q "listening on" "$WORK/broker.out" 2>/dev/null && break
        kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/broker.err" >&2; exit 1; }
        sleep 0.1
    done
    grep -q "listening on" "$WORK/broker.out" || { echo "bench: broker did not start" >&2; exit 1; }
    BROKER_URL="amqp://guest:guest@127.0.0.1:$BROKER_PORT/%2F"
}
