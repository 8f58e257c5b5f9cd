import Crypto
import Foundation

/// A user the broker authenticates.
public struct BrokerUser: Sendable, Hashable {
    public var name: String
    /// RabbitMQ's `rabbit_password_hashing_sha256` form: base64(salt(4) + SHA-256(salt + password)).
    public var passwordHash: String
    /// Like RabbitMQ's `loopback_users`: such a user may only connect from 127.0.0.0/8 or ::1.
    public var loopbackOnly: Bool

    public init(name: String, passwordHash: String, loopbackOnly: Bool = false) {
        self.name = name
        self.passwordHash = passwordHash
        self.loopbackOnly = loopbackOnly
    }

    /// A user with a plain password, hashed here with a random salt.
    public init(name: String, password: String, loopbackOnly: Bool = false) {
        self.init(name: name, passwordHash: PasswordHashing.hash(password: password), loopbackOnly: loopbackOnly)
    }

    public func verify(password: String) -> Bool {
        PasswordHashing.verify(password: password, against: self.passwordHash)
    }
}

/// What a user may do in a vhost: three regular expressions matched (unanchored, as
/// RabbitMQ does; an empty pattern means "^$") against exchange and queue names.
public struct BrokerPermission: Sendable, Hashable {
    public var user: String
    public var vhost: String
    public var configure: String
    public var write: String
    public var read: String

    public init(user: String, vhost: String, configure: String = ".*", write: String = ".*", read: String = ".*") {
        self.user = user
        self.vhost = vhost
        self.configure = configure
        self.write = write
        self.read = read
    }
}

/// RabbitMQ's topic permission: on the topic exchange `exchange` of `vhost`, the routing
/// keys `user` may publish with (`write`) and bind with (`read`). Unanchored regular
/// expressions (an empty one means "^$") in which `{username}` and `{vhost}` stand for the
/// connection's user and vhost. A user without one for an exchange may use any routing key
/// there (docs/broker.md, "Topic permissions").
public struct BrokerTopicPermission: Sendable, Hashable {
    public var user: String
    public var vhost: String
    public var exchange: String
    public var write: String
    public var read: String

    public init(user: String, vhost: String, exchange: String, write: String = ".*", read: String = ".*") {
        self.user = user
        self.vhost = vhost
        self.exchange = exchange
        self.write = write
        self.read = read
    }
}

/// RabbitMQ's default password hashing (`rabbit_password_hashing_sha256`).
public enum PasswordHashing {
    public static func hash(password: String, salt: [UInt8]? = nil) -> String {
        let salt = salt ?? (0..<4).map { _ in UInt8.random(in: .min ... .max) }
        var hasher = SHA256()
        hasher.update(data: salt)
        hasher.update(data: Array(password.utf8))
        return Data(salt + Array(hasher.finalize())).base64EncodedString()
    }

    public static func verify(password: String, against hash: String) -> Bool {
        guard let decoded = Data(base64Encoded: hash), decoded.count == 4 + SHA256.byteCount else { return false }
        let bytes = Array(decoded)
        let expected = Self.hash(password: password, salt: Array(bytes[0..<4]))
        // Constant-time comparison of the two encodings.
        let a = Array(expected.utf8), b = Array(hash.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}

public struct BrokerConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port (see `BrokerServer.start()`).
    public var port: Int
    public var users: [BrokerUser] { didSet { self.accessIsBuiltInDefault = false } }
    public var vhosts: [String]
    public var permissions: [BrokerPermission] { didSet { self.accessIsBuiltInDefault = false } }
    /// Routing-key limits on topic exchanges (RabbitMQ's topic authorisation).
    public var topicPermissions: [BrokerTopicPermission] = [] { didSet { self.accessIsBuiltInDefault = false } }
    /// True while `users` and `permissions` are the built-in guest (nothing was given or
    /// set). Like RabbitMQ's default user, that one only seeds a new data directory's
    /// users.json; users given explicitly are applied at every start (UserStore.swift).
    public private(set) var accessIsBuiltInDefault: Bool
    /// Heartbeat interval in seconds proposed in connection.tune; 0 disables.
    public var heartbeat: UInt16
    public var frameMax: UInt32
    public var channelMax: UInt16
    /// Publisher flow control thresholds (see docs/broker.md, "Flow control").
    public var flowLimits: FlowLimits
    /// Connection and message limits (see docs/broker.md, "Limits"; BrokerLimits.swift).
    public var limits = BrokerLimits()
    /// Memory and disk alarms that block publishers (docs/broker.md, "Watermarks").
    public var watermarks = Watermarks()
    /// An amqps listener besides the plain one (docs/broker.md, "TLS"; TLSConfiguration.swift).
    public var tls: BrokerTLSConfiguration? = nil
    /// The HTTP admin API and /metrics (docs/broker.md, "Admin"; AdminServer.swift).
    public var admin: AdminConfiguration? = nil
    /// Where durable entities and persistent messages are kept (docs/broker.md,
    /// "Persistence"); nil keeps everything in memory.
    public var dataDirectory: String? = nil
    /// Size at which the message log starts a new segment file (drained segments are deleted).
    public var storeSegmentBytes: Int = 16 << 20
    /// A durable queue holding more bodies of persistent messages in memory than this
    /// drops the newest ones from memory and reads them back from the log when they are
    /// delivered (0: never). Per queue.
    public var storePageOutBytes: Int = 64 << 20

    /// When the broker stops reading from publishing connections, and when it resumes.
    /// Each pair is a high watermark (stop) and a low watermark (resume); a high value of
    /// 0 disables that limit.
    public struct FlowLimits: Sendable, Hashable {
        /// A queue holding more ready messages than this stops reading from the
        /// connections that publish to it ...
        public var queueMaxReady: Int
        /// ... until it is down to this many.
        public var queueResumeReady: Int
        /// Message body bytes held by the broker (ready and unacknowledged, summed over
        /// queues) beyond which every publishing connection stops being read ...
        public var maxBytes: Int
        /// ... until the total is down to this.
        public var resumeBytes: Int

        public init(queueMaxReady: Int = 50_000, queueResumeReady: Int = 25_000, maxBytes: Int = 256 << 20, resumeBytes: Int = 192 << 20) {
            self.queueMaxReady = queueMaxReady
            self.queueResumeReady = Swift.min(queueResumeReady, queueMaxReady)
            self.maxBytes = maxBytes
            self.resumeBytes = Swift.min(resumeBytes, maxBytes)
        }

        /// No flow control: publishers are read as fast as they send.
        public static let unlimited = FlowLimits(queueMaxReady: 0, queueResumeReady: 0, maxBytes: 0, resumeBytes: 0)
    }

    public init(
        host: String = "127.0.0.1",
        port: Int = 5672,
        users: [BrokerUser]? = nil,
        vhosts: [String] = ["/"],
        permissions: [BrokerPermission]? = nil,
        heartbeat: UInt16 = 60,
        frameMax: UInt32 = 131_072,
        channelMax: UInt16 = 2047,
        flowLimits: FlowLimits = FlowLimits()
    ) {
        self.host = host
        self.port = port
        // nil: the built-in guest/guest, loopback only, with full permissions on "/".
        self.users = users ?? [BrokerUser(name: "guest", password: "guest", loopbackOnly: true)]
        self.vhosts = vhosts
        self.permissions = permissions ?? [BrokerPermission(user: "guest", vhost: "/")]
        self.accessIsBuiltInDefault = users == nil && permissions == nil
        self.heartbeat = heartbeat
        self.frameMax = frameMax
        self.channelMax = channelMax
        self.flowLimits = flowLimits
    }

    /// Reads the users, vhosts, permissions and topic permissions of a RabbitMQ definitions export
    /// (`rabbitmqctl export_definitions`). A user may carry `password` (plain) instead of
    /// `password_hash`; only the SHA-256 hashing algorithm is understood.
    public static func load(definitionsFile path: String) throws -> BrokerConfiguration {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw BrokerConfigurationError("cannot read definitions file \(path): \(error.localizedDescription)")
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw BrokerConfigurationError("\(path) is not a JSON object")
        }
        var configuration = BrokerConfiguration(users: [], vhosts: [], permissions: [])
        for (index, entry) in (root["users"] as? [[String: Any]] ?? []).enumerated() {
            guard let name = entry["name"] as? String else {
                throw BrokerConfigurationError("\(path): users[\(index)] has no name")
            }
            if let algorithm = entry["hashing_algorithm"] as? String, algorithm != "rabbit_password_hashing_sha256" {
                throw BrokerConfigurationError("\(path): user \(name) uses \(algorithm); only rabbit_password_hashing_sha256 is supported")
            }
            if let hash = entry["password_hash"] as? String, !hash.isEmpty {
                configuration.users.append(BrokerUser(name: name, passwordHash: hash))
            } else if let password = entry["password"] as? String {
                configuration.users.append(BrokerUser(name: name, password: password))
            } else {
                throw BrokerConfigurationError("\(path): user \(name) has neither password_hash nor password")
            }
        }
        for (index, entry) in (root["vhosts"] as? [[String: Any]] ?? []).enumerated() {
            guard let name = entry["name"] as? String else {
                throw BrokerConfigurationError("\(path): vhosts[\(index)] has no name")
            }
            configuration.vhosts.append(name)
        }
        for (index, entry) in (root["permissions"] as? [[String: Any]] ?? []).enumerated() {
            guard let user = entry["user"] as? String, let vhost = entry["vhost"] as? String else {
                throw BrokerConfigurationError("\(path): permissions[\(index)] needs user and vhost")
            }
            configuration.permissions.append(BrokerPermission(
                user: user, vhost: vhost,
                configure: entry["configure"] as? String ?? "",
                write: entry["write"] as? String ?? "",
                read: entry["read"] as? String ?? ""
            ))
        }
        for (index, entry) in (root["topic_permissions"] as? [[String: Any]] ?? []).enumerated() {
            guard let user = entry["user"] as? String, let vhost = entry["vhost"] as? String, let exchange = entry["exchange"] as? String else {
                throw BrokerConfigurationError("\(path): topic_permissions[\(index)] needs user, vhost and exchange")
            }
            configuration.topicPermissions.append(BrokerTopicPermission(
                user: user, vhost: vhost, exchange: exchange,
                write: entry["write"] as? String ?? "",
                read: entry["read"] as? String ?? ""
            ))
        }
        if configuration.vhosts.isEmpty { configuration.vhosts = ["/"] }
        return configuration
    }
}

public struct BrokerConfigurationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
