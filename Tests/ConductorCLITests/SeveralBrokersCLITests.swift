import Foundation
import Testing

/// Every bus command takes a cluster's nodes: `--broker` repeated or comma-separated, or a
/// list in config.json. A node that does not answer is skipped; none answering names each.
@Suite(.timeLimit(.minutes(2)))
struct SeveralBrokersCLITests {
    /// Nothing listens on port 1 of loopback.
    static let deadNode = "amqp://guest:guest@127.0.0.1:1/%2F"

    /// `facts` reached the bus (no agent answered there) rather than failing to connect.
    static func reachedTheBus(_ result: CLI.Result) -> Bool {
        result.status == 1 && result.stderr.contains("no agent answered") && !result.stderr.contains("cannot query the bus")
    }

    @Test func aDeadFirstNodeIsSkippedWhateverWayTheNodesAreGiven() async throws {
        let broker = try await BrokerProcess.start()
        let live = "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F"
        let home = NSTemporaryDirectory() + "conductor-brokers-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: home) }
        do {
            var environment = ProcessInfo.processInfo.environment
            environment.removeValue(forKey: "CONDUCTOR_BROKER_URL")
            environment["CONDUCTOR_STATE_DIR"] = home + "/state"
            environment["HOME"] = home

            let repeated = try await CLI.run(["facts", "--broker", Self.deadNode, "--broker", live, "--timeout", "1s"], timeout: 30, environment: environment)
            #expect(Self.reachedTheBus(repeated), "\(repeated.stderr)")
            let commas = try await CLI.run(["facts", "--broker", "\(Self.deadNode),\(live)", "--timeout", "1s"], timeout: 30, environment: environment)
            #expect(Self.reachedTheBus(commas), "\(commas.stderr)")

            try FileManager.default.createDirectory(atPath: home + "/.config/conductor", withIntermediateDirectories: true)
            let config = try JSONSerialization.data(withJSONObject: ["broker": [Self.deadNode, live]])
            try config.write(to: URL(fileURLWithPath: home + "/.config/conductor/config.json"))
            let fromConfig = try await CLI.run(["facts", "--timeout", "1s"], timeout: 30, environment: environment)
            #expect(Self.reachedTheBus(fromConfig), "\(fromConfig.stderr)")

            let none = try await CLI.run(["facts", "--broker", Self.deadNode, "--broker", "amqp://guest:guest@127.0.0.1:2/%2F", "--timeout", "1s"], timeout: 30, environment: environment)
            #expect(none.status != 0)
            #expect(none.stderr.contains("127.0.0.1:1") && none.stderr.contains("127.0.0.1:2"), "\(none.stderr)")

            let mixed = try await CLI.run(["facts", "--broker", "amqp://a:b@127.0.0.1:1/%2F,amqp://c:d@127.0.0.1:2/%2F"], timeout: 30, environment: environment)
            #expect(mixed.status != 0)
            #expect(mixed.stderr.contains("share the first one's scheme, login and vhost"), "\(mixed.stderr)")
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }
}
