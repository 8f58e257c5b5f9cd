#!/bin/sh
# A web server: checks that the database accepts its password, then serves
# "web <address>: db ok" over HTTP on $listen:$port in the background.
set -eu
answer=$(python3 - <<'PY'
import os, socket
with socket.create_connection((os.environ["db_host"], int(os.environ["db_port"])), 5) as s:
    s.sendall(os.environ["db_password"].encode() + b"\n")
    print(s.makefile().readline().strip())
PY
)
if [ "$answer" != "OK" ]; then
  echo "database at $db_host:$db_port refused the password ($answer)" >&2
  exit 1
fi
workdir="${CONDUCTOR_WORK_DIR:-${TMPDIR:-/tmp}/conductor-webapp-web-$listen-$port}"
mkdir -p "$workdir"
cat > "$workdir/web.py" <<'PY'
import os, http.server
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"web {os.environ['listen']}: db ok\n".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer((os.environ["listen"], int(os.environ["port"])), Handler).serve_forever()
PY
nohup python3 "$workdir/web.py" > "$workdir/web.log" 2>&1 &
echo $! > "$workdir/web.pid"
for _ in $(seq 1 50); do
  if python3 -c "import socket; socket.create_connection(('$listen', $port), 0.2)" 2>/dev/null; then
    echo "web listening on $listen:$port, database $db_host:$db_port accepted the password"
    exit 0
  fi
  sleep 0.1
done
echo "web server did not start on $listen:$port" >&2
exit 1
