import NIOCore

/// Where and how to connect, and how to recover when the connection is lost.
public struct AMQPConnectionConfiguration: Sendable, Hashable {
    /// The first node to connect to.
    public var host: String
    public var port: Int
    /// Other nodes of the same cluster (RabbitMQ's), tried in turn after `host`:`port` when
    /// connecting and whenever the connection is lost: the client moves to the next node
    /// and recovers there. They share the login, vhost and TLS settings of the first.
    public var alternateEndpoints: [Endpoint] = []
    public var virtualHost: String
    public var username: String
    public var password: String
    /// Heartbeat interval the client asks for, in seconds; 0 asks for none. The smaller
    /// non-zero value of the client's and the server's wins.
    public var heartbeat: UInt16
    /// Largest frame the client accepts; the smaller non-zero value of both sides wins.
    public var frameMax: UInt32
    /// Highest channel number the client asks for; the smaller non-zero value wins.
    public var channelMax: UInt16
    /// Shown by the broker (RabbitMQ's management UI, `rabbitmqctl list_connections`).
    public var connectionName: String?
    /// How long the TCP connect plus the AMQP handshake may take.
    public var connectTimeout: TimeAmount
    /// How long a call made while the connection is recovering waits before failing.
    public var recoveryWaitTimeout: TimeAmount
    public var recovery: RecoveryPolicy
    /// TLS (amqps); nil: plain TCP.
    public var tls: TLSOptions?
    /// How the client logs in: `.plain` sends `username` and `password`; `.external`
    /// lets the broker take the identity from the TLS client certificate (`tls` with
    /// `certificateFile` and `keyFile`), sending no password.
    public var authenticationMechanism: AuthenticationMechanism = .plain

    /// A node's address: where one of a cluster's nodes listens.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }
    }

    /// Every node, in the order they are tried: `host`:`port` first, then the alternates.
    public var endpoints: [Endpoint] {
        [Endpoint(host: self.host, port: self.port)] + self.alternateEndpoints
    }

    /// This configuration aimed at `endpoint` alone (what one connection attempt uses).
    public func pointed(at endpoint: Endpoint) -> AMQPConnectionConfiguration {
        var single = self
        single.host = endpoint.host
        single.port = endpoint.port
        single.alternateEndpoints = []
        return single
    }

    /// The SASL mechanisms the client speaks.
    public enum AuthenticationMechanism: String, Sendable, Hashable {
        case plain = "PLAIN"
        /// RabbitMQ's rabbitmq_auth_mechanism_ssl, and our broker's certificate login.
        case external = "EXTERNAL"
    }

    /// How the client speaks TLS: it verifies the broker's certificate chain and host
    /// name by default, against the system's trusted CAs or `caFile`.
    public struct TLSOptions: Sendable, Hashable {
        /// PEM file of CA certificates to trust instead of the system's.
        public var caFile: String?
        /// Verify the broker's certificate chain (and, with `verifyHostname`, its name).
        /// Turning it off accepts any certificate: tests only.
        public var verifyPeer: Bool
        /// Check that the certificate names the host connected to (a DNS name or an IP
        /// address in its subject alternative names).
        public var verifyHostname: Bool
        /// The name to send in SNI and check the certificate against; nil: the host.
        public var serverName: String?
        /// A client certificate chain and key (PEM), for brokers that verify peers.
        public var certificateFile: String?
        public var keyFile: String?

        public init(caFile: String? = nil, verifyPeer: Bool = true, verifyHostname: Bool = true, serverName: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.verifyPeer = verifyPeer
            self.verifyHostname = verifyHostname
            self.serverName = serverName
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    /// Automatic reconnection with exponential backoff and topology recovery.
    public struct RecoveryPolicy: Sendable, Hashable {
        public var enabled: Bool
        public var initialBackoff: TimeAmount
        public var maximumBackoff: TimeAmount
        /// Give up after this many failed attempts in a row (nil: never give up).
        public var maximumAttempts: Int?
        /// When the broker cancels a consumer (`basic.cancel`: its queue was deleted, or the
        /// node that held it went away), consume the queue again as soon as it is there
        /// (on whichever node), for up to `recoveryWaitTimeout`; after that, or with this
        /// off, the consumer's sequence ends by throwing `.consumerCancelled`.
        public var resumesCancelledConsumers: Bool

        public init(
            enabled: Bool = true, initialBackoff: TimeAmount = .milliseconds(100), maximumBackoff: TimeAmount = .seconds(5), maximumAttempts: Int? = nil,
            resumesCancelledConsumers: Bool = true
        ) {
            self.enabled = enabled
            self.initialBackoff = initialBackoff
            self.maximumBackoff = maximumBackoff
            self.maximumAttempts = maximumAttempts
            self.resumesCancelledConsumers = resumesCancelledConsumers
        }

        public static let disabled = RecoveryPolicy(enabled: false)

        /// The delay before attempt `attempt` (0-based): initial × 2^attempt, capped.
        public func backoff(attempt: Int) -> TimeAmount {
            let shift = Swift.min(attempt, 30)
            let nanos = self.initialBackoff.nanoseconds.multipliedReportingOverflow(by: Int64(1) << shift)
            if nanos.overflow { return self.maximumBackoff }
            return .nanoseconds(Swift.min(nanos.partialValue, self.maximumBackoff.nanoseconds))
        }
    }

    public init(
        host: String = "127.0.0.1",
        port: Int = 5672,
        virtualHost: String = "/",
        username: String = "guest",
        password: String = "guest",
        heartbeat: UInt16 = 60,
        frameMax: UInt32 = 131_072,
        channelMax: UInt16 = 2047,
        connectionName: String? = nil,
        connectTimeout: TimeAmount = .seconds(10),
        recoveryWaitTimeout: TimeAmount = .seconds(30),
        recovery: RecoveryPolicy = RecoveryPolicy(),
        tls: TLSOptions? = nil
    ) {
        self.host = host
        self.port = port
        self.virtualHost = virtualHost
        self.username = username
        self.password = password
        self.heartbeat = heartbeat
        self.frameMax = frameMax
        self.channelMax = channelMax
        self.connectionName = connectionName
        self.connectTimeout = connectTimeout
        self.recoveryWaitTimeout = recoveryWaitTimeout
        self.recovery = recovery
        self.tls = tls
    }

    /// Parses `amqp://user:pass@host:port/vhost` or `amqps://...` (TLS). Missing parts
    /// default to guest/guest, port 5672 (amqps: 5671) and vhost "/". Percent-escapes are
    /// decoded in user, password and vhost (`/%2F` is the vhost "/"); an empty path also
    /// means "/", as most clients read it. Query parameters `heartbeat`, `frame_max`,
    /// `channel_max`, `connection_timeout` (milliseconds) and `auth_mechanism` (`plain`, the
    /// default, or `external`) are understood, and for amqps RabbitMQ's URI parameters
    /// `cacertfile`, `certfile`, `keyfile`, `verify` (`verify_peer`, the default, or
    /// `verify_none`) and `server_name_indication`.
    ///
    /// Several URLs separated by commas name the nodes of one cluster
    /// (`amqp://u:p@node1:5672/%2F,amqp://node2:5672,amqp://node3:5672`): the first gives
    /// the login, vhost, parameters and TLS settings, the others their host and port
    /// (`alternateEndpoints`); a later URL that names another scheme, user or vhost is an
    /// error. Write a comma inside a password as `%2C`.
    public init(url: String) throws(AMQPError) {
        try self.init(urls: url.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces })
    }

    /// The nodes of one cluster, one URL each (a URL may itself be a comma-separated list):
    /// see `init(url:)`.
    public init(urls: [String]) throws(AMQPError) {
        let parts = urls.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces } }
        guard let first = parts.first, !parts.contains(where: \.isEmpty) else {
            throw AMQPError(.invalidURL, "expected one or more amqp:// URLs separated by commas, got '\(urls.joined(separator: ","))'")
        }
        try self.init(single: first)
        for other in parts.dropFirst() {
            let node = try AMQPConnectionConfiguration(single: other)
            let scheme = { (url: String) in url.hasPrefix("amqps://") ? "amqps" : "amqp" }
            let authority = other.drop { $0 != "/" }.dropFirst(2).prefix { $0 != "/" && $0 != "?" }
            let path = other.drop { $0 != "/" }.dropFirst(2).drop { $0 != "/" && $0 != "?" }.prefix { $0 != "?" }
            if scheme(other) != scheme(first)
                || (authority.contains("@") && (node.username != self.username || node.password != self.password))
                || (path.hasPrefix("/") && path.count > 1 && node.virtualHost != self.virtualHost)
            {
                throw AMQPError(
                    .invalidURL,
                    "the URLs of a cluster share the first one's scheme, login and vhost; \(node.redactedURL) differs from \(self.redactedURL)")
            }
            self.alternateEndpoints.append(Endpoint(host: node.host, port: node.port))
        }
    }

    /// One URL, as `init(url:)` reads it.
    private init(single url: String) throws(AMQPError) {
        self.init()
        let scheme: String
        if url.hasPrefix("amqp://") {
            scheme = "amqp://"
        } else if url.hasPrefix("amqps://") {
            scheme = "amqps://"
            self.port = 5671
            self.tls = TLSOptions()
        } else {
            throw AMQPError(.invalidURL, "expected a URL starting with amqp:// or amqps://, got \(url)")
        }
        var rest = Substring(url.dropFirst(scheme.count))
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var authority = rest
        var path: Substring? = nil
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        }
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                self.username = try Self.percentDecode(userInfo[..<colon], url: url)
                self.password = try Self.percentDecode(userInfo[userInfo.index(after: colon)...], url: url)
            } else {
                self.username = try Self.percentDecode(userInfo, url: url)
            }
        }
        var hostPart = authority
        if authority.hasPrefix("[") {
            // IPv6 literal: [::1]:5672
            guard let close = authority.firstIndex(of: "]") else {
                throw AMQPError(.invalidURL, "unterminated IPv6 address in \(url)")
            }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let port = Int(after.dropFirst()), (1...65535).contains(port) else {
                    throw AMQPError(.invalidURL, "invalid port in \(url)")
                }
                self.port = port
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            guard let port = Int(authority[authority.index(after: colon)...]), (1...65535).contains(port) else {
                throw AMQPError(.invalidURL, "invalid port in \(url)")
            }
            self.port = port
        }
        if !hostPart.isEmpty { self.host = String(hostPart) }
        if let path, !path.isEmpty {
            self.virtualHost = try Self.percentDecode(path, url: url)
        }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "heartbeat": if let v = UInt16(parts[1]) { self.heartbeat = v }
            case "frame_max": if let v = UInt32(parts[1]) { self.frameMax = v }
            case "channel_max": if let v = UInt16(parts[1]) { self.channelMax = v }
            case "connection_timeout": if let v = Int64(parts[1]) { self.connectTimeout = .milliseconds(v) }
            case "auth_mechanism":
                switch parts[1].lowercased() {
                case "plain": self.authenticationMechanism = .plain
                case "external": self.authenticationMechanism = .external
                default: throw AMQPError(.invalidURL, "auth_mechanism must be plain or external in \(url)")
                }
            case "cacertfile", "certfile", "keyfile", "verify", "server_name_indication":
                guard self.tls != nil else {
                    throw AMQPError(.invalidURL, "\(parts[0]) is a TLS parameter, but the URL is not amqps://")
                }
                let value = try Self.percentDecode(parts[1], url: url)
                switch parts[0] {
                case "cacertfile": self.tls?.caFile = value
                case "certfile": self.tls?.certificateFile = value
                case "keyfile": self.tls?.keyFile = value
                case "server_name_indication": self.tls?.serverName = value
                default:
                    switch value {
                    case "verify_peer": self.tls?.verifyPeer = true
                    case "verify_none": self.tls?.verifyPeer = false
                    default: throw AMQPError(.invalidURL, "verify must be verify_peer or verify_none in \(url)")
                    }
                }
            default: break
            }
        }
    }

    static func percentDecode(_ text: Substring, url: String) throws(AMQPError) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else {
                    throw AMQPError(.invalidURL, "invalid percent-escape in \(url)")
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The URL for logs and errors, without the password; with alternate nodes, one URL
    /// per node separated by commas.
    public var redactedURL: String {
        let vhost = self.virtualHost == "/" ? "%2F" : self.virtualHost
        let scheme = self.tls == nil ? "amqp" : "amqps"
        return self.endpoints.map { "\(scheme)://\(self.username)@\($0)/\(vhost)" }.joined(separator: ",")
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
