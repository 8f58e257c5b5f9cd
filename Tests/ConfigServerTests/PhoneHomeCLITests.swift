import Foundation
import TestSupport
import Testing

/// Through the binary, as a user runs it: `conductor launch examples/phone-home --http
/// 127.0.0.1:0`, with the example's appliance.sh (curl and sh) as the instance.
@Suite(.timeLimit(.minutes(2)))
struct PhoneHomeCLITests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let example = repository + "/examples/phone-home/deployable.yml"

    @Test func theExampleApplianceGetsTheDatabaseAndTheLaunchEndsConfigured() async throws {
        let state = try PhoneHomeHarness.temporaryDirectory()
        let output = state + "/launch.out"
        let launch = try Child.start(
            ConductorBinary.path,
            ["launch", Self.example, "--http", "127.0.0.1:0", "--state-dir", state, "--local-addresses", "127.63.20", "--wait-budget", "30"],
            stdout: output)
        defer { launch.stop() }
        let env = try await PhoneHomeEnv.read(state + "/deployments/phone-home@default/appliance/phone-home.env", within: 30)
        let announced = try await Child.waitForLine(in: output, containing: "HTTP API on http://127.0.0.1:")
        #expect(announced.contains(env.url), "\(announced)")
        let handOver = try await Child.waitForLine(in: output, containing: "appliance phones home: hand it")
        #expect(handOver.contains(env.path), "\(handOver)")

        // What an instance that installs the agent downloads: the running binary, as its checksum says.
        let agent = state + "/agent"
        let download = try await HTTPExchange.curl("\(env.url)/agent/v1/conductor", ["-H", env.bearer])
        #expect(download.status == 200)
        try download.body.write(to: URL(fileURLWithPath: agent))
        let binarySum = try await sha256(ofFile: ConductorBinary.path)
        #expect(download.headers["x-conductor-sha256"] == binarySum)
        #expect(try await sha256(ofFile: agent) == binarySum)

        // The appliance: curl and sh only.
        let config = state + "/appliance.conf"
        let appliance = try await Child.run(
            "/bin/sh", [Self.repository + "/examples/phone-home/appliance.sh", env.path, config],
            environment: ["APPLIANCE_POLL": "0.2", "APPLIANCE_TRIES": "150"])
        #expect(appliance.status == 0, "\(appliance.output)")
        #expect(appliance.output.contains("database 127.63.20.2:15432 accepts the password"), "\(appliance.output)")
        let written = try String(contentsOfFile: config, encoding: .utf8)
        #expect(written.contains("db_host='127.63.20.2'\n"), "\(written)")
        #expect(written.contains("db_port='15432'\n"))
        #expect(written.contains("listen='127.0.0.1'\n"))
        let mode = try FileManager.default.attributesOfItem(atPath: config)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        _ = try await Child.waitForLine(in: output, containing: "configured in")
        let table = try String(contentsOfFile: output, encoding: .utf8)
        let row = table.split(separator: "\n").first { $0.hasPrefix("appliance ") }.map { $0.split(separator: " ").prefix(3).joined(separator: " ") }
        #expect(row == "appliance 127.0.0.1 configured", "\(table)")
        #expect(table.contains("fetched by the instance over HTTP"))
        let status = try await Child.run(ConductorBinary.path, ["status", "--state-dir", state])
        let member = status.output.split(separator: "\n").first { $0.contains("appliance") }.map { $0.split(separator: " ").joined(separator: " ") }
        #expect(member == "appliance configured 127.0.0.1", "\(status.output)")
        // SIGTERM: the instances stop (the token is revoked), the launch exits 0.
        #expect(await launch.terminate() == 0)
        #expect(!FileManager.default.fileExists(atPath: env.path))
        #expect(try String(contentsOfFile: output, encoding: .utf8).contains("stopped the instances of phone-home@default"))
    }

    @Test func withoutHTTPAPhoneHomeLaunchSaysWhatToGive() async throws {
        let state = try PhoneHomeHarness.temporaryDirectory()
        let run = try await Child.run(
            ConductorBinary.path, ["launch", Self.example, "--state-dir", state, "--local-addresses", "127.63.21", "--exit-when-configured"])
        #expect(run.status == 1)
        #expect(run.output.contains("appliance phones home (provider 'appliances', kind phone-home), which needs the coordinator's HTTP API: give --http HOST:PORT"), "\(run.output)")
        let validate = try await Child.run(ConductorBinary.path, ["validate", Self.example])
        #expect(validate.status == 0, "\(validate.output)")
    }

    @Test func theHTTPFlagsAreExplainedAndChecked() async throws {
        for command in ["serve", "launch", "fwd"] {
            let help = try await Child.run(ConductorBinary.path, [command, "--help"])
            for text in ["--http <http>", "HOST:PORT", "phone home", "--http-tls-cert", "--http-tls-key"] {
                #expect(help.output.contains(text), "\(command) --help misses \(text)")
            }
        }
        let portless = try await Child.run(ConductorBinary.path, ["serve", "--http", "8080"])
        #expect(portless.status == 64)
        #expect(portless.output.contains("--http takes HOST:PORT"), "\(portless.output)")
        let keyless = try await Child.run(ConductorBinary.path, ["serve", "--http", "127.0.0.1:0", "--http-tls-cert", "c.pem"])
        #expect(keyless.status == 64)
        #expect(keyless.output.contains("go together"), "\(keyless.output)")
    }
}

/// A child process of the test, waited for off the cooperative pool.
final class Child: @unchecked Sendable {
    let process: Process

    private init(_ process: Process) { self.process = process }

    static func start(_ executable: String, _ arguments: [String], stdout: String) throws -> Child {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: stdout, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: stdout)
        process.standardError = FileHandle(forWritingAtPath: stdout)
        try process.run()
        return Child(process)
    }

    /// SIGTERM, then its exit status (SIGKILL if it is still there after 20 s).
    func terminate() async -> Int32 {
        guard self.process.isRunning else { return self.process.terminationStatus }
        kill(self.process.processIdentifier, SIGTERM)
        let exited = (try? await offloaded { [process] in
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning, Date() < deadline { usleep(50_000) }
            return !process.isRunning
        }) ?? false
        if !exited { kill(self.process.processIdentifier, SIGKILL) }
        return exited ? self.process.terminationStatus : -1
    }

    /// Whatever a failing test left running.
    func stop() {
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
    }

    struct Output {
        var status: Int32
        /// stdout and stderr together.
        var output: String
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: Double = 60) async throws -> Output {
        try await offloaded {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
            process.standardInput = FileHandle.nullDevice
            let out = Pipe()
            process.standardOutput = out
            process.standardError = out
            try process.run()
            let killer = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            killer.cancel()
            return Output(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
        }
    }

    /// The first line of the file containing `text` (waits for it up to `seconds`).
    static func waitForLine(in path: String, containing text: String, seconds: Double = 30) async throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let content = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if let line = content.split(separator: "\n").first(where: { $0.contains(text) }) { return String(line) }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TimeoutError(what: "'\(text)' in \(path)")
    }
}
