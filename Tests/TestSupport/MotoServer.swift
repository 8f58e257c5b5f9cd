import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// moto's AWS emulator (`python3 -m moto.server`, from `pip install 'moto[server]'`) for the
/// EC2 tests: started on a free loopback port and stopped afterwards, or, when
/// CONDUCTOR_MOTO_URL is set, one someone else runs (then left alone).
///
/// moto accepts any credentials and keeps each region's resources apart.
public final class MotoServer: @unchecked Sendable {
    /// `http://127.0.0.1:PORT`.
    public let url: URL
    /// Nil for a server given by CONDUCTOR_MOTO_URL.
    private let process: Process?
    /// moto's own output, for the message when it fails.
    public let logPath: String?

    private init(url: URL, process: Process?, logPath: String?) {
        self.url = url
        self.process = process
        self.logPath = logPath
    }

    /// CONDUCTOR_MOTO_URL, if set and not empty.
    public static let givenURL: URL? = ProcessInfo.processInfo.environment["CONDUCTOR_MOTO_URL"].flatMap { $0.isEmpty ? nil : URL(string: $0) }

    /// The Python that runs moto: CONDUCTOR_MOTO_PYTHON, else `python3` on the PATH.
    public static let python: String = ProcessInfo.processInfo.environment["CONDUCTOR_MOTO_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"

    /// Whether moto can be had: CONDUCTOR_MOTO_URL is set, or `import moto.server` works.
    public static let isAvailable: Bool = {
        if MotoServer.givenURL != nil { return true }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = [MotoServer.python, "-c", "import moto.server"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        do {
            try probe.runSerialized()
        } catch {
            return false
        }
        probe.waitUntilExit()
        return probe.terminationStatus == 0
    }()

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts moto (or takes CONDUCTOR_MOTO_URL's) and returns once it answers HTTP, within
    /// `timeout`.
    public static func start(timeout: Duration = .seconds(60)) async throws -> MotoServer {
        if let url = Self.givenURL {
            guard let port = url.port, try await Self.waitUntilAnswering(port: port, host: url.host ?? "127.0.0.1", within: timeout, while: { true }) else {
                throw Failure(description: "CONDUCTOR_MOTO_URL=\(url.absoluteString) does not answer HTTP")
            }
            return MotoServer(url: url, process: nil, logPath: nil)
        }
        let port = try Self.freeLoopbackPort()
        let logPath = NSTemporaryDirectory() + "moto-\(port)-\(UUID().uuidString.prefix(8)).log"
        guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
            throw Failure(description: "cannot create \(logPath) for moto's output")
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [Self.python, "-m", "moto.server", "-H", "127.0.0.1", "-p", "\(port)"]
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.runSerialized()
        try? log.close()
        let server = MotoServer(url: URL(string: "http://127.0.0.1:\(port)")!, process: process, logPath: logPath)
        let answering = try await Self.waitUntilAnswering(port: port, host: "127.0.0.1", within: timeout, while: { process.isRunning })
        guard answering else {
            let exited = !process.isRunning
            await server.stop()
            throw Failure(description: "moto (\(Self.python) -m moto.server on 127.0.0.1:\(port)) \(exited ? "exited" : "did not answer within \(timeout)"): \(server.logTail())")
        }
        return server
    }

    /// SIGTERM, then SIGKILL if it is still there after `grace`; waits for it to exit.
    public func stop(grace: Duration = .seconds(5)) async {
        guard let process = self.process else { return }
        if process.isRunning {
            process.terminate()
            let clock = ContinuousClock()
            let deadline = clock.now + grace
            while process.isRunning && clock.now < deadline {
                try? await Task.sleep(for: .milliseconds(50))
            }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                while process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
            }
        }
        if let logPath { try? FileManager.default.removeItem(atPath: logPath) }
    }

    /// The last lines moto printed.
    public func logTail(lines: Int = 15) -> String {
        guard let logPath, let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return "(no log)" }
        let tail = text.split(separator: "\n").suffix(lines).joined(separator: "\n")
        return tail.isEmpty ? "(it printed nothing)" : tail
    }

    // MARK: - Sockets

    /// A port the kernel just gave out on 127.0.0.1 and that is free again.
    static func freeLoopbackPort() throws -> Int {
        let socketFD = socket(AF_INET, Self.streamType, 0)
        guard socketFD >= 0 else { throw Failure(description: "socket(): errno \(errno)") }
        defer { close(socketFD) }
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw Failure(description: "bind(127.0.0.1:0): errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Polls `GET /` until an HTTP status line comes back, `keepTrying` turns false, or
    /// `within` passes.
    static func waitUntilAnswering(port: Int, host: String, within: Duration, while keepTrying: () -> Bool) async throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + within
        while clock.now < deadline && keepTrying() {
            if Self.answersHTTP(host: host, port: port) { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    private static func answersHTTP(host: String, port: Int) -> Bool {
        let socketFD = socket(AF_INET, Self.streamType, 0)
        guard socketFD >= 0 else { return false }
        defer { close(socketFD) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(socketFD, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = Self.loopback(port: port)
        if host != "127.0.0.1" && host != "localhost" {
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return false }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return false }
        let request = Array("GET / HTTP/1.0\r\nHost: \(host):\(port)\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(socketFD, $0.baseAddress, $0.count, 0) }) == request.count else { return false }
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = buffer.withUnsafeMutableBytes { recv(socketFD, $0.baseAddress, $0.count, 0) }
        return count >= 5 && buffer.prefix(5) == Array("HTTP/".utf8)[...]
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        return address
    }

    #if canImport(Glibc)
    private static let streamType = Int32(SOCK_STREAM.rawValue)
    #else
    private static let streamType = SOCK_STREAM
    #endif
}
