import Foundation

/// The `conductor` binary the tests run as a child process.
///
/// Shared by BrokerTests (crash recovery), ConductorTests (launches) and ConductorCLITests:
/// all of them must run the binary of the same build as the test runner, never one found
/// on PATH.
public enum ConductorBinary {
    /// CONDUCTOR_BINARY when set; else the `conductor` in the test runner's build folder (on
    /// Linux the runner is <build>/debug/conductorPackageTests.xctest; elsewhere it may be
    /// nested, so up to four folders up). When none exists: where it should be, next to
    /// the runner, so the error names that path.
    public static var url: URL {
        if let override = ProcessInfo.processInfo.environment["CONDUCTOR_BINARY"] {
            return URL(fileURLWithPath: override)
        }
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = runner.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("conductor")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return runner.deletingLastPathComponent().appendingPathComponent("conductor")
    }

    public static var path: String { self.url.path }

    /// Runs `conductor ARGUMENTS` (stdout piped, stderr discarded) and reads what it
    /// announces on stdout: up to `lines` lines, until end of file, or until `timeout`
    /// seconds have passed between bytes. `conductor broker` prints one line per listener
    /// once it accepts connections. Blocks: call it off the cooperative pool.
    public static func startAnnouncing(_ arguments: [String], lines count: Int = 1, timeout: TimeInterval = 30) throws -> (process: Process, lines: [String]) {
        let process = Process()
        process.executableURL = self.url
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.runSerialized()
        var lines: [String] = []
        var line = Data()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, lines.count < count {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty { break }
            if byte == Data("\n".utf8) {
                lines.append(String(decoding: line, as: UTF8.self))
                line = Data()
            } else {
                line.append(byte)
            }
        }
        if lines.count < count, !line.isEmpty { lines.append(String(decoding: line, as: UTF8.self)) }
        return (process, lines)
    }

    /// The port of `conductor broker listening on amqp://HOST:PORT`; nil for any other line.
    public static func amqpPort(announcedBy line: String) -> Int? {
        guard line.hasPrefix("conductor broker listening on amqp://") else { return nil }
        return line.split(separator: ":").last.flatMap { Int($0) }
    }
}
