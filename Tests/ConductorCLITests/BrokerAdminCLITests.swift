import Foundation
import TestSupport
import Testing

/// `conductor broker` with its TLS and admin listeners, and the admin subcommands, run as
/// the built binary against it.
@Suite(.timeLimit(.minutes(1)))
struct BrokerAdminCLITests {
    /// A broker with --http-port 0 and --tls-port 0, its three announced addresses.
    final class AdminBroker: @unchecked Sendable {
        let process: Process
        let lines: [String]

        init(certificates: String) throws {
            let started = try ConductorBinary.startAnnouncing(
                [
                    "broker", "--listen", "127.0.0.1:0", "--no-persistence", "--log-level", "warning", "--http-port", "0",
                    "--tls-port", "0", "--tls-cert", certificates + "/server.pem", "--tls-key", certificates + "/server.key",
                ], lines: 3)
            self.process = started.process
            self.lines = started.lines
        }

        /// HOST:PORT of the admin API.
        var http: String? {
            self.lines.first { $0.hasPrefix("conductor broker admin API on http://") }.map { String($0.dropFirst("conductor broker admin API on http://".count)) }
        }

        func stop() async {
            self.process.terminate()
            _ = try? await offloaded { self.process.waitUntilExit() }
        }
    }

    static func certificates() async throws -> String {
        try await TestCertificates.files().directory
    }

    @Test("broker announces amqp, amqps and the admin API; the admin commands work against it")
    func adminCommandsAgainstARunningBroker() async throws {
        let certificates = try await Self.certificates()
        let broker = try await offloaded { try AdminBroker(certificates: certificates) }
        defer { Task { await broker.stop() } }
        #expect(broker.lines.count == 3, "\(broker.lines)")
        #expect(broker.lines.first?.hasPrefix("conductor broker listening on amqp://127.0.0.1:") == true)
        #expect(broker.lines.contains { $0.hasPrefix("conductor broker listening on amqps://127.0.0.1:") })
        let http = try #require(broker.http)

        let empty = try await CLI.run(["broker", "list-queues", "--http", http, "--json"])
        #expect(empty.status == 0)
        let parsed = try JSONSerialization.jsonObject(with: Data(empty.stdout.utf8)) as? [Any]
        #expect(parsed?.isEmpty == true, "\(empty.stdout)")

        let added = try await CLI.run(["broker", "add-user", "ops", "pw", "--administrator", "--http", http])
        #expect(added.status == 0, "\(added.stderr)")
        let granted = try await CLI.run(["broker", "set-permissions", "ops", "^ops\\.", ".*", ".*", "--http", http])
        #expect(granted.status == 0, "\(granted.stderr)")
        #expect(granted.stdout.contains("^ops\\."))
        // The new administrator can use the API; the table lists both users.
        let users = try await CLI.run(["broker", "list-users", "--http", http, "--admin-user", "ops", "--admin-password", "pw"])
        #expect(users.status == 0, "\(users.stderr)")
        #expect(users.stdout.contains("ops") && users.stdout.contains("guest"))
        #expect(users.stdout.hasPrefix("name"))

        let missing = try await CLI.run(["broker", "purge-queue", "nothing", "-p", "/", "--http", http])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("404") && missing.stderr.contains("no queue 'nothing'"))
        // -p reaches the API (the parent's own --vhost must not take it).
        let noVhost = try await CLI.run(["broker", "set-permissions", "ops", "", "", "", "-p", "elsewhere", "--http", http])
        #expect(noVhost.status == 1)
        #expect(noVhost.stderr.contains("no vhost 'elsewhere'"))
        // Topic permissions: set (twice for one exchange: replaced), list, clear.
        for write in ["^ops\\.", "^ops\\.events\\."] {
            let topic = try await CLI.run(["broker", "set-topic-permissions", "ops", "events", write, "", "--http", http])
            #expect(topic.status == 0, "\(topic.stderr)")
            #expect(topic.stdout.contains("events") && topic.stdout.contains(write), "\(topic.stdout)")
        }
        let topics = try await CLI.run(["broker", "list-topic-permissions", "--http", http, "--json"])
        #expect(topics.status == 0, "\(topics.stderr)")
        let listed = try JSONSerialization.jsonObject(with: Data(topics.stdout.utf8)) as? [[String: String]]
        #expect(listed == [["user": "ops", "vhost": "/", "exchange": "events", "write": "^ops\\.events\\.", "read": ""]], "\(topics.stdout)")
        let cleared = try await CLI.run(["broker", "clear-topic-permissions", "ops", "-p", "/", "--http", http])
        #expect(cleared.status == 0, "\(cleared.stderr)")
        #expect(cleared.stdout.contains("ops") && cleared.stdout.contains("1"), "\(cleared.stdout)")
        let clearedAgain = try await CLI.run(["broker", "clear-topic-permissions", "ops", "--http", http])
        #expect(clearedAgain.status == 1)
        #expect(clearedAgain.stderr.contains("404") && clearedAgain.stderr.contains("no topic permissions for user 'ops'"), "\(clearedAgain.stderr)")
        let refused = try await CLI.run(["broker", "list-connections", "--http", http, "--admin-password", "wrong"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("401"))
        await broker.stop()
        let unreachable = try await CLI.run(["broker", "list-channels", "--http", http])
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.contains("cannot reach"))
    }

    @Test("bad TLS, limit and admin flags are refused before starting")
    func badFlags() async throws {
        for (arguments, message) in [
            (["broker", "--tls-port", "0"], "--tls-port needs --tls-cert and --tls-key"),
            (["broker", "--tls-cert", "x.pem"], "need --tls-port"),
            (["broker", "--tls-port", "0", "--tls-cert", "a", "--tls-key", "b", "--tls-verify-peer"], "--tls-verify-peer needs --tls-ca"),
            (["broker", "--memory-high-watermark", "lots"], "--memory-high-watermark"),
            (["broker", "--disk-free-limit", "-3MB"], "--disk-free-limit"),
            (["broker", "--max-connections", "-1"], "--max-connections"),
            (["broker", "list-queues", "--http", "nowhere"], "--http must be HOST:PORT"),
            (["broker", "purge-queue"], "Missing expected argument"),
        ] {
            let result = try await CLI.run(arguments)
            #expect(result.status == 64, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        let missingFiles = try await CLI.run(["broker", "--listen", "127.0.0.1:0", "--no-persistence", "--tls-port", "0", "--tls-cert", "/no/cert.pem", "--tls-key", "/no/key.pem"])
        #expect(missingFiles.status != 0)
        #expect(missingFiles.stderr.contains("/no/cert.pem"))
    }
}
