import Foundation
import Testing

/// `conductor lock`, `signal` and `wait` as recipes run them: real processes against a
/// `conductor serve` on a `conductor broker`, directly and through a local agent's socket.
@Suite("conductor lock / signal / wait", .timeLimit(.minutes(2)))
struct PrimitivesCLITests {
    /// A broker process, and a coordinator (`conductor serve --broker`) with its own scope.
    final class Mesh: @unchecked Sendable {
        let broker: BrokerProcess
        let url: String
        let scope = "cli-\(UUID().uuidString.prefix(8).lowercased())"
        let directory: String
        var serve: Process?

        /// `brokerArguments`: more options of the broker (its users: with `--user`, guest
        /// must be one of them, as the mesh's URL logs in as guest).
        init(brokerArguments: [String] = []) async throws {
            self.broker = try await BrokerProcess.start(arguments: brokerArguments)
            self.url = "amqp://guest:guest@127.0.0.1:\(self.broker.port)/%2F"
            self.directory = NSTemporaryDirectory() + "conductor-prims-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        }

        var environment: [String: String] {
            var environment = ProcessInfo.processInfo.environment
            environment["CONDUCTOR_BROKER_URL"] = self.url
            environment["CONDUCTOR_COORDINATOR_SCOPE"] = self.scope
            environment.removeValue(forKey: "CONDUCTOR_AGENT_SOCKET")
            environment.removeValue(forKey: "CONDUCTOR_DEPLOYMENT")
            return environment
        }

        /// Starts the coordinator and waits until it answers.
        func startCoordinator() async throws {
            let serve = Process()
            serve.executableURL = CLI.binary
            serve.arguments = ["serve", "--broker", self.url, "--scope", self.scope, "--state-dir", self.directory + "/state", "--watch-interval", "0"]
            serve.standardOutput = FileHandle.nullDevice
            serve.standardError = FileHandle.nullDevice
            serve.standardInput = FileHandle.nullDevice
            try serve.runSerialized()
            self.serve = serve
            for _ in 0..<100 {
                if try await self.run(["lock", "status", "probe"]).status == 0 { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            Issue.record("the coordinator did not answer")
        }

        func stopCoordinator() async {
            guard let serve = self.serve else { return }
            serve.terminate()
            _ = try? await offloaded { serve.waitUntilExit() }
            self.serve = nil
        }

        func stop() async {
            await self.stopCoordinator()
            await self.broker.stop()
            try? FileManager.default.removeItem(atPath: self.directory)
        }

        /// Runs `conductor ARGS` with the mesh's environment (plus `extra`), off the pool.
        func run(_ arguments: [String], extra: [String: String] = [:], timeout: TimeInterval = 60) async throws -> CLI.Result {
            var environment = self.environment
            for (key, value) in extra { environment[key] = value }
            let finalEnvironment = environment
            return try await offloaded {
                let process = Process()
                process.executableURL = CLI.binary
                process.arguments = arguments
                process.environment = finalEnvironment
                let out = Pipe()
                let err = Pipe()
                process.standardOutput = out
                process.standardError = err
                process.standardInput = FileHandle.nullDevice
                try process.runSerialized()
                let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
                let stdout = out.fileHandleForReading.readDataToEndOfFile()
                let stderr = err.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                killer.cancel()
                return CLI.Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
            }
        }

        /// Starts `conductor ARGS` in the background (output to a file); the caller waits or kills.
        func start(_ arguments: [String], extra: [String: String] = [:]) throws -> Process {
            var environment = self.environment
            for (key, value) in extra { environment[key] = value }
            let process = Process()
            process.executableURL = CLI.binary
            process.arguments = arguments
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            try process.runSerialized()
            return process
        }
    }

    static func withMesh(brokerArguments: [String] = [], _ body: (Mesh) async throws -> Void) async throws {
        let mesh = try await Mesh(brokerArguments: brokerArguments)
        do {
            try await mesh.startCoordinator()
            try await body(mesh)
        } catch {
            await mesh.stop()
            throw error
        }
        await mesh.stop()
    }

    static func wait(_ process: Process) async -> Int32 {
        (try? await offloaded { () -> Int32 in
            process.waitUntilExit()
            return process.terminationStatus
        }) ?? -1
    }

    @Test("help explains the forms, the token, the exit codes")
    func help() async throws {
        let lock = try await CLI.run(["lock", "run", "--help"])
        for text in ["CONDUCTOR_LOCK_TOKEN", "--ttl", "--wait", "--limit", "killed", "75", "70", "69", "65"] {
            #expect(lock.stdout.contains(text), "lock run --help misses \(text)")
        }
        let group = try await CLI.run(["lock", "--help"])
        for text in ["acquire", "release", "renew", "status"] { #expect(group.stdout.contains(text), "lock --help misses \(text)") }
        let acquire = try await CLI.run(["lock", "acquire", "--help"])
        for text in ["lease", "TOKEN KEY", "holder_key", "CONDUCTOR_LOCK_KEY"] { #expect(acquire.stdout.contains(text), "lock acquire --help misses \(text)") }
        let release = try await CLI.run(["lock", "release", "--help"])
        for text in ["--key", "CONDUCTOR_LOCK_KEY", "--force", "trusted user", "audit", "65"] {
            #expect(release.stdout.contains(text), "lock release --help misses \(text)")
        }
        let wait = try await CLI.run(["wait", "--help"])
        for text in ["--count", "--timeout", "--global", "--deployment", "latched", "75", "65"] { #expect(wait.stdout.contains(text), "wait --help misses \(text)") }
        let signal = try await CLI.run(["signal", "--help"])
        for text in ["--data", "--node", "--global", "CONDUCTOR_INSTANCE_ID", "65"] { #expect(signal.stdout.contains(text), "signal --help misses \(text)") }
    }

    @Test("bad input is a usage error, a missing coordinator exit 69")
    func badInput() async throws {
        let noCommand = try await CLI.run(["lock", "db"])
        #expect(noCommand.status == 64)
        #expect(noCommand.stderr.contains("give the command to run"))
        let badName = try await CLI.run(["lock", "bad name", "--", "true"])
        #expect(badName.status == 64)
        let badData = try await CLI.run(["signal", "x", "--global", "--data", "{nope"])
        #expect(badData.status == 64)
        #expect(badData.stderr.contains("--data is not valid JSON"))
        // Outside a job an event with no deployment is global (issue 11: `conductor wait e`
        // in a shell must work); both scopes at once is still a usage error.
        let bothScopes = try await CLI.run(["wait", "x", "--global", "--deployment", "d"])
        #expect(bothScopes.status == 64)
        #expect(bothScopes.stderr.contains("exclude each other"), "\(bothScopes.stderr)")
        let broker = try await BrokerProcess.start()
        let nobody = try await CLI.run(["lock", "status", "x", "--broker", "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F", "--scope", "nobody-here"])
        await broker.stop()
        #expect(nobody.status == 69)
        #expect(nobody.stderr.contains("no coordinator serves"), "\(nobody.stderr)")
    }

    /// Several `conductor lock -- CMD` processes (half through a local agent, half on the
    /// bus) race for one lock while some are SIGKILLed
    /// mid-section; each command writes a timestamped tick every 5 ms (the doomed ones for
    /// seconds, well over the time the coordinator needs to notice a dead holder, so a
    /// command that outlived its `lock` would be caught ticking into the next section). The ticks of
    /// different tokens never interleave and tokens only increase: a killed `lock` takes
    /// its command with it, and the next holder starts only after that.
    @Test("lock -- COMMAND: sections never overlap, killed holders included")
    func lockHistory() async throws {
        try await Self.withMesh { mesh in
            let log = mesh.directory + "/ticks.log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            // Half the workers go through a local agent's socket, half straight to the bus.
            let agent = try mesh.start(["agent", "--broker", mesh.url, "--state-dir", mesh.directory + "/agent", "--instance-id", "history-agent", "--log-level", "error"])
            defer { agent.terminate() }
            let socket = mesh.directory + "/agent/agent.sock"
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { try await Task.sleep(for: .milliseconds(100)) }
            let script = "for i in $(seq 1 $TICKS); do echo \"$(date +%s%N) $CONDUCTOR_LOCK_TOKEN $TAG\" >> \(log); sleep 0.005; done"
            var killed = 0
            await withTaskGroup(of: Int.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var kills = 0
                        for round in 0..<4 {
                            let tag = "w\(worker)r\(round)"
                            // A holder to be killed would tick for seconds: if it outlived its `lock`, it would still tick when the next holder starts.
                            let doomed = (worker + round) % 4 == 1
                            guard let process = try? mesh.start(["lock", "history", "--ttl", "10s", "--wait", "60s", "--", "sh", "-c", script], extra: ["TAG": tag, "TICKS": doomed ? "500" : "20", "CONDUCTOR_AGENT_SOCKET": worker % 2 == 0 ? socket : ""])
                            else { continue }
                            if doomed {
                                // Killed inside its section: once its first tick is written.
                                for _ in 0..<1500 {
                                    if ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains(" \(tag)\n") { break }
                                    try? await Task.sleep(for: .milliseconds(20))
                                }
                                try? await Task.sleep(for: .milliseconds(Int.random(in: 20...80)))
                                kill(process.processIdentifier, SIGKILL)
                                kills += 1
                            }
                            _ = await Self.wait(process)
                        }
                        return kills
                    }
                }
                for await kills in group { killed += kills }
            }
            let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
            var spans: [Int64: (first: Int64, last: Int64)] = [:]
            for line in lines {
                let parts = line.split(separator: " ")
                guard parts.count == 3, let at = Int64(parts[0]), let token = Int64(parts[1]) else { continue }
                let span = spans[token] ?? (at, at)
                spans[token] = (min(span.first, at), max(span.last, at))
            }
            #expect(spans.count >= 10, "only \(spans.count) sections ran")
            #expect(killed == 4)
            let ordered = spans.sorted { $0.value.first < $1.value.first }
            for (earlier, later) in zip(ordered, ordered.dropFirst()) {
                #expect(earlier.value.last < later.value.first, "token \(earlier.key) still ticking when \(later.key) started")
                #expect(earlier.key < later.key, "token \(later.key) started after \(earlier.key)")
            }
        }
    }

    @Test("lock -- COMMAND: exit codes, the token in the environment, busy is 75, two-step acquire/release")
    func lockForms() async throws {
        try await Self.withMesh { mesh in
            let ran = try await mesh.run(["lock", "forms", "--", "sh", "-c", "echo token=$CONDUCTOR_LOCK_TOKEN name=$CONDUCTOR_LOCK_NAME; exit 7"])
            #expect(ran.status == 7)
            #expect(ran.stdout.contains("name=forms"))
            let acquired = try await mesh.run(["lock", "acquire", "forms", "--ttl", "60s", "--wait", "0"])
            #expect(acquired.status == 0)
            // `TOKEN KEY`: the public fencing token and the holder's secret.
            let words = acquired.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            let token = try #require(words.first.flatMap { Int64($0) })
            let key = try #require(words.count == 2 ? words[1] : nil, "\(acquired.stdout)")
            let busy = try await mesh.run(["lock", "forms", "--wait", "0", "--", "true"])
            #expect(busy.status == 75)
            #expect(busy.stderr.contains("token \(token)"), "\(busy.stderr)")
            let status = try await mesh.run(["lock", "status", "forms", "--json"])
            #expect(status.stdout.contains("\"token\":\(token)"), "\(status.stdout)")
            #expect(try await mesh.run(["lock", "renew", "forms", String(token)], extra: ["CONDUCTOR_LOCK_KEY": key]).status == 0)
            #expect(try await mesh.run(["lock", "release", "forms", String(token), "--key", key]).status == 0)
            let again = try await mesh.run(["lock", "release", "forms", String(token), "--key", key])
            #expect(again.status == 1)
            let next = try await mesh.run(["lock", "forms", "--json", "--", "true"])
            #expect(next.status == 0)
            #expect(next.stdout.contains("\"lost\":false"), "\(next.stdout)")
        }
    }

    /// A coordinator that answers "no" is not unreachable: a conflicting --limit or arguments
    /// it refuses exit 65, naming why (the lock's current limit), so a recipe can tell
    /// "fix the call" from "retry later".
    @Test("a request the coordinator refuses exits 65 with its reason, not 69")
    func refusedIsNotUnreachable() async throws {
        try await Self.withMesh { mesh in
            let held = try await mesh.run(["lock", "acquire", "pool", "--limit", "2", "--ttl", "60s", "--wait", "0"])
            #expect(held.status == 0, "\(held.stderr)")
            let conflicting = try await mesh.run(["lock", "pool", "--limit", "3", "--wait", "0", "--", "true"])
            #expect(conflicting.status == 65, "\(conflicting.stderr)")
            #expect(conflicting.stderr.contains("in use with limit 2, not 3"), "\(conflicting.stderr)")
            let acquire = try await mesh.run(["lock", "acquire", "pool", "--limit", "3", "--wait", "0"])
            #expect(acquire.status == 65, "\(acquire.stderr)")
            // Arguments only the coordinator checks: the holder name (node:pid) is over 256 bytes.
            let badHolder = try await mesh.run(["lock", "other", "--", "true"], extra: ["CONDUCTOR_INSTANCE_ID": String(repeating: "n", count: 300)])
            #expect(badHolder.status == 65, "\(badHolder.stderr)")
            #expect(badHolder.stderr.contains("holder must be 1-256 bytes"), "\(badHolder.stderr)")
        }
    }

    @Test("lock -- COMMAND is killed before its lease can end when the coordinator is gone")
    func lockLostKillsTheCommand() async throws {
        try await Self.withMesh { mesh in
            let marker = mesh.directory + "/survived"
            let process = try mesh.start(["lock", "lost", "--ttl", "1500ms", "--", "sh", "-c", "sleep 5; touch \(marker)"])
            try await Task.sleep(for: .milliseconds(300))
            await mesh.stopCoordinator()
            let status = await Self.wait(process)
            #expect(status == 70)
            // The outcome, not the time (a loaded CI took 4.8 s): the command, which would
            // touch the marker after 5 s, never does.
            try await Task.sleep(for: .seconds(5))
            #expect(!FileManager.default.fileExists(atPath: marker), "the command kept running after the lock was lost")
        }
    }

    /// A waiter's lease is counted from its acquire, so one granted more than its TTL after
    /// asking would see its lease over at once: it renews before starting its command
    /// instead of killing it as it starts (exit 70, as the lock history test's long waiters were).
    @Test("lock -- COMMAND that waited longer than its TTL still runs its command")
    func aLongWaiterRunsItsCommand() async throws {
        try await Self.withMesh { mesh in
            let marker = mesh.directory + "/ran"
            let first = try mesh.start(["lock", "line", "--ttl", "2s", "--", "sleep", "5"])
            for _ in 0..<100 {
                if try await mesh.run(["lock", "status", "line"]).stdout.contains("held by") { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let waiter = try await mesh.run(["lock", "line", "--ttl", "2s", "--wait", "60s", "--json", "--", "touch", marker])
            #expect(waiter.status == 0, "\(waiter.stdout) \(waiter.stderr)")
            #expect(FileManager.default.fileExists(atPath: marker))
            #expect(await Self.wait(first) == 0)
        }
    }

    @Test("signal and wait: latched, scoped, barrier, timeout naming who signalled")
    func signalAndWait() async throws {
        try await Self.withMesh { mesh in
            let early = try await mesh.run(["wait", "ready", "--deployment", "shop", "--count", "2", "--timeout", "0"])
            #expect(early.status == 75)
            #expect(try await mesh.run(["signal", "ready", "--deployment", "shop", "--node", "db-1", "--data", "\"5432\""]).status == 0)
            let latched = try await mesh.run(["wait", "ready", "--deployment", "shop"])
            #expect(latched.status == 0)
            #expect(latched.stdout == "5432\n")
            let elsewhere = try await mesh.run(["wait", "ready", "--global", "--timeout", "0"])
            #expect(elsewhere.status == 75)
            let half = try await mesh.run(["wait", "ready", "--count", "2", "--timeout", "500ms"], extra: ["CONDUCTOR_DEPLOYMENT": "shop"])
            #expect(half.status == 75)
            #expect(half.stderr.contains("signalled by db-1") && half.stderr.contains("1 more node(s) needed"), "\(half.stderr)")
            let barrier = try mesh.start(["wait", "ready", "--deployment", "shop", "--count", "2", "--timeout", "30s"])
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await mesh.run(["signal", "ready", "--deployment", "shop", "--node", "web-1"]).status == 0)
            #expect(await Self.wait(barrier) == 0)
            let json = try await mesh.run(["wait", "ready", "--deployment", "shop", "--count", "2", "--json"])
            #expect(json.stdout.contains("\"satisfied\":true") && json.stdout.contains("web-1"), "\(json.stdout)")
        }
    }

    @Test("through a local agent's socket: no bus URL needed, and a killed caller's lock is released by the agent")
    func throughTheAgentSocket() async throws {
        try await Self.withMesh { mesh in
            let state = mesh.directory + "/agent"
            let agent = try mesh.start(["agent", "--broker", mesh.url, "--state-dir", state, "--instance-id", "sock-agent", "--log-level", "error"])
            defer { agent.terminate() }
            let socket = state + "/agent.sock"
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { try await Task.sleep(for: .milliseconds(100)) }
            let attributes = try FileManager.default.attributesOfItem(atPath: socket)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            // No broker URL at all: only the socket can serve it.
            let through = ["CONDUCTOR_AGENT_SOCKET": socket, "CONDUCTOR_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/%2F"]
            let ran = try await mesh.run(["lock", "sock", "--", "sh", "-c", "echo $CONDUCTOR_LOCK_TOKEN"], extra: through)
            #expect(ran.status == 0, "\(ran.stderr)")
            #expect(try await mesh.run(["signal", "via-socket", "--global", "--data", "1"], extra: through).status == 0)
            #expect(try await mesh.run(["wait", "via-socket", "--global", "--timeout", "0"], extra: through).stdout == "1\n")
            // A caller killed while holding: the agent releases for it (the lease is long).
            let holder = try mesh.start(["lock", "sock", "--ttl", "60s", "--", "sleep", "30"], extra: through)
            try await Task.sleep(for: .milliseconds(500))
            kill(holder.processIdentifier, SIGKILL)
            let started = ContinuousClock.now
            let next = try await mesh.run(["lock", "sock", "--wait", "20s", "--", "true"], extra: through)
            #expect(next.status == 0, "\(next.stderr)")
            #expect(ContinuousClock.now - started < .seconds(10))
        }
    }
}
