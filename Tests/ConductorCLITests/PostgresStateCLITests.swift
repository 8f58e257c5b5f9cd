import Foundation
import Testing

/// The coordinator's state on PostgreSQL through the binary: `serve --state postgresql://…`
/// serving a `lock`, a foreground `launch --state …` from another state directory, and
/// `status --state …` from a third one showing what the launch recorded (CONDUCTOR_POSTGRES_URL,
/// from scripts/postgres.sh; skipped without it).
@Suite("PostgreSQL state through the CLI", .timeLimit(.minutes(3)))
struct PostgresStateCLITests {
    static let adminURL: String? = ProcessInfo.processInfo.environment["CONDUCTOR_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

    /// Runs psql against `url` (the test role may create databases).
    static func psql(_ url: String, _ sql: String) async throws -> CLI.Result {
        try await offloaded {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["psql", url, "-v", "ON_ERROR_STOP=1", "-qtA", "-c", sql]
            let out = Pipe()
            let err = Pipe()
            process.standardOutput = out
            process.standardError = err
            process.standardInput = FileHandle.nullDevice
            try process.runSerialized()
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            let stderr = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return CLI.Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
        }
    }

    @Test("serve, lock, launch and status share one PostgreSQL state", .enabled(if: adminURL != nil))
    func serveLockLaunchAndStatusOnPostgres() async throws {
        let admin = try #require(Self.adminURL)
        let name = "conductor_cli_" + UUID().uuidString.prefix(8).lowercased()
        #expect(try await Self.psql(admin, "CREATE DATABASE \(name)").status == 0)
        let database = String(admin[..<admin.lastIndex(of: "/")!]) + "/" + name
        let root = NSTemporaryDirectory() + "conductor-pg-cli-\(UUID().uuidString.prefix(8))"
        let (serveState, launchState, readerState) = (root + "/serve", root + "/launch", root + "/reader")
        for directory in [serveState, launchState, readerState] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        defer { try? FileManager.default.removeItem(atPath: root) }

        // A coordinator on the PostgreSQL state serves a lock.
        let scope = "pg-\(UUID().uuidString.prefix(6).lowercased())"
        let serve = Process()
        serve.executableURL = CLI.binary
        serve.arguments = ["serve", "--state", database, "--state-dir", serveState, "--scope", scope, "--watch-interval", "0"]
        serve.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        serve.standardError = FileHandle(forWritingAtPath: "/dev/null")
        serve.standardInput = FileHandle.nullDevice
        try serve.runSerialized()
        var lockEnvironment = ProcessInfo.processInfo.environment
        lockEnvironment["CONDUCTOR_STATE_DIR"] = serveState
        for key in ["CONDUCTOR_BROKER_URL", "CONDUCTOR_AGENT_SOCKET", "CONDUCTOR_DEPLOYMENT", "CONDUCTOR_COORDINATOR_SCOPE"] { lockEnvironment.removeValue(forKey: key) }
        var answered = false
        for _ in 0..<150 where !answered {
            answered = try await CLI.run(["lock", "status", "probe"], environment: lockEnvironment).status == 0
            if !answered { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(answered, "the coordinator on \(database) did not answer")
        let locked = try await CLI.run(["lock", "pg-lock", "--", "sh", "-c", "echo held $CONDUCTOR_LOCK_TOKEN"], environment: lockEnvironment)
        #expect(locked.status == 0 && locked.stdout.contains("held "), "\(locked.stdout)\n\(locked.stderr)")
        // The grant's token range was reserved in the database, not in a file.
        #expect(try await Self.psql(database, "SELECT COUNT(*) FROM coordination_token").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        #expect(!FileManager.default.fileExists(atPath: serveState + "/state.sqlite"))
        serve.terminate()
        _ = try? await offloaded { serve.waitUntilExit() }

        // A launch from another state directory, with the same key, records into the database.
        try """
            name: pgdemo
            instances:
              web:
                services:
                  app: {script: "echo configured"}
            """.write(toFile: root + "/pgdemo.yml", atomically: true, encoding: .utf8)
        let key = serveState + "/state.key"
        let launch = try await CLI.run(
            [
                "launch", root + "/pgdemo.yml", "--state", database, "--state-key", key, "--state-dir", launchState, "--local-addresses", "127.61.79",
                "--exit-when-configured", "--wait-budget", "30",
            ], timeout: 120)
        #expect(launch.status == 0, "\(launch.stdout)\n\(launch.stderr)")

        // Anyone with the URL and the key reads it; without the key, one clear line.
        let status = try await CLI.run(["status", "pgdemo", "--state", database, "--state-key", key, "--state-dir", readerState, "--json"])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("pgdemo") && status.stdout.contains("web"), "\(status.stdout)")
        let text = try await CLI.run(["status", "--state", database, "--state-key", key, "--state-dir", readerState])
        #expect(text.stdout.contains("pgdemo"), "\(text.stdout)")
        let keyless = try await CLI.run(["status", "--state", database, "--state-dir", readerState])
        #expect(keyless.status != 0 && keyless.stderr.contains("no key file"), "\(keyless.stderr)")
        #expect(!keyless.stderr.contains("conductor:conductor@"), "the password shows: \(keyless.stderr)")

        _ = try await Self.psql(admin, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }
}
