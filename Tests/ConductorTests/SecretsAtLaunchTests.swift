@testable import Conductor
import Foundation
import GRDB
import Testing

/// Issue 13, "secrets only where they are needed": after `conductor launch` of the webapp
/// (its generated database password, one login per agent), no log, no launch output and
/// no `status --json` holds any secret value, and the state file holds them sealed.
@Suite(.timeLimit(.minutes(2)))
struct SecretsAtLaunchTests {
    @Test func noSecretValueReachesALogTheOutputOrStatus() async throws {
        let state = try LaunchHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let webapp = LaunchTests.repository + "/examples/webapp/deployable.yml"
        let launch = try Self.run(["launch", webapp, "--state-dir", state, "--local-addresses", "127.61.79", "--exit-when-configured", "--wait-budget", "30"])
        #expect(launch.status == 0, "\(launch.output)")
        let status = try Self.run(["status", "webapp", "--state-dir", state, "--json"])
        #expect(status.status == 0, "\(status.output)")
        _ = try Self.run(["terminate", "webapp", "--state-dir", state])

        // Every secret the launch made: the database password and the agents' logins.
        let names = try await DatabaseQueue(path: state + "/state.sqlite").read { db in try String.fetchAll(db, sql: "SELECT name FROM secret ORDER BY name") }
        #expect(names.filter { $0.hasPrefix("agent-login:") }.count == 4, "\(names)")
        let store = try SQLiteStateStore(path: state + "/state.sqlite")
        var values: [String: String] = [:]
        for name in names {
            values[name] = try await store.secret(deployment: "webapp", environment: "default", name: name, actor: .system, generate: { "" }).value
        }
        try store.close()
        #expect(values.values.allSatisfy { $0.count >= 16 })

        var places: [(String, String)] = [("launch output", launch.output), ("status --json", status.output)]
        let enumerator = FileManager.default.enumerator(atPath: state)
        while let relative = enumerator?.nextObject() as? String {
            guard relative.hasSuffix(".log") || relative.hasSuffix(".json") || relative.hasPrefix("state.sqlite") else { continue }
            if let data = FileManager.default.contents(atPath: state + "/" + relative) { places.append((relative, String(decoding: data, as: UTF8.self))) }
        }
        #expect(places.contains { $0.0.hasSuffix("agent.log") }, "no agent log was found to check: \(places.map(\.0))")
        for (name, value) in values {
            for (place, text) in places where text.contains(value) {
                Issue.record("the secret \(name) is in \(place)")
            }
        }
    }

    struct Output {
        var status: Int32
        var output: String
    }

    /// Runs the conductor binary to its end (bounded), stdout and stderr together.
    static func run(_ arguments: [String], timeout: TimeInterval = 90) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LaunchHarness.conductorBinary)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let killer = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        killer.cancel()
        return Output(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }
}
