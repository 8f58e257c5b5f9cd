import Foundation

/// The admin API's JSON shapes (shared with `BrokerAdminClient` and the CLI).
public enum AdminAPI {
    public struct QueueInfo: Codable, Sendable, Hashable {
        public var vhost: String
        public var name: String
        public var durable: Bool
        public var autoDelete: Bool
        public var exclusive: Bool
        public var messagesReady: Int
        public var messagesUnacknowledged: Int
        public var consumers: Int
    }

    public struct ExchangeInfo: Codable, Sendable, Hashable {
        public var vhost: String
        public var name: String
        public var type: String
        public var durable: Bool
        public var autoDelete: Bool
        public var `internal`: Bool
    }

    public struct BindingInfo: Codable, Sendable, Hashable {
        public var vhost: String
        public var source: String
        public var destination: String
        public var destinationType: String
        public var routingKey: String
    }

    public struct ConnectionInfo: Codable, Sendable, Hashable {
        public var name: String
        public var peer: String
        public var user: String?
        public var vhost: String?
        public var tls: Bool
        public var state: String
        public var channels: Int
        public var clientProduct: String?
        public var connectionName: String?
        public var messagesPublished: Int
        public var messagesDelivered: Int
        public var connectedSeconds: Double
    }

    public struct ChannelInfo: Codable, Sendable, Hashable {
        public var connection: String
        public var number: Int
        public var user: String?
        public var vhost: String?
        public var consumers: Int
        public var messagesUnacknowledged: Int
        public var mode: String
    }

    public struct UserInfo: Codable, Sendable, Hashable {
        public var name: String
        public var administrator: Bool
        /// In answers to changes: whether the change was saved in the data directory (false:
        /// the broker runs without one and the change is lost when it stops).
        public var persisted: Bool?
        public init(name: String, administrator: Bool, persisted: Bool? = nil) {
            self.name = name
            self.administrator = administrator
            self.persisted = persisted
        }
    }

    /// The body of `PUT /api/users/NAME`: ours (`administrator`) or RabbitMQ management's
    /// (`tags`, a comma-separated string or a list; "administrator" among them makes one).
    public struct NewUser: Codable, Sendable, Hashable {
        public var password: String
        public var administrator: Bool?
        public var tags: [String]?

        public init(password: String, administrator: Bool) {
            self.password = password
            self.administrator = administrator
        }

        /// RabbitMQ's form, which its management API insists on (`tags` may be empty).
        public init(password: String, tags: [String]) {
            self.password = password
            self.tags = tags
        }

        public var isAdministrator: Bool { self.administrator ?? self.tags?.contains("administrator") ?? false }

        enum CodingKeys: String, CodingKey { case password, administrator, tags }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.password = try container.decode(String.self, forKey: .password)
            self.administrator = try container.decodeIfPresent(Bool.self, forKey: .administrator)
            if let list = try? container.decodeIfPresent([String].self, forKey: .tags) {
                self.tags = list
            } else if let text = try container.decodeIfPresent(String.self, forKey: .tags) {
                self.tags = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.password, forKey: .password)
            try container.encodeIfPresent(self.administrator, forKey: .administrator)
            // A string: what every RabbitMQ version's management API takes.
            try container.encodeIfPresent(self.tags?.joined(separator: ","), forKey: .tags)
        }
    }

    /// A user's permissions in a vhost: the body of `PUT /api/permissions/VHOST/USER`, and
    /// (with `user` and `vhost`) an entry of the `GET` listings, as in RabbitMQ's API.
    public struct Permission: Codable, Sendable, Hashable {
        public var user: String?
        public var vhost: String?
        public var configure: String
        public var write: String
        public var read: String
        /// In answers: whether the change was saved in the data directory (see `UserInfo`).
        public var persisted: Bool?
        public init(user: String? = nil, vhost: String? = nil, configure: String, write: String, read: String, persisted: Bool? = nil) {
            self.user = user
            self.vhost = vhost
            self.configure = configure
            self.write = write
            self.read = read
            self.persisted = persisted
        }
    }

    /// A topic permission: the body of `PUT /api/topic-permissions/VHOST/USER` (one
    /// exchange; a second PUT for it replaces it), and (with `user` and `vhost`) an entry of
    /// the `GET` listings, as in RabbitMQ's management API.
    public struct TopicPermission: Codable, Sendable, Hashable {
        public var user: String?
        public var vhost: String?
        public var exchange: String
        public var write: String
        public var read: String
        /// In answers: whether the change was saved in the data directory (see `UserInfo`).
        public var persisted: Bool?
        public init(user: String? = nil, vhost: String? = nil, exchange: String, write: String, read: String, persisted: Bool? = nil) {
            self.user = user
            self.vhost = vhost
            self.exchange = exchange
            self.write = write
            self.read = read
            self.persisted = persisted
        }
    }

    /// The answer to a `DELETE` of permissions: how many entries went.
    public struct Cleared: Codable, Sendable, Hashable {
        public var removed: Int
        /// Whether the change was saved in the data directory (see `UserInfo`).
        public var persisted: Bool?
        public init(removed: Int, persisted: Bool? = nil) {
            self.removed = removed
            self.persisted = persisted
        }
    }

    public struct Purged: Codable, Sendable, Hashable {
        public var messages: Int
    }

    public struct Failure: Codable, Sendable, Hashable {
        public var error: String
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try Self.decoder.decode(type, from: Data(bytes))
    }

    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        (try? Array(Self.encoder.encode(value))) ?? Array("{}".utf8)
    }
}
