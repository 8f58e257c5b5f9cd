import Foundation
import Testing

/// `conductor serve` as a user runs it, and `conductor launch` finding it through the
/// state directory's coordinator.json.
@Suite("conductor serve", .timeLimit(.minutes(1)))
struct ServeCLITests {
    @Test("serve --help explains the coordinator, its record and its options")
    func serveHelp() async throws {
        let result = try await CLI.run(["serve", "--help"])
        #expect(result.status == 0)
        for text in ["--broker", "--state-dir", "--scope", "--watch-interval", "coordinator.json", "conductor:coordinator:<scope>", "SIGTERM"] {
            #expect(result.stdout.contains(text), "missing \(text)")
        }
        let launch = try await CLI.run(["launch", "--help"])
        for text in ["--coordinator", "--scope", "--detach"] { #expect(launch.stdout.contains(text), "launch --help misses \(text)") }
        // Every command that opens the state store takes its location and key.
        for command in ["serve", "launch", "status", "fwd", "terminate"] {
            let help = try await CLI.run([command, "--help"])
            for text in ["--state <dir|url>", "postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE", "--state-key"] {
                #expect(help.stdout.contains(text), "\(command) --help misses \(text)")
            }
        }
    }

    @Test("launch submits to a running serve; --exit-when-configured terminates through it; SIGTERM stops serve")
    func launchThroughServe() async throws {
        let state = try Self.stateWithPair(addresses: "127.61.50")
        let serve = try Self.startServe(["--state-dir", state, "--watch-interval", "0"], log: state + "/serve.log")
        defer { if serve.isRunning { serve.terminate() } }
        let record = state + "/coordinator.json"
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: record) { try await Task.sleep(for: .milliseconds(100)) }
        #expect(FileManager.default.fileExists(atPath: record), "serve did not record itself: \((try? String(contentsOfFile: state + "/serve.log", encoding: .utf8)) ?? "")")

        let launch = try await CLI.run(
            ["launch", state + "/pair.yml", "--state-dir", state, "--local-addresses", "127.61.50", "--exit-when-configured", "--wait-budget", "20"], timeout: 45)
        #expect(launch.status == 0, "\(launch.stdout)\n\(launch.stderr)")
        #expect(launch.stdout.contains("submitted to conductor:coordinator:default (pid \(serve.processIdentifier))"), "\(launch.stdout)")
        #expect(launch.stdout.contains("configured in"), "\(launch.stdout)")
        #expect(launch.stdout.contains("stopped 2 instance(s)"), "\(launch.stdout)")
        #expect(serve.isRunning, "serve stopped with the launch")
        let status = try await CLI.run(["status", "pair", "--state-dir", state, "--json"])
        #expect(status.stdout.contains("\"status\" : \"terminated\""), "\(status.stdout)")
        let serveLog = (try? String(contentsOfFile: state + "/serve.log", encoding: .utf8)) ?? ""
        #expect(serveLog.contains("web configured"), "\(serveLog)")

        // Again with --detach: it stays with serve until terminate, which goes through serve.
        let detached = try await CLI.run(
            ["launch", state + "/pair.yml", "--state-dir", state, "--local-addresses", "127.61.50", "--detach", "--json", "--wait-budget", "20"], timeout: 45)
        #expect(detached.status == 0, "\(detached.stderr)")
        #expect(detached.stdout.contains("\"configured\" : true"), "\(detached.stdout)")
        let terminate = try await CLI.run(["terminate", "pair", "--state-dir", state, "--json"], timeout: 45)
        #expect(terminate.status == 0, "\(terminate.stderr)")
        let terminated = try JSONSerialization.jsonObject(with: Data(terminate.stdout.utf8)) as? [String: Any]
        #expect((terminated?["stopped"] as? [String])?.sorted() == ["db", "web"], "\(terminate.stdout)")
        #expect((terminated?["coordinator"] as? String)?.contains("pid \(serve.processIdentifier)") == true, "\(terminate.stdout)")

        // An explicit --coordinator that does not answer is an error, not a silent local launch.
        let nobody = try await CLI.run(
            ["launch", state + "/pair.yml", "--state-dir", state + "/other", "--coordinator", "amqp://guest:guest@127.0.0.1:1/%2F"], timeout: 30)
        #expect(nobody.status == 1)
        #expect(nobody.stderr.contains("no coordinator default answered on"), "\(nobody.stderr)")

        // A second serve on the same state directory is refused.
        let second = try await CLI.run(["serve", "--state-dir", state], timeout: 30)
        #expect(second.status == 1)
        #expect(second.stderr.contains("already serves"), "\(second.stderr)")

        serve.terminate()
        let exited = try await offloaded { () -> Int32 in
            serve.waitUntilExit()
            return serve.terminationStatus
        }
        #expect(exited == 0)
        #expect(!FileManager.default.fileExists(atPath: record))
    }

    @Test("with no broker flags, lock, signal, wait and facts in another shell find the local serve through its record, as the recipe user")
    func localCommandsFindTheLocalCoordinator() async throws {
        let home = NSTemporaryDirectory() + "conductor-home-" + UUID().uuidString
        let state = home + "/.local/state/conductor"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        // A shell with nothing set: no CONDUCTOR_* variables, no config file, the default state directory.
        var shell = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CONDUCTOR_") }
        shell["HOME"] = home
        let serve = try Self.startServe(["--watch-interval", "0"], log: home + "/serve.log", environment: shell)
        defer { if serve.isRunning { serve.terminate() } }
        let record = state + "/coordinator.json"
        for _ in 0..<200 where CoordinatorRecordFile.recipe(record) == nil { try await Task.sleep(for: .milliseconds(100)) }
        let recipe = try #require(CoordinatorRecordFile.recipe(record), "serve recorded no recipe login: \((try? String(contentsOfFile: home + "/serve.log", encoding: .utf8)) ?? "")")
        #expect(recipe.hasPrefix("amqp://recipe:"), "\(recipe)")

        let lock = try await CLI.run(["lock", "demo", "--", "true"], timeout: 30, environment: shell)
        #expect(lock.status == 0, "\(lock.stderr)")
        let signal = try await CLI.run(["signal", "e"], timeout: 30, environment: shell)
        #expect(signal.status == 0, "\(signal.stderr)")
        let wait = try await CLI.run(["wait", "e", "--timeout", "5"], timeout: 30, environment: shell)
        #expect(wait.status == 0, "\(wait.stderr)")
        // No agent runs here: facts reaches the bus and finds nobody (not "cannot connect").
        let facts = try await CLI.run(["facts", "--timeout", "1s"], timeout: 30, environment: shell)
        #expect(facts.stderr.contains("no agent answered"), "\(facts.stdout)\n\(facts.stderr)")
        // A two-step lock is the recipe user's; the operator (who reads the state directory)
        // forces it out with the coordinator's own login, and serve says so.
        let held = try await CLI.run(["lock", "acquire", "stuck", "--ttl", "10m"], timeout: 30, environment: shell)
        let token = String(held.stdout.split(separator: " ").first ?? "")
        #expect(held.status == 0 && Int64(token) != nil, "\(held.stdout) \(held.stderr)")
        let status = try await CLI.run(["lock", "status", "stuck"], timeout: 30, environment: shell)
        #expect(status.stdout.contains("bus user recipe"), "\(status.stdout)")
        #expect(try await CLI.run(["lock", "release", "stuck", token], timeout: 30, environment: shell).status == 65)
        let forced = try await CLI.run(["lock", "release", "stuck", token, "--force"], timeout: 30, environment: shell)
        #expect(forced.status == 0, "\(forced.stderr)")
        let log = (try? String(contentsOfFile: home + "/serve.log", encoding: .utf8)) ?? ""
        #expect(log.contains("lock released by force") && log.contains("user_id=conductor") && log.contains("acquired_by=recipe"), "\(log)")

        // With the coordinator gone, the record no longer counts: the default URL, and its error.
        serve.terminate()
        _ = try await offloaded { serve.waitUntilExit() }
        let gone = try await CLI.run(["signal", "e"], timeout: 30, environment: shell)
        #expect(gone.status == 69, "\(gone.stderr)")
        #expect(gone.stderr.contains("127.0.0.1:5672"), "\(gone.stderr)")
    }

    @Test("a serve restarted after SIGKILL, on its embedded bus or the same --broker, takes over what the first launched and stops it on SIGTERM",
        arguments: [false, true])
    func restartedServeTakesOver(external: Bool) async throws {
        let third = external ? 56 : 51
        let state = try Self.stateWithPair(addresses: "127.61.\(third)")
        // On an external bus (a `conductor broker` the test owns), with a scope of its own.
        let broker = external ? try await BrokerProcess.start(admin: true) : nil
        let busArguments = try broker.map {
            ["--broker", "amqp://guest:guest@127.0.0.1:\($0.port)/%2F", "--bus-admin", try #require($0.adminURL), "--scope", "takeover"]
        } ?? []
        let record = state + "/coordinator.json"
        func recordedPid() -> Int32? {
            FileManager.default.contents(atPath: record)
                .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
                .flatMap { ($0["pid"] as? NSNumber)?.int32Value }
        }
        defer { if let pid = recordedPid() { kill(pid, SIGTERM) } }
        let launch = try await CLI.run(
            ["launch", state + "/pair.yml", "--state-dir", state, "--local-addresses", "127.61.\(third)", "--detach", "--wait-budget", "20"]
                + busArguments, timeout: 45)
        #expect(launch.status == 0, "\(launch.stdout)\n\(launch.stderr)")
        if external {
            let attributes = try FileManager.default.attributesOfItem(atPath: state + "/coordinated/pair@default.json")
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        }
        let first = try #require(recordedPid())
        kill(first, SIGKILL)
        for _ in 0..<50 where kill(first, 0) == 0 { try await Task.sleep(for: .milliseconds(100)) }

        // A new serve, as a user (or systemd) would start it after the crash.
        let serve = try Self.startServe(["--state-dir", state] + busArguments, log: state + "/serve2.log")
        defer { if serve.isRunning { serve.terminate() } }
        for _ in 0..<200 where recordedPid() != serve.processIdentifier { try await Task.sleep(for: .milliseconds(100)) }
        #expect(recordedPid() == serve.processIdentifier)
        let serveLog = (try? String(contentsOfFile: state + "/serve2.log", encoding: .utf8)) ?? ""
        #expect(serveLog.contains("took over pair@default"), "\(serveLog)")
        let status = try await CLI.run(["status", "--state-dir", state])
        let scope = external ? "takeover" : "default"
        #expect(status.stdout.contains("coordinator conductor:coordinator:\(scope) serving (pid \(serve.processIdentifier)"), "\(status.stdout)")
        #expect(status.stdout.contains("pair@default: configured"), "\(status.stdout)")

        serve.terminate()
        let exited = try await offloaded { () -> Int32 in
            serve.waitUntilExit()
            return serve.terminationStatus
        }
        #expect(exited == 0)
        let after = try await CLI.run(["status", "pair", "--state-dir", state])
        #expect(after.stdout.contains("pair@default: terminated"), "\(after.stdout)")
        await broker?.stop()
    }

    @Test("a foreground launch serves locks and events to its instances' recipes")
    func foregroundLaunchServesPrimitives() async throws {
        let state = NSTemporaryDirectory() + "conductor-serve-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let binary = CLI.binary.path
        try """
            name: locky
            instances:
              a:
                services:
                  s:
                    script: \(binary) lock demo -- sh -c 'echo $CONDUCTOR_LOCK_TOKEN > $CONDUCTOR_WORK_DIR/token.txt' && \(binary) signal ready
              b:
                services:
                  t:
                    script: \(binary) wait ready --timeout 20
            """.write(toFile: state + "/locky.yml", atomically: true, encoding: .utf8)
        let launch = try await CLI.run(
            ["launch", state + "/locky.yml", "--state-dir", state, "--local-addresses", "127.61.54", "--exit-when-configured", "--wait-budget", "20"],
            timeout: 45)
        #expect(launch.status == 0, "\(launch.stdout)\n\(launch.stderr)")
        #expect(launch.stdout.contains("stopped the instances of locky@default"), "\(launch.stdout)")
        let token = try String(contentsOfFile: state + "/deployments/locky@default/a/work/token.txt", encoding: .utf8)
        #expect(Int(token.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 > 0, "token \(token)")
    }

    /// A fresh state directory holding `pair.yml`: a db, and a web whose script checks it
    /// got the db's address (`<addresses>.2`).
    static func stateWithPair(addresses: String) throws -> String {
        let state = NSTemporaryDirectory() + "conductor-serve-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        try """
            name: pair
            instances:
              db:
                services:
                  server: {script: "true"}
              web:
                services:
                  app:
                    script: test "$db_host" = \(addresses).2
                    parameters: {db_host: "${db.ipaddress}"}
            """.write(toFile: state + "/pair.yml", atomically: true, encoding: .utf8)
        return state
    }

    /// `conductor serve ARGUMENTS` in the background, its output in `log`.
    static func startServe(_ arguments: [String], log path: String, environment: [String: String]? = nil) throws -> Process {
        let serve = Process()
        serve.executableURL = CLI.binary
        serve.arguments = ["serve"] + arguments
        if let environment { serve.environment = environment }
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        serve.standardOutput = log
        serve.standardError = log
        serve.standardInput = FileHandle.nullDevice
        try serve.runSerialized()
        return serve
    }
}

/// Reads `coordinator.json` as a user's shell would find it.
enum CoordinatorRecordFile {
    static func recipe(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["recipe"] as? String
    }
}
