import Foundation

/// Runs the `conductor` binary built next to the test bundle.
struct CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The binary sits in the same build folder as the test runner.
    static var binary: URL {
        if let override = ProcessInfo.processInfo.environment["CONDUCTOR_BINARY"] {
            return URL(fileURLWithPath: override)
        }
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = runner.deletingLastPathComponent()
        // On Linux the runner is <build>/debug/conductorPackageTests.xctest; elsewhere it may be nested.
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("conductor")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return runner.deletingLastPathComponent().appendingPathComponent("conductor")
    }

    /// Runs to completion, killing the process after `timeout` seconds.
    static func run(_ arguments: [String], timeout: TimeInterval = 60) throws -> Result {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        killer.cancel()
        return Result(
            status: process.terminationStatus,
            stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self)
        )
    }
}

/// A `conductor broker` process on a free loopback port, stopped with SIGTERM.
final class BrokerProcess {
    let process = Process()
    let port: Int

    init() throws {
        self.process.executableURL = CLI.binary
        self.process.arguments = ["broker", "--listen", "127.0.0.1:0", "--log-level", "warning"]
        let out = Pipe()
        self.process.standardOutput = out
        self.process.standardError = FileHandle.nullDevice
        try self.process.run()
        // The broker announces its address on one line once it accepts connections.
        var line = Data()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("conductor broker listening on amqp://"),
            let port = text.split(separator: ":").last.flatMap({ Int($0) })
        else {
            self.process.terminate()
            throw BrokerStartError(line: text)
        }
        self.port = port
    }

    struct BrokerStartError: Error { var line: String }

    func stop() {
        self.process.terminate()
        self.process.waitUntilExit()
    }
}
