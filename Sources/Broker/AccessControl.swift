/// One connection's permissions in its vhost, as RabbitMQ's internal authorisation backend
/// applies them: the configure/write/read patterns against exchange and queue names, and
/// the topic permissions against routing keys on topic exchanges (docs/broker.md,
/// "Permissions"). Verdicts are cached per name, so the regular expressions run once per
/// exchange, queue or routing key, not once per message.
///
/// A value of the permissions at one `generation` of the broker's tables: the connection
/// takes a new one when the admin API changed any (`BrokerConnection.access`), so a change
/// reaches open channels at their next operation, as with RabbitMQ (which reads its
/// database at every check).
final class AccessControl {
    enum Kind: String { case configure, write, read }

    let user: String
    let vhost: String
    /// `BrokerCore.accessGeneration` when this was built.
    let generation: UInt64
    private let patterns: [Kind: Regex<AnyRegexOutput>?]
    private var cache: [Kind: [String: Bool]] = [:]
    private var lastWritableExchange: String?
    /// Per topic exchange named in a topic permission: its write and read patterns, with
    /// `{username}` and `{vhost}` expanded (nil: a pattern that does not compile, which
    /// allows nothing).
    private let topicPatterns: [String: (write: Regex<AnyRegexOutput>?, read: Regex<AnyRegexOutput>?)]
    private var topicCache: [Kind: [String: [String: Bool]]] = [:]

    static let cacheLimit = 10_000

    init(user: String, vhost: String, permission: BrokerPermission?, topicPermissions: [BrokerTopicPermission] = [], generation: UInt64 = 0) {
        self.user = user
        self.vhost = vhost
        self.generation = generation
        self.patterns = [
            .configure: permission.flatMap { Self.compile($0.configure) },
            .write: permission.flatMap { Self.compile($0.write) },
            .read: permission.flatMap { Self.compile($0.read) },
        ]
        var topicPatterns: [String: (write: Regex<AnyRegexOutput>?, read: Regex<AnyRegexOutput>?)] = [:]
        for topic in topicPermissions where topic.user == user && topic.vhost == vhost {
            topicPatterns[topic.exchange] = (
                Self.compile(Self.expand(topic.write, user: user, vhost: vhost)),
                Self.compile(Self.expand(topic.read, user: user, vhost: vhost))
            )
        }
        self.topicPatterns = topicPatterns
    }

    /// RabbitMQ reads an empty pattern as "^$"; otherwise the match is unanchored.
    static func compile(_ pattern: String) -> Regex<AnyRegexOutput>? {
        try? Regex(pattern.isEmpty ? "^$" : pattern)
    }

    /// A topic pattern with RabbitMQ's variables replaced by the connection's user and
    /// vhost. As in RabbitMQ, the values go in as they are (not escaped): a user name with
    /// regular expression characters means them.
    static func expand(_ pattern: String, user: String, vhost: String) -> String {
        let anchored = pattern.isEmpty ? "^$" : pattern
        guard anchored.contains("{") else { return anchored }
        return anchored.replacing("{username}", with: user).replacing("{vhost}", with: vhost)
    }

    private static func matches(_ regex: Regex<AnyRegexOutput>?, _ text: String) -> Bool {
        guard let regex else { return false }
        return (try? regex.firstMatch(in: text)) != nil
    }

    func isAllowed(_ kind: Kind, _ name: String) -> Bool {
        if let verdict = self.cache[kind]?[name] { return verdict }
        let verdict = Self.matches(self.patterns[kind] ?? nil, name)
        if (self.cache[kind]?.count ?? 0) > Self.cacheLimit { self.cache[kind] = [:] }
        self.cache[kind, default: [:]][name] = verdict
        return verdict
    }

    func check(_ kind: Kind, exchange name: String) throws(BrokerError) {
        // Every publish checks write access; most go to the same exchange as the last.
        if kind == .write, let last = self.lastWritableExchange, last == name { return }
        let resource = name.isEmpty ? "amq.default" : name
        guard self.isAllowed(kind, resource) else {
            throw .accessRefused("\(kind) access to exchange '\(resource)' in vhost '\(self.vhost)' refused for user '\(self.user)'")
        }
        if kind == .write { self.lastWritableExchange = name }
    }

    func check(_ kind: Kind, queue name: String) throws(BrokerError) {
        guard self.isAllowed(kind, name) else {
            throw .accessRefused("\(kind) access to queue '\(name)' in vhost '\(self.vhost)' refused for user '\(self.user)'")
        }
    }

    /// Whether `routingKey` may be published with (`.write`) or bound with (`.read`) on the
    /// topic exchange `exchange`. RabbitMQ's rule: a user without a topic permission for
    /// that exchange may use every routing key.
    func isTopicAllowed(_ kind: Kind, exchange: String, routingKey: String) -> Bool {
        guard let rule = self.topicPatterns[exchange] else { return true }
        if let verdict = self.topicCache[kind]?[exchange]?[routingKey] { return verdict }
        let verdict: Bool
        switch kind {
        case .write: verdict = Self.matches(rule.write, routingKey)
        case .read: verdict = Self.matches(rule.read, routingKey)
        case .configure: preconditionFailure("topic permissions have no configure part")
        }
        if (self.topicCache[kind]?[exchange]?.count ?? 0) > Self.cacheLimit { self.topicCache[kind]?[exchange] = [:] }
        self.topicCache[kind, default: [:]][exchange, default: [:]][routingKey] = verdict
        return verdict
    }

    /// Topic authorisation, checked only where the exchange is of type topic (RabbitMQ's
    /// `check_topic_authorisation`): publishes (write, the routing key), and queue and
    /// exchange bindings with a topic exchange as source (read, the binding key).
    func checkTopic(_ kind: Kind, exchange: Exchange, routingKey: String) throws(BrokerError) {
        guard !self.topicPatterns.isEmpty, exchange.type == .topic else { return }
        guard self.isTopicAllowed(kind, exchange: exchange.name, routingKey: routingKey) else {
            throw .accessRefused("\(kind) access to topic '\(routingKey)' in exchange '\(exchange.name)' in vhost '\(self.vhost)' refused for user '\(self.user)'")
        }
    }
}
