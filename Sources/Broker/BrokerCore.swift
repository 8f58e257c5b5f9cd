import AMQPProtocol
import Logging
import NIOCore

/// All broker state: vhosts, exchanges, queues, consumers and open connections. It is
/// owned by the one event loop every connection lives on, so routing and delivery are
/// plain function calls with no locks or hops (see docs/broker.md).
final class BrokerCore {
    let eventLoop: any EventLoop
    let configuration: BrokerConfiguration
    /// Mutable for the admin API (add-user, delete-user, set-permissions; AdminServer.swift).
    var authenticator: ServerConnectionStateMachine.Authenticator
    /// Administrators and the data directory's users.json (UserStore.swift).
    let userStore: UserStore
    let logger: Logger
    private(set) var vhosts: [String: VirtualHost] = [:]
    /// user -> vhost -> permission.
    var permissions: [String: [String: BrokerPermission]] = [:] { didSet { self.accessGeneration &+= 1 } }
    /// user -> vhost -> exchange -> topic permission (RabbitMQ's topic authorisation).
    var topicPermissions: [String: [String: [String: BrokerTopicPermission]]] = [:] { didSet { self.accessGeneration &+= 1 } }
    /// Counts changes to `permissions` and `topicPermissions`: a connection whose
    /// `AccessControl` is older takes a new one before its next check.
    private(set) var accessGeneration: UInt64 = 0
    var connections: [ObjectIdentifier: BrokerConnection] = [:]
    private var dirtyConnections: [BrokerConnection] = []
    private var flushScheduled = false
    private var routeEpoch: UInt64 = 0
    let flow: FlowController
    /// The data directory's loop side, when persisting (`openStore`, BrokerCore+Store.swift).
    var store: BrokerStore?
    /// Channels whose publisher confirms wait for the store's next fsync.
    var durabilityWaiters: [ObjectIdentifier: ServerChannel] = [:]
    /// Durable queues past `storePageOutBytes` of bodies in memory (paged as records reach disk).
    var pagingQueues: [ObjectIdentifier: BrokerQueue] = [:]
    /// Counters for /metrics (Metrics.swift).
    let statistics = BrokerStatistics()

    init(configuration: BrokerConfiguration, eventLoop: any EventLoop, logger: Logger) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.authenticator = .init(configuration: configuration)
        self.userStore = UserStore(configuration: configuration)
        self.logger = logger
        self.flow = FlowController(limits: configuration.flowLimits)
        for name in configuration.vhosts { self.vhosts[name] = VirtualHost(name: name, flow: self.flow) }
        for vhost in self.vhosts.values { vhost.core = self }
        for permission in configuration.permissions {
            self.permissions[permission.user, default: [:]][permission.vhost] = permission
        }
        for topic in configuration.topicPermissions {
            self.topicPermissions[topic.user, default: [:]][topic.vhost, default: [:]][topic.exchange] = topic
        }
    }

    func permission(user: String, vhost: String) -> BrokerPermission? {
        self.permissions[user]?[vhost]
    }

    /// Every permission, by user then vhost.
    var allPermissions: [BrokerPermission] {
        self.permissions.keys.sorted().flatMap { user in
            let byVhost = self.permissions[user] ?? [:]
            return byVhost.keys.sorted().compactMap { byVhost[$0] }
        }
    }

    /// Every topic permission, by user, vhost then exchange.
    var allTopicPermissions: [BrokerTopicPermission] {
        self.topicPermissions.keys.sorted().flatMap { user in
            let byVhost = self.topicPermissions[user] ?? [:]
            return byVhost.keys.sorted().flatMap { vhost in
                let byExchange = byVhost[vhost] ?? [:]
                return byExchange.keys.sorted().compactMap { byExchange[$0] }
            }
        }
    }

    /// `user`'s permissions in `vhost` as they are now.
    func accessControl(user: String, vhost: String) -> AccessControl {
        AccessControl(
            user: user, vhost: vhost, permission: self.permission(user: user, vhost: vhost),
            topicPermissions: self.topicPermissions[user]?[vhost].map { Array($0.values) } ?? [],
            generation: self.accessGeneration
        )
    }

    /// A connection other than the one being read from has output; it is flushed once at
    /// the end of the current read burst (or on the next loop tick).
    func markDirty(_ connection: BrokerConnection) {
        self.dirtyConnections.append(connection)
        if !self.flushScheduled {
            self.flushScheduled = true
            self.eventLoop.assumeIsolated().execute { self.flushDirtyConnections() }
        }
    }

    func flushDirtyConnections() {
        self.flushScheduled = false
        guard !self.dirtyConnections.isEmpty else { return }
        let connections = self.dirtyConnections
        self.dirtyConnections.removeAll(keepingCapacity: true)
        for connection in connections { connection.flush() }
    }

    /// Every queue the message reaches through `exchange` and exchange-to-exchange
    /// bindings, each once (an epoch stamp dedupes queues and cuts binding loops).
    /// With `vhost`, a message no queue took goes on to the exchange's `alternate-exchange`
    /// (and that one's, each at most once).
    func route(exchange: Exchange, routingKey: String, headers: FieldTable?, into queues: inout [BrokerQueue], vhost: VirtualHost? = nil) {
        self.routeEpoch &+= 1
        let epoch = self.routeEpoch
        exchange.routeEpoch = epoch
        self.route(exchange, routingKey, headers, epoch, &queues)
        guard queues.isEmpty, let vhost else { return }
        var current = exchange
        while queues.isEmpty, let name = current.alternateExchange, let alternate = vhost.exchanges[name], alternate.routeEpoch != epoch {
            alternate.routeEpoch = epoch
            self.route(alternate, routingKey, headers, epoch, &queues)
            current = alternate
        }
    }

    private func route(_ exchange: Exchange, _ routingKey: String, _ headers: FieldTable?, _ epoch: UInt64, _ queues: inout [BrokerQueue]) {
        exchange.forEachMatch(routingKey: routingKey, headers: headers) { destination in
            switch destination {
            case .queue(let queue):
                if queue.routeEpoch != epoch {
                    queue.routeEpoch = epoch
                    queues.append(queue)
                }
            case .exchange(let next):
                if next.routeEpoch != epoch {
                    next.routeEpoch = epoch
                    self.route(next, routingKey, headers, epoch, &queues)
                }
            }
        }
    }

    static func randomName(prefix: String) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        return prefix + String((0..<22).map { _ in alphabet.randomElement()! })
    }
}
