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
    python3 - "$BIN" "$file" "$state" "$label" "$@" <<'PY'
import os, subprocess, sys, threading, time
binary, file, state, label, *extra = sys.argv[1:]
cmd = [binary, "launch", file, "--state-dir", state, "--exit-when-configured", "--json", *extra]
start = time.monotonic()
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
configured_at = None
last_lines = []
samples = {"rss_total": 0, "rss_max": 0, "agents": 0, "fds": 0}

def children(pid):  # the agents: direct children of the launch process (any thread's)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found

def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

def sample():
    while proc.poll() is None:
        agents = children(proc.pid)
        rss = [rss_kib(p) for p in agents]
        try:
            fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
        except OSError:
            fds = 0
        samples["rss_total"] = max(samples["rss_total"], sum(rss))
        samples["rss_max"] = max(samples["rss_max"], max(rss, default=0))
        samples["agents"] = max(samples["agents"], len(agents))
        samples["fds"] = max(samples["fds"], fds)
        time.sleep(0.2)

threading.Thread(target=sample, daemon=True).start()
with open(os.path.join(os.path.dirname(state) or ".", f"progress-{label}.log"), "w") as log:
    for line in proc.stderr:
        log.write(f"{time.monotonic() - start:8.3f} {line}")
        last_lines = (last_lines + [line.rstrip()])[-3:]
        if configured_at is None and "done: every member configured" in line:
            configured_at = time.monotonic() - start
code = proc.wait()
exited_at = time.monotonic() - start
c = f"{configured_at:.2f}" if configured_at is not None else "NA"
print(f"{label} configured={c}s exit={exited_at:.2f}s rc={code} agents={samples['agents']} "
      f"rss_total={samples['rss_total'] / 1024:.0f}MiB rss_max={samples['rss_max'] / 1024:.1f}MiB "
      f"coordinator_fds={samples['fds']}", flush=True)
if configured_at is None:
    print("  last progress: " + " | ".join(last_lines), flush=True)
PY
}

summary() {  # label + lines from timed_launch on stdin -> median/max of configured=
    python3 -c '
import re, statistics, sys
label = sys.argv[1]
values = [float(m.group(1)) for m in map(re.compile(r"configured=([0-9.]+)s").search, sys.stdin) if m]
if values:
    print(f"{label}: {len(values)} configured runs, median {statistics.median(values):.2f} s, "
          f"min {min(values):.2f} s, max {max(values):.2f} s")
else:
    print(f"{label}: no run configured")
' "$1"
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
