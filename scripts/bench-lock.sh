#!/usr/bin/env bash
# Lock latency through the client API (process start not counted), side by side with etcd.
#
#   scripts/bench-lock.sh [CONDUCTOR_BINARY]      # default: .build/release/conductor
#
# 1. `conductor lock bench`: an in-process coordinator with a SQLite state store on an
#    embedded broker (127.0.0.1), two clients: uncontended acquire+release p50/p99 and the
#    handoff to a waiting client (release sent -> waiter's grant received) p50/p99, and the
#    store's grant write timed alone (store_grant_write_*). Then the same with the locks
#    in memory (--memory). With CONDUCTOR_RABBITMQ_URL set, the same against that RabbitMQ.
# 2. The CLI as a recipe calls it: `conductor signal` and `conductor lock -- true`, wall time
#    including process start, through a local agent's socket and straight to the bus.
# 3. etcd (when `etcd` is installed: apt-get install -y etcd-server etcd-client): a
#    single-member etcd on 127.0.0.1 with a temporary data dir, and the same two
#    measurements through its v3 lock API (the JSON gateway, one kept-alive HTTP connection
#    per client, one lease), from Python.
# Results go to stdout; copy them into docs/benchmarks.md ("Locks").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$ROOT/.build/release/conductor}"
CYCLES="${CYCLES:-2000}"
HANDOFFS="${HANDOFFS:-500}"
[[ -x "$BIN" ]] || { echo "bench-lock.sh: no conductor binary at $BIN (swift build -c release first)" >&2; exit 2; }

echo "== conductor (embedded broker, SQLite store): $CYCLES cycles, $HANDOFFS handoffs"
timeout 300 "$BIN" lock bench --cycles "$CYCLES" --handoffs "$HANDOFFS"
echo "== conductor (embedded broker, locks in memory: the difference is the store's share)"
timeout 300 "$BIN" lock bench --memory --cycles "$CYCLES" --handoffs "$HANDOFFS"
if [[ -n "${CONDUCTOR_RABBITMQ_URL:-}" ]]; then
    echo "== conductor (RabbitMQ $CONDUCTOR_RABBITMQ_URL, SQLite store)"
    timeout 300 "$BIN" lock bench --broker "$CONDUCTOR_RABBITMQ_URL" --cycles "$CYCLES" --handoffs "$HANDOFFS"
fi

# The CLI from a recipe: wall time of `conductor signal` (process start included) through a
# local agent's socket and straight to the bus, on a `conductor broker` + `conductor serve`.
CLI_DIR="$(mktemp -d /tmp/bench-lock-cli.XXXXXX)"
"$BIN" broker --listen 127.0.0.1:0 --no-persistence --log-level warning > "$CLI_DIR/broker.out" 2>&1 &
BROKER_PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$CLI_DIR/broker.out" 2>/dev/null && break; sleep 0.1; done
CLI_PORT=$(grep -o "listening on amqp://[^ ]*" "$CLI_DIR/broker.out" | head -1 | awk -F: '{print $NF}')
export CONDUCTOR_BROKER_URL="amqp://guest:guest@127.0.0.1:$CLI_PORT/%2F" CONDUCTOR_COORDINATOR_SCOPE=bench
"$BIN" serve --broker "$CONDUCTOR_BROKER_URL" --scope bench --state-dir "$CLI_DIR/state" --watch-interval 0 > "$CLI_DIR/serve.out" 2>&1 &
SERVE_PID=$!
"$BIN" agent --broker "$CONDUCTOR_BROKER_URL" --state-dir "$CLI_DIR/agent" --instance-id bench-agent --log-level error > "$CLI_DIR/agent.out" 2>&1 &
AGENT_PID=$!
for _ in $(seq 1 100); do [[ -S "$CLI_DIR/agent/agent.sock" ]] && "$BIN" lock status probe >/dev/null 2>&1 && break; sleep 0.1; done
time_calls() {  # median wall ms of 30 calls of "$@"
    python3 - "$@" <<'PY'
import subprocess, sys, time
times = []
for _ in range(30):
    started = time.perf_counter()
    subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
    times.append((time.perf_counter() - started) * 1000)
times.sort()
print(f"{times[len(times) // 2]:.1f}")
PY
}
echo "== the CLI, wall time per call including process start (median of 30)"
echo -e "signal_via_agent_socket_ms\t$(CONDUCTOR_AGENT_SOCKET="$CLI_DIR/agent/agent.sock" time_calls "$BIN" signal bench --global)"
echo -e "signal_via_bus_ms\t$(time_calls "$BIN" signal bench --global --no-agent)"
echo -e "lock_true_via_agent_socket_ms\t$(CONDUCTOR_AGENT_SOCKET="$CLI_DIR/agent/agent.sock" time_calls "$BIN" lock bench-cli -- true)"
echo -e "lock_true_via_bus_ms\t$(time_calls "$BIN" lock bench-cli --no-agent -- true)"
kill "$AGENT_PID" "$SERVE_PID" 2>/dev/null; wait "$AGENT_PID" "$SERVE_PID" 2>/dev/null
kill "$BROKER_PID" 2>/dev/null; wait "$BROKER_PID" 2>/dev/null
rm -rf "$CLI_DIR"
unset CONDUCTOR_BROKER_URL CONDUCTOR_COORDINATOR_SCOPE

if ! command -v etcd >/dev/null; then
    echo "== etcd: not installed (apt-get install -y etcd-server etcd-client), skipped"
    exit 0
fi
DATA="$(mktemp -d /tmp/bench-lock-etcd.XXXXXX)"
PORT=$(( 23790 + RANDOM % 1000 ))
PEER=$(( PORT + 1000 ))
etcd --name bench --data-dir "$DATA" \
    --listen-client-urls "http://127.0.0.1:$PORT" --advertise-client-urls "http://127.0.0.1:$PORT" \
    --listen-peer-urls "http://127.0.0.1:$PEER" --initial-advertise-peer-urls "http://127.0.0.1:$PEER" \
    --initial-cluster "bench=http://127.0.0.1:$PEER" > "$DATA/etcd.log" 2>&1 &
ETCD=$!
trap 'kill $ETCD 2>/dev/null; wait $ETCD 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    sleep 0.1
done
echo "== etcd $(etcd --version | head -1 | awk '{print $3}') (single member, 127.0.0.1, v3 lock API via the JSON gateway): $CYCLES cycles, $HANDOFFS handoffs"
timeout 300 python3 - "$PORT" "$CYCLES" "$HANDOFFS" <<'PY'
import base64, http.client, json, sys, threading, time

port, cycles, handoffs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

class Client:
    def __init__(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
    def post(self, path, body):
        self.conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {data[:200]}")
        return json.loads(data)

def b64(text):
    return base64.b64encode(text.encode()).decode()

def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, round((len(values) - 1) * p))] * 1000

first, second = Client(), Client()
lease1 = first.post("/v3/lease/grant", {"TTL": 60})["ID"]
lease2 = second.post("/v3/lease/grant", {"TTL": 60})["ID"]
name = b64("bench")
for _ in range(100):
    key = first.post("/v3/lock/lock", {"name": name, "lease": lease1})["key"]
    first.post("/v3/lock/unlock", {"key": key})
cycle_times = []
for _ in range(cycles):
    started = time.perf_counter()
    key = first.post("/v3/lock/lock", {"name": name, "lease": lease1})["key"]
    first.post("/v3/lock/unlock", {"key": key})
    cycle_times.append(time.perf_counter() - started)

handoff_times = []
handoff = b64("handoff")
for _ in range(handoffs):
    held = first.post("/v3/lock/lock", {"name": handoff, "lease": lease1})["key"]
    got = {}
    def waiter():
        got["key"] = second.post("/v3/lock/lock", {"name": handoff, "lease": lease2})["key"]
        got["at"] = time.perf_counter()
    thread = threading.Thread(target=waiter)
    thread.start()
    # The waiter is queued once its key exists under the lock's prefix (2 keys).
    prefix = base64.b64decode(handoff) + b"/"
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    while int(first.post("/v3/kv/range", {"key": b64(prefix.decode()), "range_end": base64.b64encode(end).decode(), "count_only": True}).get("count", 0)) < 2:
        pass
    released = time.perf_counter()
    first.post("/v3/lock/unlock", {"key": held})
    thread.join()
    handoff_times.append(got["at"] - released)
    second.post("/v3/lock/unlock", {"key": got["key"]})

print(f"acquire_release_p50_ms\t{percentile(cycle_times, 0.5):.3f}")
print(f"acquire_release_p99_ms\t{percentile(cycle_times, 0.99):.3f}")
print(f"handoff_p50_ms\t{percentile(handoff_times, 0.5):.3f}")
print(f"handoff_p99_ms\t{percentile(handoff_times, 0.99):.3f}")
PY
