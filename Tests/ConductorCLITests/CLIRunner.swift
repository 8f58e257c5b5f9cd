import Foundation
import TestSupport

/// Runs the `conductor` binary built next to the test bundle.
struct CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The binary sits in the same build folder as the test runner.
    static var binary: URL { ConductorBinary.url }

    /// Runs to completion, killing the process after `timeout` seconds. The waiting happens
    /// on a Dispatch thread: blocking one of the two threads of Swift's cooperative pool for
    /// seconds would stall every other suite's timers running in parallel.
    /// `environment`: the whole environment of the command (nil: ours).
    static func run(_ arguments: [String], timeout: TimeInterval = 60, environment: [String: String]? = nil) async throws -> Result {
        try await offloaded { try runBlocking(arguments, timeout: timeout, environment: environment) }
    }

    private static func runBlocking(_ arguments: [String], timeout: TimeInterval, environment: [String: String]?) throws -> Result {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.runSerialized()
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

/// Runs blocking work on a Dispatch thread and awaits it.
func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try work() })
        }
    }
}

/// A `conductor broker` process on a free loopback port, stopped with SIGTERM.
final class BrokerProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    /// `http://guest:guest@HOST:PORT` of its admin API (started with `admin`), through which
    /// a coordinator on this bus makes the agents' logins (`--bus-admin`).
    let adminURL: String?

    /// Starts a broker and waits (off the cooperative pool) for its listening line.
    /// `arguments`: more options of `conductor broker` (e.g. `--user NAME:PASSWORD`);
    /// `admin`: also its admin API on a free port.
    static func start(arguments: [String] = [], admin: Bool = false) async throws -> BrokerProcess {
        try await offloaded { try BrokerProcess(arguments: arguments, admin: admin) }
    }

    private init(arguments: [String], admin: Bool) throws {
        // The broker announces its address on one line once it accepts connections (and
        // its admin API on another).
        let (process, lines) = try ConductorBinary.startAnnouncing(
            ["broker", "--listen", "127.0.0.1:0", "--no-persistence", "--log-level", "warning"] + (admin ? ["--http-port", "0"] : []) + arguments,
            lines: admin ? 2 : 1)
        self.process = process
        let text = lines.first { $0.contains("amqp://") } ?? lines.first ?? ""
        guard let port = ConductorBinary.amqpPort(announcedBy: text) else {
            self.process.terminate()
            throw BrokerStartError(line: text)
        }
        self.port = port
        let prefix = "conductor broker admin API on http://"
        self.adminURL = lines.first { $0.hasPrefix(prefix) }.map { "http://guest:guest@" + $0.dropFirst(prefix.count).split(separator: " ")[0] }
    }

    struct BrokerStartError: Error { var line: String }

    func stop() async {
        self.process.terminate()
        _ = try? await offloaded { self.process.waitUntilExit() }
    }
}
