#!/usr/bin/env bash
# Remote run speed (issue 5): `conductor run` across AGENTS agents must return every result
# in under 1 second. Two measurements on the release build users install:
#   1. the engine (RemoteRunner, what `conductor run` uses) in the `bench-agents` process,
#      RUNS times, discovery included, process start not counted;
#   2. the `conductor run --all --expect AGENTS -- true` binary against those same agents,
#      wall time including its process start and bus connection.
# Results go into docs/benchmarks.md by hand.
#
#   scripts/bench-run.sh [AGENTS] [RUNS]
#   CONDUCTOR_BENCH_BIN=path/to/conductor scripts/bench-run.sh   # skip the release build
#   CONDUCTOR_BENCH_BROKER_URL=amqp://... scripts/bench-run.sh     # on that bus (e.g. RabbitMQ), not a fresh `conductor broker`
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
AGENTS="${1:-100}"
RUNS="${2:-20}"
if [[ -n "${CONDUCTOR_BENCH_BIN:-}" ]]; then
    BIN="$CONDUCTOR_BENCH_BIN"
else
    SCRATCH="${CONDUCTOR_BENCH_SCRATCH_PATH:-.build-bench}"
    scripts/build-release.sh --scratch-path "$SCRATCH" >/dev/null
    BIN="$SCRATCH/release/conductor"
fi
WORK="$(mktemp -d)"
BROKER_PID=""; FLEET_PID=""
cleanup() {
    [[ -n "$FLEET_PID" ]] && kill "$FLEET_PID" 2>/dev/null || true
    [[ -n "$BROKER_PID" ]] && kill "$BROKER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -n "${CONDUCTOR_BENCH_BROKER_URL:-}" ]]; then
    URL="$CONDUCTOR_BENCH_BROKER_URL"
else
    "$BIN" broker --listen 127.0.0.1:0 --no-persistence --log-level warning >"$WORK/broker.out" 2>&1 &
    BROKER_PID=$!
    for _ in $(seq 100); do grep -qs listening "$WORK/broker.out" && break; sleep 0.1; done
    PORT="$(grep -o '[0-9]*$' "$WORK/broker.out" | head -n 1)"
    URL="amqp://guest:guest@127.0.0.1:$PORT/%2F"
fi

# 1. The engine, and then the agents stay up for the CLI.
"$BIN" bench-agents --broker "$URL" --agents "$AGENTS" --queries 0 --runs "$RUNS" --hold 600 >"$WORK/fleet.out" 2>&1 &
FLEET_PID=$!
for _ in $(seq 1200); do grep -qs "agents ready" "$WORK/fleet.out" && break; kill -0 "$FLEET_PID" 2>/dev/null || break; sleep 0.1; done
grep -q "agents ready" "$WORK/fleet.out" || { echo "bench-agents did not get ready:"; cat "$WORK/fleet.out"; exit 1; }
grep "runs of" "$WORK/fleet.out"

# 2. The binary, wall time per call (milliseconds).
TIMES=()
for _ in $(seq "$RUNS"); do
    START=$(date +%s%N)
    "$BIN" run --broker "$URL" --all --expect "$AGENTS" --json -- true >"$WORK/run.json" 2>"$WORK/run.err" \
        || { echo "conductor run failed:"; cat "$WORK/run.err"; exit 1; }
    END=$(date +%s%N)
    TIMES+=($(( (END - START) / 1000000 )))
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; assert len(s["succeeded"]) == int(sys.argv[2]), s' "$WORK/run.json" "$AGENTS"
done
printf '%s\n' "${TIMES[@]}" | sort -n | awk -v agents="$AGENTS" '{ t[NR] = $1 } END {
    printf "%d agents, %d runs of `conductor run --all --expect %d -- true`: median %d ms, p95 %d ms, max %d ms (wall, process start included)\n",
        agents, NR, agents, t[int((NR + 1) / 2)], t[int(NR * 0.95 + 0.999)], t[NR] }'
