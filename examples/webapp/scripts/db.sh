#!/bin/sh
# The database: a tiny TCP server on $listen:$port that answers "OK" to the right
# password and "DENIED" to anything else. Started in the background; the service
# succeeds once the port answers.
set -eu
workdir="${CONDUCTOR_WORK_DIR:-${TMPDIR:-/tmp}/conductor-webapp-db-$listen-$port}"
mkdir -p "$workdir"
cat > "$workdir/db.py" <<'PY'
import os, socket, socketserver
class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().decode().strip()
        self.wfile.write(b"OK\n" if line == os.environ["password"] else b"DENIED\n")
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
Server((os.environ["listen"], int(os.environ["port"])), Handler).serve_forever()
PY
nohup python3 "$workdir/db.py" > "$workdir/db.log" 2>&1 &
echo $! > "$workdir/db.pid"
for _ in $(seq 1 50); do
  if python3 -c "import socket,sys; socket.create_connection(('$listen', $port), 0.2)" 2>/dev/null; then
    echo "database listening on $listen:$port (log level $log_level)"
    exit 0
  fi
  sleep 0.1
done
echo "database did not start on $listen:$port" >&2
exit 1
