import Foundation
import Testing

/// Issue 13: `conductor lock release NAME TOKEN`, with any login and the token `lock
/// status` prints, released a lock whose `lock -- COMMAND` still ran. Now only the holder
/// (with its key) or the coordinator's trusted user (`--force`, audited) can end a hold.
/// Real processes against a `conductor serve` on a `conductor broker` with two users.
@Suite("conductor lock: a lock belongs to its holder", .timeLimit(.minutes(2)))
struct LockOwnershipCLITests {
    typealias Mesh = PrimitivesCLITests.Mesh

    /// guest (the coordinator's own login, so its trusted user) and mallory.
    static let brokerUsers = ["--user", "guest:guest", "--user", "mallory:m-secret"]

    static func malloryURL(_ mesh: Mesh) -> String { "amqp://mallory:m-secret@127.0.0.1:\(mesh.broker.port)/%2F" }

    /// The holders `lock status --json` shows: token and acquiring bus user.
    static func holders(_ mesh: Mesh, _ lock: String) async throws -> [(token: Int64, user: String?)] {
        let status = try await mesh.run(["lock", "status", lock, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        return ((object?["holders"] as? [[String: Any]]) ?? []).compactMap { holder in
            (holder["token"] as? NSNumber).map { ($0.int64Value, holder["acquired_by"] as? String) }
        }
    }

    static func waiters(_ mesh: Mesh, _ lock: String) async throws -> Int {
        let status = try await mesh.run(["lock", "status", lock, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        return (object?["waiters"] as? NSNumber)?.intValue ?? 0
    }

    /// Polls (every 100 ms, at most `tries` times) until `condition` holds.
    static func until(tries: Int = 200, _ condition: () async throws -> Bool) async rethrows -> Bool {
        for _ in 0..<tries {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// The first holder's command ticks until the test lets it go; a second `lock --` waits
    /// in line. Meanwhile other processes, on the same login and on another, try to end the
    /// hold with the token `lock status` shows: every attempt is refused (65), the lock
    /// stays held, the waiter stays out until the first command ends, and the ticks of the
    /// two sections never interleave.
    @Test("the token alone releases nothing while lock -- COMMAND runs; the next holder waits for the end")
    func theTokenAloneReleasesNothing() async throws {
        try await PrimitivesCLITests.withMesh(brokerArguments: Self.brokerUsers) { mesh in
            let log = mesh.directory + "/ticks.log"
            let go = mesh.directory + "/go"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let tick = "echo \"$(date +%s%N) $CONDUCTOR_LOCK_TOKEN $TAG\" >> \(log)"
            // Until the test creates `go` (at most 3000 ticks, about 30 s).
            let first = try mesh.start(
                ["lock", "owned", "--ttl", "3s", "--wait", "30s", "--", "sh", "-c", "i=0; while [ ! -e \(go) ] && [ $i -lt 3000 ]; do \(tick); sleep 0.01; i=$((i+1)); done"],
                extra: ["TAG": "first"])
            #expect(await Self.until { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains(" first\n") })
            let held = try await Self.holders(mesh, "owned")
            let token = try #require(held.first?.token)
            #expect(held.count == 1 && held.first?.user == "guest", "\(held)")
            let second = try mesh.start(
                ["lock", "owned", "--ttl", "3s", "--wait", "60s", "--", "sh", "-c", "for i in $(seq 1 20); do \(tick); sleep 0.01; done"], extra: ["TAG": "second"])
            #expect(try await Self.until { try await Self.waiters(mesh, "owned") == 1 })

            let mallory = ["--broker", Self.malloryURL(mesh)]
            let attempts: [(arguments: [String], says: String)] = [
                (["lock", "release", "owned", String(token)], "only its holder"),
                (["lock", "release", "owned", String(token)] + mallory, "only its holder"),
                (["lock", "release", "owned", String(token), "--key", "0123456789abcdef0123456789abcdef"], "is not this token's"),
                (["lock", "renew", "owned", String(token), "--ttl", "300ms"] + mallory, "only its holder"),
                (["lock", "release", "owned", String(token), "--force"] + mallory, "not the coordinator's trusted user"),
            ]
            for attempt in attempts {
                let refused = try await mesh.run(attempt.arguments)
                #expect(refused.status == 65, "\(attempt.arguments): \(refused.status) \(refused.stderr)")
                #expect(refused.stderr.contains(attempt.says), "\(attempt.arguments): \(refused.stderr)")
                #expect(try await Self.holders(mesh, "owned").map(\.token) == [token], "\(attempt.arguments) changed the holder")
            }
            #expect(try await Self.waiters(mesh, "owned") == 1, "the second holder got in")

            _ = FileManager.default.createFile(atPath: go, contents: nil)
            #expect(await PrimitivesCLITests.wait(first) == 0, "the first holder lost its lock")
            #expect(await PrimitivesCLITests.wait(second) == 0)

            var spans: [String: (token: Int64, first: Int64, last: Int64)] = [:]
            for line in ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count == 3, let at = Int64(parts[0]), let token = Int64(parts[1]) else { continue }
                let span = spans[String(parts[2])] ?? (token, at, at)
                spans[String(parts[2])] = (token, min(span.first, at), max(span.last, at))
            }
            let earlier = try #require(spans["first"])
            let later = try #require(spans["second"])
            #expect(earlier.token == token && later.token > token)
            #expect(earlier.last < later.first, "the second holder ticked while the first still ran")
        }
    }

    @Test("two steps: acquire prints TOKEN KEY, renew and release need the key, --force is the trusted user's and kills a lock -- COMMAND")
    func twoStepsAndForce() async throws {
        try await PrimitivesCLITests.withMesh(brokerArguments: Self.brokerUsers) { mesh in
            let acquired = try await mesh.run(["lock", "acquire", "steps", "--ttl", "60s", "--wait", "0", "--json"])
            #expect(acquired.status == 0, "\(acquired.stderr)")
            let grant = try JSONSerialization.jsonObject(with: Data(acquired.stdout.utf8)) as? [String: Any]
            let token = try #require((grant?["token"] as? NSNumber)?.int64Value)
            let key = try #require(grant?["holder_key"] as? String)
            let status = try await mesh.run(["lock", "status", "steps"])
            #expect(status.stdout.contains("bus user guest") && !status.stdout.contains(key), "\(status.stdout)")
            // The key from the environment, as a recipe exports it.
            #expect(try await mesh.run(["lock", "renew", "steps", String(token)], extra: ["CONDUCTOR_LOCK_KEY": key]).status == 0)
            let noKey = try await mesh.run(["lock", "release", "steps", String(token)])
            #expect(noKey.status == 65 && noKey.stderr.contains("--key or $CONDUCTOR_LOCK_KEY"), "\(noKey.stderr)")
            let released = try await mesh.run(["lock", "release", "steps", String(token)], extra: ["CONDUCTOR_LOCK_KEY": key])
            #expect(released.status == 0, "\(released.stderr)")

            // A lock -- COMMAND whose lock the administrator forces out: the command is
            // killed at the next renewal (it would touch the marker after 20 s), exit 70.
            let marker = mesh.directory + "/survived"
            let holder = try mesh.start(["lock", "forced", "--ttl", "3s", "--", "sh", "-c", "sleep 20; touch \(marker)"])
            #expect(try await Self.until { try await Self.holders(mesh, "forced").count == 1 })
            let forcedToken = try #require(try await Self.holders(mesh, "forced").first?.token)
            let refused = try await mesh.run(["lock", "release", "forced", String(forcedToken), "--force", "--broker", Self.malloryURL(mesh)])
            #expect(refused.status == 65, "\(refused.stderr)")
            let forced = try await mesh.run(["lock", "release", "forced", String(forcedToken), "--force"])
            #expect(forced.status == 0 && forced.stdout.contains("released by force"), "\(forced.stdout) \(forced.stderr)")
            #expect(await PrimitivesCLITests.wait(holder) == 70)
            #expect(!FileManager.default.fileExists(atPath: marker))
            #expect(try await mesh.run(["lock", "forced", "--wait", "0", "--", "true"]).status == 0)
        }
    }

    /// Through a local agent's socket the key goes both ways untouched: `lock --` renews
    /// with it for a command that outlives several leases.
    @Test("through the agent socket, lock -- COMMAND renews with its key")
    func renewsThroughTheAgentSocket() async throws {
        try await PrimitivesCLITests.withMesh(brokerArguments: Self.brokerUsers) { mesh in
            let state = mesh.directory + "/agent"
            let agent = try mesh.start(["agent", "--broker", mesh.url, "--state-dir", state, "--instance-id", "key-agent", "--log-level", "error"])
            defer { agent.terminate() }
            let socket = state + "/agent.sock"
            #expect(await Self.until { FileManager.default.fileExists(atPath: socket) })
            let through = ["CONDUCTOR_AGENT_SOCKET": socket, "CONDUCTOR_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/%2F"]
            // A 3 s lease renewed every second for a 4 s command: lost (70) if any renewal were refused.
            let ran = try await mesh.run(["lock", "via-agent", "--ttl", "3s", "--json", "--", "sleep", "4"], extra: through)
            #expect(ran.status == 0, "\(ran.stderr)")
            #expect(ran.stdout.contains("\"lost\":false"), "\(ran.stdout)")
            let acquired = try await mesh.run(["lock", "acquire", "via-agent", "--ttl", "60s", "--wait", "0"], extra: through)
            let words = acquired.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            #expect(words.count == 2, "\(acquired.stdout) \(acquired.stderr)")
            let token = words.first ?? ""
            #expect(try await mesh.run(["lock", "release", "via-agent", token], extra: through).status == 65)
            #expect(try await mesh.run(["lock", "release", "via-agent", token], extra: through.merging(["CONDUCTOR_LOCK_KEY": words.last ?? ""]) { $1 }).status == 0)
        }
    }
}
