import Foundation

/// The POSIX shell scripts the SSH provider runs on a host (on stdin of `sh -s`, so no
/// secret appears in a process list). Each prints `conductor-ssh: WORD …` lines that
/// `SSHProvider` reads; everything else they print is for the operator's eyes.
///
/// Layout on the host, under the pool's `install_dir` (default /opt/conductor):
///
///     bin/conductor                   the binary, shared by every agent on the host
///     agents/<instance>/              0700, one per agent
///         agent.env                   0600: bus URL with its password, instance id, trusted keys
///         bus-ca.pem                  0644: the CA the agent verifies the bus with (a TLS bus)
///         supervise                   the supervisor (when systemd does not run)
///         agent.pid                   the supervisor's pid (its process group holds the agent)
///         agent.log, state/, facts.d/, work/
///
/// Where systemd runs (and the steps run as root), a unit
/// `/etc/systemd/system/conductor-agent-<instance>.service` takes the supervisor's place.
enum SSHScripts {
    /// `'text'` for sh, with embedded quotes closed and reopened.
    static func quote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func unitName(_ instanceID: String) -> String { "conductor-agent-\(instanceID)" }

    /// The agent's folder on the host.
    static func home(installDirectory: String, instanceID: String) -> String { "\(installDirectory)/agents/\(instanceID)" }

    /// Shared by every script: names and the `running` check (prints the pid of the live
    /// supervisor or unit of this instance).
    static func prelude(installDirectory: String, instanceID: String) -> String {
        """
        set -u
        dir=\(quote(installDirectory))
        id=\(quote(instanceID))
        bin="$dir/bin/conductor"
        home="$dir/agents/$id"
        unit=\(quote(unitName(instanceID)))
        uses_systemd() { [ "$(id -u)" = 0 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
        carries_id() { tr '\\000' '\\n' < "/proc/$1/environ" 2>/dev/null | grep -qx "CONDUCTOR_INSTANCE_ID=$id"; }
        running() {
            if [ -f "/etc/systemd/system/$unit.service" ] && command -v systemctl >/dev/null 2>&1; then
                systemctl is-active --quiet "$unit" || return 1
                systemctl show -p MainPID --value "$unit"
                return 0
            fi
            [ -f "$home/agent.pid" ] || return 1
            pid=$(cat "$home/agent.pid" 2>/dev/null)
            [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && carries_id "$pid" || return 1
            echo "$pid"
        }

        """
    }

    /// Is the agent of this instance running? Prints `running PID` or `absent`.
    static func status(installDirectory: String, instanceID: String) -> String {
        prelude(installDirectory: installDirectory, instanceID: instanceID) + """
            if pid=$(running); then echo "conductor-ssh: running $pid"; else echo "conductor-ssh: absent"; fi

            """
    }

    /// Finds a running agent (`running PID`), or asks for the binary (`need-binary
    /// FREE_KB`, exit 3) when the host has none or another version, or writes the
    /// configuration (and `busCACertificate`, PEM, as bus-ca.pem) and starts the agent
    /// (`started PID`). `error TEXT` (exit 4) otherwise.
    static func ensure(
        installDirectory: String, instanceID: String, sha256: String, environment: [(String, String)], busCACertificate: String? = nil,
        agentArguments: [String], description: String
    ) -> String {
        let envFile = environment.map { "\($0.0)=\(quote($0.1))" }.joined(separator: "\n")
        // Public, like any CA certificate: readable by whoever may read the agent's folder.
        let busCA = busCACertificate.map { pem in
            """
            cat > "$home/bus-ca.pem.new" <<'CONDUCTOR_END_OF_FILE'
            \(pem.trimmingCharacters(in: .whitespacesAndNewlines))
            CONDUCTOR_END_OF_FILE
            [ -s "$home/bus-ca.pem.new" ] && chmod 644 "$home/bus-ca.pem.new" && mv -f "$home/bus-ca.pem.new" "$home/bus-ca.pem" || fail "cannot write $home/bus-ca.pem (is the disk full?)"

            """
        } ?? ""
        let agent = (["\"$bin\""] + agentArguments.map(quote)).joined(separator: " ")
        let home = Self.home(installDirectory: installDirectory, instanceID: instanceID)
        let supervisor = """
            #!/bin/sh
            # Supervises one Conductor agent (\(description)); written by conductor's ssh provider.
            # Starts it again when it fails; ends when it is told to stop (TERM) or ends well.
            bin=\(quote(installDirectory + "/bin/conductor"))
            cd \(quote(home + "/work")) || exit 1
            set -a; . \(quote(home + "/agent.env")); set +a
            child=
            trap 'touch ../stopping; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM INT HUP
            while :; do
                \(agent) >> ../agent.log 2>&1 &
                child=$!
                wait "$child"
                status=$?
                [ -e ../stopping ] && exit 0
                [ "$status" = 0 ] && exit 0
                echo "conductor-ssh supervisor: the agent exited with status $status; starting it again in 2 s" >> ../agent.log
                sleep 2
            done
            """
        let unit = """
            [Unit]
            Description=Conductor agent \(description)
            After=network-online.target

            [Service]
            EnvironmentFile=\(home)/agent.env
            WorkingDirectory=\(home)/work
            ExecStart=\(installDirectory)/bin/conductor \(agentArguments.joined(separator: " "))
            Restart=on-failure
            RestartSec=2
            KillMode=control-group
            TimeoutStopSec=10
            StandardOutput=append:\(home)/agent.log
            StandardError=append:\(home)/agent.log

            [Install]
            WantedBy=multi-user.target
            """
        return prelude(installDirectory: installDirectory, instanceID: instanceID) + """
            fail() { echo "conductor-ssh: error $*"; exit 4; }
            if pid=$(running); then echo "conductor-ssh: running $pid"; exit 0; fi
            command -v sha256sum >/dev/null 2>&1 || fail "sha256sum is not installed (coreutils)"
            have=$(sha256sum "$bin" 2>/dev/null | cut -d' ' -f1)
            if [ "$have" != \(quote(sha256)) ]; then
                probe="$dir"
                while [ ! -d "$probe" ]; do probe=$(dirname "$probe"); done
                echo "conductor-ssh: need-binary $(df -Pk "$probe" | awk 'NR==2 {print $4}')"
                exit 3
            fi
            check=$("$bin" --version 2>&1) || fail "the conductor binary does not run here: $(echo "$check" | head -c 300 | tr '\\n' ' ')"
            umask 077
            mkdir -p "$home/state" "$home/facts.d" "$home/work" || fail "cannot create $home"
            chmod 700 "$dir/agents" "$home" || fail "cannot restrict $home to its owner"
            \(busCA)cat > "$home/agent.env.new" <<'CONDUCTOR_END_OF_FILE'
            \(envFile)
            CONDUCTOR_END_OF_FILE
            [ -s "$home/agent.env.new" ] && mv -f "$home/agent.env.new" "$home/agent.env" || fail "cannot write $home/agent.env (is the disk full?)"
            rm -f "$home/stopping"
            if uses_systemd; then
                cat > "/etc/systemd/system/$unit.service.new" <<'CONDUCTOR_END_OF_FILE'
            \(unit)
            CONDUCTOR_END_OF_FILE
                mv -f "/etc/systemd/system/$unit.service.new" "/etc/systemd/system/$unit.service" || fail "cannot write the systemd unit $unit"
                systemctl daemon-reload && systemctl enable --now "$unit" >/dev/null 2>&1 || fail "systemctl could not start $unit: $(systemctl status "$unit" 2>&1 | tail -n 3 | tr '\\n' ' ')"
            else
                cat > "$home/supervise" <<'CONDUCTOR_END_OF_FILE'
            \(supervisor)
            CONDUCTOR_END_OF_FILE
                [ -s "$home/supervise" ] || fail "cannot write $home/supervise (is the disk full?)"
                chmod 700 "$home/supervise"
                env CONDUCTOR_INSTANCE_ID="$id" setsid sh "$home/supervise" </dev/null >/dev/null 2>&1 &
                echo $! > "$home/agent.pid"
            fi
            # The supervisor carries the instance id once it has exec'd: give it 3 s.
            i=0
            while [ "$i" -lt 30 ]; do
                if pid=$(running); then echo "conductor-ssh: started $pid"; exit 0; fi
                sleep 0.1
                i=$((i + 1))
            done
            fail "the agent did not start: $(tail -n 5 "$home/agent.log" 2>/dev/null | tr '\\n' ' ')"

            """
    }

    /// The command line that receives the binary on stdin and puts it in place atomically.
    static func upload(installDirectory: String, sudo: Bool) -> String {
        let bin = installDirectory + "/bin"
        let script = """
            umask 022; mkdir -p \(quote(bin)) || exit 5; tmp=\(quote(bin))/.conductor.upload.$$; \
            if cat > "$tmp" && chmod 755 "$tmp" && mv -f "$tmp" \(quote(bin + "/conductor")); then echo 'conductor-ssh: copied'; \
            else rm -f "$tmp"; exit 5; fi
            """
        guard sudo else { return script }
        return "if command -v sudo >/dev/null 2>&1; then exec sudo -n sh -c \(quote(script)); else echo 'conductor-ssh: no sudo' >&2; exit 97; fi"
    }

    /// Stops the agent (unit or supervisor, then whatever still carries its instance id:
    /// servers its scripts started) and removes its folder. The binary stays, like an
    /// installed package: the next launch on the host finds it (same checksum) and skips the copy.
    static func stop(installDirectory: String, instanceID: String) -> String {
        prelude(installDirectory: installDirectory, instanceID: instanceID) + """
            if [ -f "/etc/systemd/system/$unit.service" ] && command -v systemctl >/dev/null 2>&1; then
                systemctl disable --now "$unit" >/dev/null 2>&1
                rm -f "/etc/systemd/system/$unit.service"
                systemctl daemon-reload
            fi
            if [ -f "$home/agent.pid" ]; then
                pid=$(cat "$home/agent.pid" 2>/dev/null)
                if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && carries_id "$pid"; then
                    touch "$home/stopping"
                    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
                    i=0
                    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 80 ]; do sleep 0.1; i=$((i + 1)); done
                    kill -KILL -- "-$pid" 2>/dev/null
                fi
            fi
            for signal in TERM KILL; do
                for p in /proc/[0-9]*; do
                    p=${p#/proc/}
                    [ "$p" = "$$" ] && continue
                    carries_id "$p" && kill "-$signal" "$p" 2>/dev/null
                done
                [ "$signal" = TERM ] && sleep 1
            done
            rm -rf "$home"
            rmdir "$dir/agents" 2>/dev/null
            echo "conductor-ssh: stopped"

            """
    }
}
