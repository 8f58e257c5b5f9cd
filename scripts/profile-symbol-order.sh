#!/usr/bin/env bash
# Regenerates scripts/conductor.order, the symbol ordering that scripts/build-release.sh
# gives the linker: every function of the `conductor` binary that an agent executes while
# it starts, connects and idles (heartbeats, fact refreshes), recorded with callgrind.
#
#   scripts/profile-symbol-order.sh [SECONDS]      (needs valgrind; default 40 s)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCRATCH="${CONDUCTOR_BENCH_SCRATCH_PATH:-.build-bench}"
scripts/build-release.sh --scratch-path "$SCRATCH" >/dev/null
BIN="$SCRATCH/release/conductor"
WORK="$(mktemp -d)"
BROKER_PID=""
cleanup() {
    [[ -n "$BROKER_PID" ]] && kill "$BROKER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
# valgrind cannot read the binary's DWARF; the symbol table is all it needs.
objcopy --strip-debug "$BIN" "$WORK/conductor"
"$BIN" broker --listen 127.0.0.1:0 --no-persistence >"$WORK/broker.out" 2>&1 &
BROKER_PID=$!
for _ in $(seq 50); do grep -qs listening "$WORK/broker.out" && break; sleep 0.1; done
PORT="$(grep -o '[0-9]*$' "$WORK/broker.out")"
timeout -s INT "${1:-40}" valgrind --tool=callgrind --demangle=no --compress-strings=no --dump-instr=no \
    --callgrind-out-file="$WORK/callgrind.out" "$WORK/conductor" agent \
    --broker "amqp://guest:guest@127.0.0.1:$PORT/%2F" --state-dir "$WORK/state" --facts-dir "$WORK/facts" \
    --trusted-user guest --log-level warning >"$WORK/agent.log" 2>&1 || true
awk '/^ob=/ { ob = substr($0, 4) } /^fn=/ { if (ob ~ /\/conductor$/) print substr($0, 4) }' "$WORK/callgrind.out" \
    | sort -u >scripts/conductor.order
echo "scripts/conductor.order: $(wc -l <scripts/conductor.order) functions"
