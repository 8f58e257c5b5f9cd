#!/bin/sh
# A web server: checks that the database accepts its password, then serves
# "web <address> (pid <pid>): db ok" over HTTP on $listen:$port in the background. The
# service succeeds once the server started here answers with its own pid: a port that
# answers for someone else (another deployment's web server) fails it.
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
        body = f"web {os.environ['listen']} (pid {os.getpid()}): db ok\n".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer((os.environ["listen"], int(os.environ["port"])), Handler).serve_forever()
PY
nohup python3 "$workdir/web.py" > "$workdir/web.log" 2>&1 &
pid=$!
echo "$pid" > "$workdir/web.pid"
for _ in $(seq 1 50); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "web server could not listen on $listen:$port: $(tail -n 1 "$workdir/web.log")" >&2
    exit 1
  fi
  answer=$(python3 - "$listen" "$port" <<'PY' 2>/dev/null || true
import sys, urllib.request
with urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/", timeout=0.5) as response:
    print(response.read().decode().strip())
PY
)
  case "$answer" in
    "web $listen (pid $pid): db ok")
      echo "web listening on $listen:$port (pid $pid), database $db_host:$db_port accepted the password"
      exit 0 ;;
    ?*)
      echo "$listen:$port answers, but not the web server started here (pid $pid; it said '$answer'): another server holds the port" >&2
      kill "$pid" 2>/dev/null || true
      exit 1 ;;
  esac
  sleep 0.1
done
echo "web server did not start on $listen:$port" >&2
exit 1
