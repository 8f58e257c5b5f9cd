#!/usr/bin/env bash
# Agent speed and memory (issue 3): idle RSS of one `conductor agent`, and a fact query
# answered by 100 agents. The release build users install (scripts/build-release.sh);
# results go into docs/benchmarks.md by hand.
#
#   scripts/bench-agent.sh [AGENTS] [QUERIES]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCRATCH="${CONDUCTOR_BENCH_SCRATCH_PATH:-.build-bench}"
scripts/build-release.sh --scratch-path "$SCRATCH" >/dev/null
BIN="$SCRATCH/release/conductor"
WORK="$(mktemp -d)"
BROKER_PID=""; AGENT_PID=""
cleanup() {
    [[ -n "$AGENT_PID" ]] && kill "$AGENT_PID" 2>/dev/null || true
    [[ -n "$BROKER_PID" ]] && kill "$BROKER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" broker --listen 127.0.0.1:0 --no-persistence >"$WORK/broker.out" 2>&1 &
BROKER_PID=$!
for _ in $(seq 50); do grep -qs listening "$WORK/broker.out" && break; sleep 0.1; done
PORT="$(grep -o '[0-9]*$' "$WORK/broker.out")"
"$BIN" agent --broker "amqp://guest:guest@127.0.0.1:$PORT/%2F" --state-dir "$WORK/state" --facts-dir "$WORK/facts" \
    --trusted-user guest --log-level warning &
AGENT_PID=$!
sleep "${CONDUCTOR_BENCH_IDLE_SECONDS:-10}"
echo "idle agent: $(grep VmRSS /proc/$AGENT_PID/status | tr -s ' \t' ' ') (VmHWM $(grep VmHWM /proc/$AGENT_PID/status | awk '{print $2, $3}'))"
kill -TERM "$AGENT_PID"; wait "$AGENT_PID" || true; AGENT_PID=""
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""

"$BIN" bench-agents --agents "${1:-100}" --queries "${2:-20}"
