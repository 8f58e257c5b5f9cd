#!/bin/sh
# The database: a tiny TCP server on $listen:$port that answers "OK" to the right
# password, "DENIED" to anything else, and "db <pid>" to "WHO". Started in the
# background; the service succeeds once the server started here answers "WHO" with its
# own pid: a port that answers for someone else (another deployment's database) fails it.
set -eu
workdir="${CONDUCTOR_WORK_DIR:-${TMPDIR:-/tmp}/conductor-webapp-db-$listen-$port}"
mkdir -p "$workdir"
cat > "$workdir/db.py" <<'PY'
import os, socketserver
class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().decode().strip()
        if line == "WHO":
            self.wfile.write(f"db {os.getpid()}\n".encode())
        else:
            self.wfile.write(b"OK\n" if line == os.environ["password"] else b"DENIED\n")
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
Server((os.environ["listen"], int(os.environ["port"])), Handler).serve_forever()
PY
nohup python3 "$workdir/db.py" > "$workdir/db.log" 2>&1 &
pid=$!
echo "$pid" > "$workdir/db.pid"
for _ in $(seq 1 50); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "database could not listen on $listen:$port: $(tail -n 1 "$workdir/db.log")" >&2
    exit 1
  fi
  answer=$(python3 - "$listen" "$port" <<'PY' 2>/dev/null || true
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), 0.5) as s:
    s.sendall(b"WHO\n")
    print(s.makefile().readline().strip())
PY
)
  if [ "$answer" = "db $pid" ]; then
    echo "database listening on $listen:$port (pid $pid, log level $log_level)"
    exit 0
  elif [ -n "$answer" ]; then
    echo "$listen:$port answers, but not the database started here (pid $pid; it said '$answer'): another server holds the port" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
  fi
  sleep 0.1
done
echo "database did not start on $listen:$port" >&2
exit 1
