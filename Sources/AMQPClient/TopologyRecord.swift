import AMQPProtocol

/// What the application declared through a connection, replayed after a reconnect:
/// exchanges, queues (server-named ones are re-declared and renamed), and bindings.
/// Deleting an entity removes it and its bindings from the record.
struct TopologyRecord: Sendable {
    struct QueueRecord: Sendable {
        var declare: AMQP.Queue.Declare
        /// Declared with an empty name: the broker picks a new name on each recovery.
        var serverNamed: Bool
    }

    private(set) var exchanges: [AMQP.Exchange.Declare] = []
    private(set) var queues: [QueueRecord] = []
    private(set) var queueBindings: [AMQP.Queue.Bind] = []
    private(set) var exchangeBindings: [AMQP.Exchange.Bind] = []
    /// Names a server-named queue had before recoveries, mapped to its current name.
    private(set) var aliases: [String: String] = [:]

    func currentName(ofQueue name: String) -> String {
        self.aliases[name] ?? name
    }

    mutating func exchangeDeclared(_ declare: AMQP.Exchange.Declare) {
        guard !declare.passive else { return }
        self.exchanges.removeAll { $0.exchange == declare.exchange }
        self.exchanges.append(declare)
    }

    mutating func exchangeDeleted(_ name: String) {
        self.exchanges.removeAll { $0.exchange == name }
        self.queueBindings.removeAll { $0.exchange == name }
        self.exchangeBindings.removeAll { $0.source == name || $0.destination == name }
    }

    mutating func queueDeclared(_ declare: AMQP.Queue.Declare, name: String) {
        guard !declare.passive else { return }
        var declare = declare
        let serverNamed = declare.queue.isEmpty
        declare.queue = name
        self.queues.removeAll { $0.declare.queue == name }
        self.queues.append(QueueRecord(declare: declare, serverNamed: serverNamed))
    }

    mutating func queueDeleted(_ name: String) {
        self.queues.removeAll { $0.declare.queue == name }
        self.queueBindings.removeAll { $0.queue == name }
        self.aliases = self.aliases.filter { $0.value != name }
    }

    mutating func queueBound(_ bind: AMQP.Queue.Bind) {
        self.queueBindings.removeAll { Self.same($0, bind) }
        self.queueBindings.append(bind)
    }

    mutating func queueUnbound(_ unbind: AMQP.Queue.Unbind) {
        self.queueBindings.removeAll { $0.queue == unbind.queue && $0.exchange == unbind.exchange && $0.routingKey == unbind.routingKey && $0.arguments == unbind.arguments }
    }

    mutating func exchangeBound(_ bind: AMQP.Exchange.Bind) {
        self.exchangeBindings.removeAll { $0.destination == bind.destination && $0.source == bind.source && $0.routingKey == bind.routingKey && $0.arguments == bind.arguments }
        self.exchangeBindings.append(bind)
    }

    mutating func exchangeUnbound(_ unbind: AMQP.Exchange.Unbind) {
        self.exchangeBindings.removeAll { $0.destination == unbind.destination && $0.source == unbind.source && $0.routingKey == unbind.routingKey && $0.arguments == unbind.arguments }
    }

    /// A server-named queue came back under a new name: rename it everywhere.
    mutating func queueRenamed(from old: String, to new: String) {
        guard old != new else { return }
        for index in self.queues.indices where self.queues[index].declare.queue == old {
            self.queues[index].declare.queue = new
        }
        for index in self.queueBindings.indices where self.queueBindings[index].queue == old {
            self.queueBindings[index].queue = new
        }
        for (original, current) in self.aliases where current == old {
            self.aliases[original] = new
        }
        self.aliases[old] = new
    }

    private static func same(_ a: AMQP.Queue.Bind, _ b: AMQP.Queue.Bind) -> Bool {
        a.queue == b.queue && a.exchange == b.exchange && a.routingKey == b.routingKey && a.arguments == b.arguments
    }
}
