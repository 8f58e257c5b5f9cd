#!/usr/bin/env bash
# Launch onto SSH hosts (issue 12): examples/webapp-ssh on four test hosts (scripts/testnet.sh,
# network namespaces with their own sshd), RUNS rounds of
#   cold: the hosts have no conductor binary (removed before the launch), so it is copied;
#   warm: the hosts have this binary (goal: configured within 5 s);
# and, side by side in the same run, examples/webapp on the local provider (the same four
# members as processes on this machine). Seconds from the command's start to "done: every
# member configured", median/min/max; release build (scripts/build-release.sh).
#
#   scripts/bench-ssh.sh [RUNS]              # default 5 rounds; needs root (namespaces)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${1:-5}"
SCRATCH="${CONDUCTOR_BENCH_SCRATCH_PATH:-.build-bench}"
if [[ -z "${CONDUCTOR_BENCH_NO_BUILD:-}" ]]; then
    scripts/build-release.sh --scratch-path "$SCRATCH" >/dev/null
fi
BIN="$ROOT/$SCRATCH/release/conductor"
NET=cbn
WORK="$(mktemp -d)"
cleanup() { scripts/testnet.sh down --name "$NET" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

scripts/testnet.sh up 4 --name "$NET" --subnet 10.231.50 >/dev/null
NETSTATE="/tmp/conductor-testnet-$NET"
cp -r examples/webapp examples/webapp-ssh "$WORK/"
mkdir -p "$WORK/webapp-ssh/environments"
cat > "$WORK/webapp-ssh/environments/bench.yml" <<YAML
providers:
  lab:
    hosts: [root@10.231.50.2, root@10.231.50.3, root@10.231.50.4, root@10.231.50.5]
    identity: $NETSTATE/id_ed25519
    known_hosts: $NETSTATE/known_hosts
YAML
SIZE=$(stat -c %s "$BIN")
echo "binary: $BIN ($((SIZE / 1048576)) MiB)"

timed() {  # label deployable extra...
    local label="$1" file="$2"; shift 2
    python3 "$ROOT/scripts/bench-timed-launch.py" "$BIN" "$file" "$WORK/state-$label" "$label" "$@"
}
for i in $(seq "$RUNS"); do
    for h in 1 2 3 4; do rm -rf "$NETSTATE/$NET-h$h/opt-conductor/bin"; done
    # --insecure: the numbers in docs/benchmarks.md were measured with a clear-text bus.
    timed "ssh-cold-$i" "$WORK/webapp-ssh/deployable.yml" --env bench --bus-listen 0.0.0.0 --insecure --wait-budget 120 | tee -a "$WORK/cold.txt"
    timed "ssh-warm-$i" "$WORK/webapp-ssh/deployable.yml" --env bench --bus-listen 0.0.0.0 --insecure --wait-budget 120 | tee -a "$WORK/warm.txt"
    timed "local-$i" "$WORK/webapp/deployable.yml" | tee -a "$WORK/local.txt"
done
echo "== summary ($RUNS rounds, $(nproc) cores)"
python3 scripts/bench-timed-launch.py --summary "webapp-ssh cold (binary copied to 4 hosts)" < "$WORK/cold.txt"
python3 scripts/bench-timed-launch.py --summary "webapp-ssh warm (binary on the hosts)" < "$WORK/warm.txt"
python3 scripts/bench-timed-launch.py --summary "webapp local provider (same binary)" < "$WORK/local.txt"
if [[ -n "${CONDUCTOR_BENCH_KEEP_LOG:-}" ]]; then cp "$WORK"/progress-*.log "$CONDUCTOR_BENCH_KEEP_LOG"/ 2>/dev/null || true; fi
