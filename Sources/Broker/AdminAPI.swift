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

    public struct NewUser: Codable, Sendable, Hashable {
        public var password: String
        public var administrator: Bool
        public init(password: String, administrator: Bool) {
            self.password = password
            self.administrator = administrator
        }
    }

    public struct Permission: Codable, Sendable, Hashable {
        public var configure: String
        public var write: String
        public var read: String
        /// In answers: whether the change was saved in the data directory (see `UserInfo`).
        public var persisted: Bool?
        public init(configure: String, write: String, read: String, persisted: Bool? = nil) {
            self.configure = configure
            self.write = write
            self.read = read
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
