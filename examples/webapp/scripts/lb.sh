#!/bin/sh
# The load balancer: an HTTP proxy on $listen:$port, started in the background, that
# sends each request to the next of $backends (a JSON list of web addresses, all on
# $backend_port) in turn, skipping one that does not answer. The service succeeds once
# the balancer started here answers (its pid in X-Balancer) and requests through it
# have reached every backend, each answering with its own address.
set -eu
workdir="${CONDUCTOR_WORK_DIR:-${TMPDIR:-/tmp}/conductor-webapp-lb-$listen-$port}"
mkdir -p "$workdir"
cat > "$workdir/lb.py" <<'PY'
import http.client, http.server, itertools, json, os, threading
backends = json.loads(os.environ["backends"])
backend_port = int(os.environ["backend_port"])
turns = itertools.count()
turns_lock = threading.Lock()
# Headers about one hop, not the request: the proxy sets its own.
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
       "transfer-encoding", "upgrade", "content-length", "server", "date"}
class Handler(http.server.BaseHTTPRequestHandler):
    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP}
        with turns_lock:
            first = next(turns)
        errors = []
        for step in range(len(backends)):
            address = backends[(first + step) % len(backends)]
            connection = http.client.HTTPConnection(address, backend_port, timeout=10)
            try:
                connection.request(self.command, self.path, body, headers)
                response = connection.getresponse()
                data = response.read()
            except OSError as error:
                errors.append(f"{address}:{backend_port} ({error})")
                continue
            finally:
                connection.close()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Balancer", str(os.getpid()))
            self.send_header("X-Backend", f"{address}:{backend_port}")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            return
        self.send_error(502, "no backend answered: " + ", ".join(errors))
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = forward
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer((os.environ["listen"], int(os.environ["port"])), Handler).serve_forever()
PY
nohup python3 "$workdir/lb.py" > "$workdir/lb.log" 2>&1 &
pid=$!
echo "$pid" > "$workdir/lb.pid"
if python3 - "$pid" "$workdir/lb.log" <<'PY'; then exit 0; fi
import json, os, sys, time, urllib.request
pid, log = sys.argv[1], sys.argv[2]
listen, port = os.environ["listen"], os.environ["port"]
backends = json.loads(os.environ["backends"])
url = f"http://{listen}:{port}/"
def running():
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)
for _ in range(50):
    if not running():
        with open(log) as lines:
            fail(f"load balancer could not listen on {listen}:{port}: {(lines.read().strip().splitlines() or ['?'])[-1]}")
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            balancer = response.headers.get("X-Balancer")
    except OSError:
        time.sleep(0.1)
        continue
    if balancer != pid:
        fail(f"{listen}:{port} answers, but not the load balancer started here (pid {pid}): another server holds the port")
    break
else:
    fail(f"load balancer did not start on {listen}:{port}")
# Round robin: twice around reaches every backend, each answering "web <its address> …".
reached = {}
for _ in range(2 * len(backends)):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            reached.setdefault(response.read().decode().split()[1], response.headers.get("X-Backend"))
    except (OSError, IndexError) as error:
        fail(f"a request through the load balancer on {listen}:{port} failed: {error}")
missing = [address for address in backends if address not in reached]
if missing:
    fail(f"requests through {listen}:{port} never reached {', '.join(missing)} (only {', '.join(sorted(reached)) or 'none'})")
print(f"load balancer on {listen}:{port}: requests reach all {len(backends)} backends in turn")
PY
kill "$pid" 2>/dev/null || true
exit 1
