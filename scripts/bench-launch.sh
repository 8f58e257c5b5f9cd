#!/usr/bin/env bash
# Launch speed (issue 4): how long `conductor launch --exit-when-configured` takes from the
# command's start until every member is configured, for
#   (a) examples/webapp (4 members; target: configured within 3 s), RUNS times, median/max;
#   (b) a generated chain of N local instances (target for 200: within 30 s): member i's
#       service runs `after:` member i-1's and takes i-1's address and service port as
#       parameters, so the N jobs run one after another and every reference must resolve.
# The release build users install (scripts/build-release.sh); results go into
# docs/benchmarks.md by hand.
#
#   scripts/bench-launch.sh [RUNS] [CHAIN_SIZE...]       # default: 5 runs, chain of 200
#   CONDUCTOR_BENCH_SCRATCH_PATH=.build-x scripts/bench-launch.sh 3 50 100 200
#
# For each launch it prints the time to "done: every member configured" (stderr progress
# line) and to process exit (which includes stopping every agent), and while the launch runs
# it samples every 0.2 s: the agents' summed and largest VmRSS, the number of agents, and the
# coordinator's open file descriptors.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${1:-5}"; shift || true
SIZES=("$@"); [[ ${#SIZES[@]} -gt 0 ]] || SIZES=(200)
SCRATCH="${CONDUCTOR_BENCH_SCRATCH_PATH:-.build-bench}"
if [[ -z "${CONDUCTOR_BENCH_NO_BUILD:-}" ]]; then
    scripts/build-release.sh --scratch-path "$SCRATCH" >/dev/null
fi
BIN="$ROOT/$SCRATCH/release/conductor"
# 200 agents: each holds a broker connection in the coordinator (which embeds the broker),
# plus its pipes and log file, so the coordinator needs well over 1024 descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# One timed launch. $1 = deployable, $2 = label, rest = extra launch flags.
# Prints one line: label, seconds to configured, seconds to exit, exit code, samples.
timed_launch() {
    local file="$1" label="$2"; shift 2
    local state="$WORK/state-$label-$RANDOM"
    python3 "$ROOT/scripts/bench-timed-launch.py" "$BIN" "$file" "$state" "$label" "$@"
}

summary() {  # label + lines from timed_launch on stdin -> median/max of configured=
    python3 "$ROOT/scripts/bench-timed-launch.py" --summary "$1"
}

echo "== (a) examples/webapp, $RUNS runs"
for i in $(seq "$RUNS"); do
    timed_launch "$ROOT/examples/webapp/deployable.yml" "webapp-$i"
done | tee "$WORK/webapp.txt"
summary webapp < "$WORK/webapp.txt"

# The chain: n0 … n(N-1), each one member on the local provider (127.0.0.2 …).
generate_chain() {
    local n="$1" dir="$2"
    mkdir -p "$dir"
    {
        echo "name: chain$n"
        echo "instances:"
        for ((i = 0; i < n; i++)); do
            echo "  n$i:"
            echo "    services:"
            echo "      s:"
            if ((i > 0)); then
                echo "        after: [n$((i - 1)).s]"
            fi
            echo "        script: |"
            if ((i == 0)); then
                echo "          echo \"n0 at \$listen:\$port\""
            else
                # The script checks what it got: the previous member's port, and an address.
                local want="127.0.0.$((i + 1))"; ((i - 1 < 250)) || want="\$prev_address"
                echo "          [ \"\$prev_address\" = $want ] && [ \"\$prev_port\" -eq $((20000 + i - 1)) ] || { echo \"wrong: \$prev_address:\$prev_port\" >&2; exit 1; }"
                echo "          echo \"n$i at \$listen:\$port after \$prev_address:\$prev_port\""
            fi
            echo "        parameters:"
            echo "          listen: \${self.ipaddress}"
            echo "          port: $((20000 + i))"
            if ((i > 0)); then
                echo "          prev_address: \${n$((i - 1)).ipaddress}"
                echo "          prev_port: \${n$((i - 1)).s.port}"
            fi
        done
    } > "$dir/deployable.yml"
}

for n in "${SIZES[@]}"; do
    generate_chain "$n" "$WORK/chain$n"
    echo "== (b) chain of $n local instances (validate: $("$BIN" validate "$WORK/chain$n/deployable.yml" >/dev/null 2>&1 && echo ok || echo FAILED))"
    # The budget is generous on purpose: this measures the time, it does not enforce 30 s.
    timed_launch "$WORK/chain$n/deployable.yml" "chain-$n" --wait-budget 600 --job-timeout 60
    if [[ -n "${CONDUCTOR_BENCH_KEEP_LOG:-}" ]]; then
        cp "$WORK/progress-chain-$n.log" "${CONDUCTOR_BENCH_KEEP_LOG}-chain-$n.log"
    fi
done
