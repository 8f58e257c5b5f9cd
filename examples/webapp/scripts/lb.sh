#!/bin/sh
# The load balancer: $backends is a JSON list of web addresses; every one must answer
# on $backend_port, else the service fails naming the ones that did not.
set -eu
python3 - <<'PY'
import json, os, sys, urllib.request
backends = json.loads(os.environ["backends"])
port = int(os.environ["backend_port"])
failed = []
for address in backends:
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/", timeout=5) as response:
            print(response.read().decode().strip())
    except Exception as error:
        failed.append(f"{address}:{port} ({error})")
if failed:
    print("backends not answering: " + ", ".join(failed), file=sys.stderr)
    sys.exit(1)
print(f"load balancer: {len(backends)} backends healthy")
PY
