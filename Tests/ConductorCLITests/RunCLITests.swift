import Foundation
import Testing

@Suite("conductor run")
struct RunCLITests {
    @Test("run --help explains targets, batches and exit status")
    func help() async throws {
        let result = try await CLI.run(["run", "--help"])
        #expect(result.status == 0)
        for text in ["--agent", "--where", "--all", "--role", "--deployment", "--batch", "--batch-wait", "--timeout", "--discovery-timeout", "--expect", "--max-output", "--json", "--after", "--after-timeout", "--then-signal", "--global", "Exit status"] {
            #expect(result.stdout.contains(text), "missing \(text)")
        }
    }

    @Test("bad targets and options are refused with a message")
    func badInput() async throws {
        let cases: [([String], String)] = [
            (["run", "--", "uptime"], "say where to run"),
            (["run", "--all", "--where", "os=linux", "--", "uptime"], "give one target"),
            (["run", "--all"], "give the command after --"),
            (["run", "--role", "web", "--", "uptime"], "--role needs --deployment"),
            (["run", "--all", "--deployment", "shop", "--", "uptime"], "--deployment goes with --role"),
            (["run", "--all", "--global", "--", "uptime"], "--global goes with --after or --then-signal"),
            (["run", "--all", "--after", "bad name", "--global", "--", "uptime"], "may only hold letters"),
            (["run", "--all", "--batch", "0%", "--", "uptime"], "must be a percentage from 1% to 100%"),
            (["run", "--all", "--batch", "ten", "--", "uptime"], "must be a node count"),
            (["run", "--all", "--timeout", "forever", "--", "uptime"], "--timeout must be like"),
            (["run", "--where", "os=", "--", "uptime"], "invalid --where"),
            (["run", "--agent", "not:a valid:name", "--", "uptime"], "is not an agent name or instance id"),
            (["run", "--agent", ",", "--", "uptime"], "--agent needs an agent name or instance id"),
            (["run", "--agent", "a1", "--expect", "2", "--", "uptime"], "--expect goes with --where or --all"),
            // Without -- nothing is taken as the command.
            (["run", "--all", "uptime"], "give the command after --"),
        ]
        for (arguments, message) in cases {
            let result = try await CLI.run(arguments)
            #expect(result.status == 64, "\(arguments): \(result.status)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        let state = NSTemporaryDirectory() + "conductor-run-nostate-\(UUID().uuidString)"
        let noState = try await CLI.run(["run", "--role", "web", "--deployment", "shop", "--state-dir", state, "--", "uptime"])
        #expect(noState.status == 2)
        #expect(noState.stderr.contains("no coordinator state at \(state)/state.sqlite"))
        let noBus = try await CLI.run(["run", "--all", "--broker", "amqp://guest:guest@127.0.0.1:1/%2F", "--", "uptime"], timeout: 30)
        #expect(noBus.status == 2)
        #expect(noBus.stderr.contains("cannot connect to the bus at amqp://guest@127.0.0.1:1"), "\(noBus.stderr)")
    }

    @Test("run through the binary: JSON per node, a missing node named, exit codes")
    func endToEnd() async throws {
        let broker = try await BrokerProcess.start()
        let url = "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F"
        let root = NSTemporaryDirectory() + "conductor-run-cli-\(UUID().uuidString.prefix(8))"
        let instances = ["web-1", "web-2"]
        var agents: [Process] = []
        defer {
            for agent in agents where agent.isRunning { kill(agent.processIdentifier, SIGKILL) }
            try? FileManager.default.removeItem(atPath: root)
        }
        for instance in instances {
            let agent = Process()
            agent.executableURL = CLI.binary
            agent.arguments = [
                "agent", "--broker", url, "--instance-id", instance, "--state-dir", "\(root)/\(instance)", "--facts-dir", "\(root)/facts.d",
                "--trusted-user", "guest", "--log-level", "error",
            ]
            agent.standardOutput = FileHandle.nullDevice
            agent.standardError = FileHandle.nullDevice
            try agent.runSerialized()
            agents.append(agent)
        }
        do {
            // Ready once both answer a named run.
            var ready = false
            for _ in 0..<30 where !ready {
                let probe = try await CLI.run(["run", "--broker", url, "--discovery-timeout", "1s", "--agent", instances.joined(separator: ","), "--", "true"], timeout: 30)
                ready = probe.status == 0
            }
            #expect(ready, "the agents did not come up")

            let json = try await CLI.run(["run", "--broker", url, "--json", "--discovery-timeout", "1s", "--agent", "web-1", "--agent", "conductor:agent:web-2,web-3", "--", "echo", "hi there"], timeout: 30)
            #expect(json.status == 3, "\(json.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let summary = try #require(object["summary"] as? [String: [String]])
            #expect(summary["succeeded"] == ["conductor:agent:web-1", "conductor:agent:web-2"])
            #expect(summary["not_found"] == ["conductor:agent:web-3"])
            #expect(object["exit_status"] as? Int == 3)
            let nodes = try #require(object["nodes"] as? [[String: Any]])
            #expect((nodes.first?["result"] as? [String: Any])?["stdout"] as? String == "hi there\n")

            let failing = try await CLI.run(["run", "--broker", url, "--all", "--expect", "2", "--batch", "1", "--max-output", "4", "--", "echo 123456789; exit 3"], timeout: 30)
            #expect(failing.status == 1, "\(failing.stderr)")
            #expect(failing.stdout.contains("=== conductor:agent:web-1: failed, exit 3"))
            #expect(failing.stdout.contains("1234\n--- output truncated"))
            #expect(failing.stdout.contains("summary: 0 succeeded, 2 failed (conductor:agent:web-1, conductor:agent:web-2)"))
            #expect(failing.stderr.contains("batch 2/2: 1 node(s)"))

            // Told to expect 3 and only 2 exist: not a success, though nobody can be named.
            let short = try await CLI.run(["run", "--broker", url, "--all", "--expect", "3", "--discovery-timeout", "500ms", "--", "true"], timeout: 30)
            #expect(short.status == 3, "\(short.stderr)")
            #expect(short.stdout.contains("summary: 2 succeeded, 1 expected but not found"), "\(short.stdout)")

            let nobody = try await CLI.run(["run", "--broker", url, "--where", "os=plan9", "--discovery-timeout", "300ms", "--", "true"], timeout: 30)
            #expect(nobody.status == 4)
            #expect(nobody.stderr.contains("no node matched the target"))
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }

    /// `conductor agent` as the tests start it: trusting guest, quiet, with `environment`.
    static func startAgent(url: String, instance: String, root: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Process {
        let agent = Process()
        agent.executableURL = CLI.binary
        agent.arguments = [
            "agent", "--broker", url, "--instance-id", instance, "--state-dir", "\(root)/\(instance)", "--facts-dir", "\(root)/facts.d",
            "--trusted-user", "guest", "--log-level", "error",
        ]
        agent.environment = environment
        agent.standardOutput = FileHandle.nullDevice
        agent.standardError = FileHandle.nullDevice
        try agent.runSerialized()
        return agent
    }

    /// Runs `conductor run --agent` on every instance until they all answer.
    static func waitUntilReady(url: String, instances: [String]) async throws -> Bool {
        for _ in 0..<30 {
            let probe = try await CLI.run(["run", "--broker", url, "--discovery-timeout", "1s", "--agent", instances.joined(separator: ","), "--", "true"], timeout: 30)
            if probe.status == 0 { return true }
        }
        return false
    }

    /// The agent that got the second batch was stopped (SIGSTOP) by the first batch's
    /// command, after discovery: the run reports it never answered. Resumed, it reads the
    /// request after its deadline and must not run it (a user who retries would get it twice).
    @Test("a run request a stopped agent reads after its deadline is not run when it resumes")
    func stoppedAgentDoesNotRunLate() async throws {
        let broker = try await BrokerProcess.start()
        let url = "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F"
        let root = NSTemporaryDirectory() + "conductor-run-late-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let instances = ["late-a-\(UUID().uuidString.prefix(6).lowercased())", "late-b-\(UUID().uuidString.prefix(6).lowercased())"]
        var agents: [String: Process] = [:]
        defer {
            for agent in agents.values where agent.isRunning {
                kill(agent.processIdentifier, SIGCONT)
                kill(agent.processIdentifier, SIGKILL)
            }
            try? FileManager.default.removeItem(atPath: root)
        }
        do {
            for (index, instance) in instances.enumerated() {
                var environment = ProcessInfo.processInfo.environment
                environment["OTHER_AGENT"] = instances[1 - index]
                agents[instance] = try Self.startAgent(url: url, instance: instance, root: root, environment: environment)
            }
            for (instance, agent) in agents {
                try Data(String(agent.processIdentifier).utf8).write(to: URL(fileURLWithPath: "\(root)/pid-\(instance)"))
            }
            #expect(try await Self.waitUntilReady(url: url, instances: instances), "the agents did not come up")

            // Whichever node runs first stops the other; the other, if it ever runs it, leaves a marker.
            let marker = root + "/ran-late"
            let command = "if mkdir \(root)/first 2>/dev/null; then kill -STOP $(cat \(root)/pid-$OTHER_AGENT); else touch \(marker); fi"
            let run = try await CLI.run(["run", "--broker", url, "--json", "--agent", instances.joined(separator: ","), "--batch", "1", "--timeout", "1s", "--", command], timeout: 60)
            #expect(run.status == 3, "\(run.stdout)\n\(run.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            let summary = try #require(object["summary"] as? [String: [String]])
            let stopped = try #require(summary["no_answer"]?.first, "\(summary)")
            let stoppedInstance = String(stopped.dropFirst("conductor:agent:".count))
            let stoppedAgent = try #require(agents[stoppedInstance])

            kill(stoppedAgent.processIdentifier, SIGCONT)
            // Resumed, it reads the late request before anything sent after: once it answers
            // a new run, the late one has been decided on.
            #expect(try await Self.waitUntilReady(url: url, instances: [stoppedInstance]), "the resumed agent does not answer")
            for _ in 0..<20 where !FileManager.default.fileExists(atPath: marker) { try await Task.sleep(for: .milliseconds(100)) }
            #expect(!FileManager.default.fileExists(atPath: marker), "the resumed agent ran a request whose sender had given up")
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }

    /// Recipes call `conductor lock ... -- cmd` inside service scripts and runs: the agent's
    /// own binary must be on the command's PATH even when the agent's PATH lacks it.
    @Test("a command run by an agent finds the conductor binary the agent runs from")
    func conductorIsOnTheCommandsPath() async throws {
        let broker = try await BrokerProcess.start()
        let url = "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F"
        let root = NSTemporaryDirectory() + "conductor-run-path-\(UUID().uuidString.prefix(8))"
        let instance = "path-\(UUID().uuidString.prefix(6).lowercased())"
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = "/usr/bin:/bin"
        let agent = try Self.startAgent(url: url, instance: instance, root: root, environment: environment)
        defer {
            if agent.isRunning { kill(agent.processIdentifier, SIGKILL) }
            try? FileManager.default.removeItem(atPath: root)
        }
        do {
            #expect(try await Self.waitUntilReady(url: url, instances: [instance]), "the agent did not come up")
            let found = try await CLI.run(["run", "--broker", url, "--agent", instance, "--", "command -v conductor && conductor --version"], timeout: 30)
            #expect(found.status == 0, "\(found.stdout)\n\(found.stderr)")
            #expect(found.stdout.contains(CLI.binary.resolvingSymlinksInPath().path + "\n"), "\(found.stdout)")
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }

    /// A command faster than a millisecond is reported in microseconds, not as 0.000s.
    @Test("run durations: microseconds from the agent, never 0.000s in the text")
    func durations() async throws {
        let broker = try await BrokerProcess.start()
        let url = "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F"
        let root = NSTemporaryDirectory() + "conductor-run-duration-\(UUID().uuidString.prefix(8))"
        let instance = "duration-\(UUID().uuidString.prefix(6).lowercased())"
        let agent = try Self.startAgent(url: url, instance: instance, root: root)
        defer {
            if agent.isRunning { kill(agent.processIdentifier, SIGKILL) }
            try? FileManager.default.removeItem(atPath: root)
        }
        do {
            #expect(try await Self.waitUntilReady(url: url, instances: [instance]), "the agent did not come up")
            let json = try await CLI.run(["run", "--broker", url, "--json", "--agent", instance, "--", "true"], timeout: 30)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json.stdout)")
            let result = try #require((object["nodes"] as? [[String: Any]])?.first?["result"] as? [String: Any])
            let microseconds = try #require(result["duration_us"] as? Int, "\(result)")
            #expect(microseconds > 0)
            #expect(result["duration_ms"] as? Int == microseconds / 1000)
            for _ in 0..<3 {
                let fast = try await CLI.run(["run", "--broker", url, "--agent", instance, "--", "true"], timeout: 30)
                #expect(fast.status == 0 && !fast.stdout.contains("0.000s"), "\(fast.stdout)")
            }
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }

    @Test("signing-key and --trusted-key: an agent that requires the coordinator's signature runs only what run signed with it")
    func signedRuns() async throws {
        let root = NSTemporaryDirectory() + "conductor-run-signed-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let key = try await CLI.run(["signing-key", "--state-dir", root + "/coordinator"])
        #expect(key.status == 0, "\(key.stderr)")
        let publicKey = key.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(publicKey.hasPrefix("ed25519:") && publicKey.count == 52, "\(publicKey)")
        let again = try await CLI.run(["signing-key", "--state-dir", root + "/coordinator", "--json"])
        #expect(again.stdout.contains("\"public_key\":\"\(publicKey)\""), "\(again.stdout)")
        let mode = try FileManager.default.attributesOfItem(atPath: root + "/coordinator/keys/requests.ed25519")[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)

        let bad = try await CLI.run(["agent", "--trusted-key", "ed25519:nope"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("is not an Ed25519 public key"), "\(bad.stderr)")

        let broker = try await BrokerProcess.start()
        let url = "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F"
        let agent = Process()
        agent.executableURL = CLI.binary
        agent.arguments = [
            "agent", "--broker", url, "--instance-id", "signed-1", "--state-dir", root + "/agent", "--facts-dir", root + "/facts.d",
            "--trusted-user", "guest", "--trusted-key", publicKey, "--log-level", "error",
        ]
        agent.standardOutput = FileHandle.nullDevice
        agent.standardError = FileHandle.nullDevice
        try agent.runSerialized()
        defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }
        do {
            var signed = CLI.Result(status: -1, stdout: "", stderr: "")
            for _ in 0..<30 where signed.status != 0 {
                signed = try await CLI.run(["run", "--broker", url, "--state-dir", root + "/coordinator", "--agent", "signed-1", "--", "echo", "signed"], timeout: 30)
            }
            #expect(signed.status == 0, "\(signed.stdout)\n\(signed.stderr)")
            #expect(signed.stdout.contains("signed"))
            // Another state directory, another key (or none): refused, and said why.
            let unsigned = try await CLI.run(["run", "--broker", url, "--state-dir", root + "/elsewhere", "--agent", "signed-1", "--", "echo", "x"], timeout: 30)
            #expect(unsigned.status == 1, "\(unsigned.stdout)\n\(unsigned.stderr)")
            #expect(unsigned.stdout.contains("'run' is refused: it is not signed"), "\(unsigned.stdout)")
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }

    @Test("Ctrl-C during a run: the running node is named, the unsent one too, exit 130")
    func interrupted() async throws {
        try await PrimitivesCLITests.withMesh { mesh in
            let instances = ["int-a-\(UUID().uuidString.prefix(6).lowercased())", "int-b-\(UUID().uuidString.prefix(6).lowercased())"]
            var agents: [Process] = []
            defer { for agent in agents where agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }
            for instance in instances {
                agents.append(try mesh.start([
                    "agent", "--instance-id", instance, "--state-dir", mesh.directory + "/" + instance, "--facts-dir", mesh.directory + "/facts.d",
                    "--trusted-user", "guest", "--log-level", "error",
                ]))
            }
            var ready = false
            for _ in 0..<30 where !ready {
                ready = try await mesh.run(["run", "--agent", instances.joined(separator: ","), "--discovery-timeout", "1s", "--", "true"]).status == 0
            }
            #expect(ready, "the agents did not come up")
            let output = mesh.directory + "/interrupted.json"
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            let run = Process()
            run.executableURL = CLI.binary
            let started = mesh.directory + "/first-started"
            run.arguments = ["run", "--agent", instances.joined(separator: ","), "--batch", "1", "--json", "--", "touch \(started); sleep 20"]
            run.environment = mesh.environment
            run.standardOutput = FileHandle(forWritingAtPath: output)
            run.standardError = FileHandle.nullDevice
            try run.runSerialized()
            // Interrupt once the first batch's command runs (bounded wait).
            for _ in 0..<150 where !FileManager.default.fileExists(atPath: started) {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(FileManager.default.fileExists(atPath: started))
            let interruptedAt = ContinuousClock.now
            kill(run.processIdentifier, SIGINT)
            #expect(await PrimitivesCLITests.wait(run) == 130)
            #expect(interruptedAt.duration(to: .now) < .seconds(10))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [String: Any])
            let summary = try #require(object["summary"] as? [String: [String]])
            #expect(summary["no_answer"] == ["conductor:agent:\(instances[0])"])
            #expect(summary["not_run"] == ["conductor:agent:\(instances[1])"])
        }
    }

    @Test("--after waits for an event before anything runs, --then-signal signals only when every node succeeded", .timeLimit(.minutes(2)))
    func chainedByEvents() async throws {
        try await PrimitivesCLITests.withMesh { mesh in
            let instance = "chain-\(UUID().uuidString.prefix(6).lowercased())"
            let agent = try mesh.start([
                "agent", "--instance-id", instance, "--state-dir", mesh.directory + "/agent", "--facts-dir", mesh.directory + "/facts.d",
                "--trusted-user", "guest", "--log-level", "error",
            ])
            defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }
            var ready = false
            for _ in 0..<30 where !ready {
                ready = try await mesh.run(["run", "--agent", instance, "--discovery-timeout", "1s", "--", "true"]).status == 0
            }
            #expect(ready, "the agent did not come up")
            let marker = mesh.directory + "/ran"

            // Not signalled: nothing runs, 75 names who signalled (nobody).
            let early = try await mesh.run(["run", "--agent", instance, "--after", "go", "--after-timeout", "300ms", "--deployment", "shop", "--", "touch \(marker)"])
            #expect(early.status == 75, "\(early.stderr)")
            #expect(early.stderr.contains("'go' (shop) not signalled within 300ms (nobody signalled); nothing was run"), "\(early.stderr)")
            #expect(!FileManager.default.fileExists(atPath: marker))
            #expect(try await mesh.run(["run", "--agent", instance, "--after", "go", "--", "true"]).status == 64)

            // Waiting, then released by the signal; every node succeeded, so 'done' is signalled.
            let chained = try mesh.start(["run", "--agent", instance, "--after", "go", "--deployment", "shop", "--then-signal", "done", "--", "touch \(marker)"])
            try await Task.sleep(for: .milliseconds(300))
            #expect(!FileManager.default.fileExists(atPath: marker))
            #expect(try await mesh.run(["signal", "go", "--deployment", "shop", "--node", "db-1"]).status == 0)
            #expect(await PrimitivesCLITests.wait(chained) == 0)
            #expect(FileManager.default.fileExists(atPath: marker))
            let done = try await mesh.run(["wait", "done", "--deployment", "shop", "--timeout", "5s", "--json"])
            #expect(done.status == 0 && done.stdout.contains("\"nodes\":1"), "\(done.stdout) \(done.stderr)")

            // A failed node: the event is not signalled.
            let failed = try await mesh.run(["run", "--agent", instance, "--global", "--then-signal", "never", "--json", "--", "exit 4"])
            #expect(failed.status == 1)
            #expect(failed.stdout.contains("\"signalled\" : false"), "\(failed.stdout)")
            #expect(try await mesh.run(["wait", "never", "--global", "--timeout", "0"]).status == 75)
        }
    }
}
