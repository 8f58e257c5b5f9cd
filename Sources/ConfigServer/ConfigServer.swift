import Conductor
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The coordinator's HTTP API (docs/launch.md, "Phone home"): instances that run no agent
/// fetch their configuration and report their facts here, in Audrey's shape, and
/// instances that install the agent download it here. Everything it answers comes from a
/// `PhoneHomeDesk`; this is only HTTP (Hummingbird 2): routes, bodies, formats.
///
/// `start` returns once the server listens (port 0 is chosen by the system: `port` says
/// which); `stop` ends it. `conductor serve`, a foreground `launch` and `fwd` start one
/// with `--http HOST:PORT`.
public final class ConfigServer: Sendable {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        /// PEM files; nil: plain HTTP.
        public var tlsCertificate: String?
        public var tlsKey: String?
        /// The agent binary `GET /agent/v1/conductor` streams: the running one.
        public var agentBinary: String = "/proc/self/exe"

        public init(host: String, port: Int, tlsCertificate: String? = nil, tlsKey: String? = nil) {
            self.host = host
            self.port = port
            self.tlsCertificate = tlsCertificate
            self.tlsKey = tlsKey
        }

        /// `HOST:PORT` (`127.0.0.1:0`, `0.0.0.0:8080`, `[::1]:8080`); nil when it is not one.
        public static func address(_ text: String) -> (host: String, port: Int)? {
            var host: Substring
            var port: Substring
            if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
                host = text[text.index(after: text.startIndex)..<close]
                let rest = text[text.index(after: close)...]
                guard rest.hasPrefix(":") else { return nil }
                port = rest.dropFirst()
            } else {
                guard let colon = text.lastIndex(of: ":") else { return nil }
                host = text[..<colon]
                port = text[text.index(after: colon)...]
                if host.contains(":") { return nil }
            }
            guard !host.isEmpty, let number = Int(port), (0...65535).contains(number),
                host.allSatisfy({ $0.isLetter || $0.isNumber || ".-:".contains($0) })
            else { return nil }
            return (String(host), number)
        }
    }

    /// The address it listens on.
    public let host: String
    public let port: Int
    public let isTLS: Bool
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    private init(host: String, port: Int, isTLS: Bool, group: ServiceGroup, running: Task<Void, any Error>) {
        self.host = host
        self.port = port
        self.isTLS = isTLS
        self.group = group
        self.running = running
    }

    /// `http://HOST:PORT` as instances reach it: an unspecified address (`0.0.0.0`, `::`)
    /// is replaced by an address of this machine that is not loopback, if it has one.
    public var url: String {
        var host = self.host
        if host == "0.0.0.0" || host == "::" { host = Self.outwardAddress() ?? "127.0.0.1" }
        if host.contains(":") { host = "[\(host)]" }
        return "\(self.isTLS ? "https" : "http")://\(host):\(self.port)"
    }

    /// Binds and serves; returns once it listens. Throws (naming the address) when it cannot.
    public static func start(_ settings: Settings, desk: PhoneHomeDesk, enrollment: AgentEnrollment? = nil, logger: Logger? = nil) async throws -> ConfigServer {
        let logger = logger ?? Logger(label: "conductor.http", factory: { _ in SwiftLogNoOpLogHandler() })
        var server = HTTPServerBuilder.http1()
        var isTLS = false
        if let certificate = settings.tlsCertificate, let key = settings.tlsKey {
            server = try HTTPServerBuilder.tls(.http1(), tlsConfiguration: try Self.tls(certificate: certificate, key: key))
            isTLS = true
        }
        let bound = BoundAddress()
        let application = Application(
            responder: ConfigResponder(desk: desk, agent: AgentBinary(path: settings.agentBinary), enrollment: enrollment), server: server,
            configuration: ApplicationConfiguration(address: .hostname(settings.host, port: settings.port), serverName: nil),
            onServerRunning: { channel in bound.set(.success(channel.localAddress?.port ?? settings.port)) },
            logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [application], logger: logger))
        let running = Task {
            do {
                try await group.run()
                bound.set(.failure(ConfigServerError("the HTTP server on \(settings.host):\(settings.port) stopped before it listened")))
            } catch {
                bound.set(.failure(ConfigServerError("cannot serve HTTP on \(settings.host):\(settings.port): \(error)")))
                throw error
            }
        }
        let port = try await bound.value()
        return ConfigServer(host: settings.host, port: port, isTLS: isTLS, group: group, running: running)
    }

    public func stop() async {
        await self.group.triggerGracefulShutdown()
        _ = await self.running.result
    }

    private static func tls(certificate: String, key: String) throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificate)
        } catch {
            throw ConfigServerError("cannot read TLS certificate \(certificate): \(error)")
        }
        guard !chain.isEmpty else { throw ConfigServerError("no certificate in \(certificate)") }
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        } catch {
            throw ConfigServerError("cannot read TLS private key \(key): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    /// The first IPv4 address of an interface that is up and not loopback.
    static func outwardAddress() -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            let flags = Int32(entry.pointee.ifa_flags)
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0
            else { continue }
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(address, socklen_t(MemoryLayout<sockaddr_in>.size), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 {
                return String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        return nil
    }
}

public struct ConfigServerError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { self.message }
}

/// The port the server bound, or why it did not: set once, awaited once.
private final class BoundAddress: Sendable {
    private struct State {
        var result: Result<Int, ConfigServerError>?
        var waiter: CheckedContinuation<Int, any Error>?
    }

    private let state = Mutex(State())

    func set(_ result: Result<Int, ConfigServerError>) {
        let waiter: CheckedContinuation<Int, any Error>? = self.state.withLock { state in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: result.mapError { $0 as any Error })
    }

    func value() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let known: Result<Int, ConfigServerError>? = self.state.withLock { state in
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let known { continuation.resume(with: known.mapError { $0 as any Error }) }
        }
    }
}
