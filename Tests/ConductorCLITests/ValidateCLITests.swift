import Foundation
import Testing

private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
private let example = repository + "/examples/webapp/deployable.yml"

/// A fresh directory under the system's temporary one.
private func scratchDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("conductor-validate-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("conductor validate: what a new user trips over")
struct ValidateCLITests {
    @Test("a 3000-deep map is refused at level 65 with exit 1, not a crash")
    func deepNesting() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/deep.yml"
        let lines = (0..<3000).map { String(repeating: " ", count: $0) + "a\($0):" }
        try (lines.joined(separator: "\n") + " end\n").write(toFile: file, atomically: true, encoding: .utf8)
        let started = ContinuousClock.now
        let result = try await CLI.run(["validate", file], timeout: 60)
        #expect(result.status == 1, "\(result.stderr.prefix(400))")
        #expect(result.stderr.contains("\(file):65:65: error: maps and lists are nested more than 64 levels deep"), "\(result.stderr.prefix(400))")
        #expect(started.duration(to: .now) < .seconds(20))
    }

    @Test("nested aliases (billion laughs) fail fast at the alias that crosses the limit")
    func billionLaughs() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/laughs.yml"
        var lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
        for (previous, name) in zip("abcdefgh", "bcdefghi") {
            lines.append("\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ", ") + "]")
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let started = ContinuousClock.now
        let result = try await CLI.run(["validate", file], timeout: 60)
        #expect(result.status == 1, "\(result.stderr.prefix(400))")
        #expect(result.stderr.contains("\(file):5:8: error: aliases expand to more than 10000 nodes"), "\(result.stderr.prefix(400))")
        #expect(started.duration(to: .now) < .seconds(10))
    }

    @Test("an unreadable deployable says why, naming the path")
    func unreadable() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let missing = try await CLI.run(["validate", directory + "/nope.yml"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot read deployable '\(directory)/nope.yml': no such file"), "\(missing.stderr)")
        let folder = try await CLI.run(["validate", directory])
        #expect(folder.status == 1)
        #expect(folder.stderr.contains("cannot read deployable '\(directory)': it is a directory, not a file"), "\(folder.stderr)")
        let binary = directory + "/binary.yml"
        try Data([0x6E, 0x3A, 0x20, 0xC3, 0x28]).write(to: URL(fileURLWithPath: binary))
        let bytes = try await CLI.run(["validate", binary])
        #expect(bytes.status == 1)
        #expect(bytes.stderr.contains("\(binary):1:4: error: cannot read deployable '\(binary)': not UTF-8 text (byte 0xC3)"), "\(bytes.stderr)")
    }

    @Test("a missing environment lists the environments there are")
    func missingEnvironment() async throws {
        let result = try await CLI.run(["validate", example, "--env", "prod"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("environment 'prod': cannot read \(repository)/examples/webapp/environments/prod.yml: no such file; the environments next to the deployable are: dev"), "\(result.stderr)")
    }

    @Test("launch --explain prints what validate --explain prints and launches nothing")
    func launchExplain() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let validate = try await CLI.run(["validate", example, "--env", "dev", "--explain"])
        #expect(validate.status == 0, "\(validate.stderr)")
        #expect(validate.stdout.contains("db.server.port = 25432"))
        let state = directory + "/state"
        // Port 1: were a coordinator asked, the launch would fail.
        let launch = try await CLI.run(
            ["launch", example, "--env", "dev", "--explain", "--state-dir", state, "--coordinator", "amqp://guest:guest@127.0.0.1:1/%2F"], timeout: 30)
        #expect(launch.status == 0, "\(launch.stderr)")
        #expect(launch.stdout == validate.stdout)
        #expect(!FileManager.default.fileExists(atPath: state))

        let invalid = directory + "/bad.yml"
        try "name: x\n".write(toFile: invalid, atomically: true, encoding: .utf8)
        let refused = try await CLI.run(["launch", invalid, "--explain", "--state-dir", state])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("\(invalid):1:1: error: the deployable has no 'instances'"), "\(refused.stderr)")
        #expect(refused.stderr.contains("is not valid; nothing was started"), "\(refused.stderr)")
    }

    @Test("validate --help and launch --help explain --explain")
    func help() async throws {
        let validate = try await CLI.run(["validate", "--help"])
        #expect(validate.status == 0)
        for text in ["--env", "--set", "--explain", "--json", "Exit status: 0 when valid, 1 when not."] {
            #expect(validate.stdout.contains(text), "validate --help misses \(text)")
        }
        let launch = try await CLI.run(["launch", "--help"])
        #expect(launch.status == 0)
        for text in ["--explain", "launch nothing"] {
            #expect(launch.stdout.contains(text), "launch --help misses \(text)")
        }
    }
}
