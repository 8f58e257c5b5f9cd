#!/usr/bin/env python3
"""One timed `conductor launch --exit-when-configured --json` for the launch benchmarks
(scripts/bench-launch.sh, scripts/bench-ssh.sh).

    bench-timed-launch.py BINARY DEPLOYABLE STATE_DIR LABEL [EXTRA LAUNCH FLAGS...]

Prints one line: the label, seconds to "done: every member configured" (the stderr
progress line) and to exit (which includes stopping every agent), the exit code, and what
it sampled every 0.2 s while the launch ran: the agents' summed and largest VmRSS (agents
that are children of the launch), their number, and the coordinator's open descriptors.
The progress, time-stamped, goes to progress-LABEL.log next to STATE_DIR.

    bench-timed-launch.py --summary LABEL < lines

reads such lines and prints the median, min and max seconds to configured.
"""
import re, statistics
import os, subprocess, sys, threading, time
if sys.argv[1] == "--summary":
    label = sys.argv[2]
    values = [float(m.group(1)) for m in map(re.compile(r"configured=([0-9.]+)s").search, sys.stdin) if m]
    if values:
        print(f"{label}: {len(values)} configured runs, median {statistics.median(values):.2f} s, "
              f"min {min(values):.2f} s, max {max(values):.2f} s")
    else:
        print(f"{label}: no run configured")
    sys.exit(0)

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
