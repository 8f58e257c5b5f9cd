import AMQPProtocol
import NIOCore

/// Where a binding leads.
enum BindingDestination {
    case queue(BrokerQueue)
    case exchange(Exchange)

    var name: String {
        switch self {
        case .queue(let queue): return queue.name
        case .exchange(let exchange): return exchange.name
        }
    }

    func isSame(as other: BindingDestination) -> Bool {
        switch (self, other) {
        case (.queue(let a), .queue(let b)): return a === b
        case (.exchange(let a), .exchange(let b)): return a === b
        default: return false
        }
    }
}

struct Binding {
    var destination: BindingDestination
    var key: String
    var arguments: FieldTable
    /// Compiled for topic exchanges only.
    var topic: TopicPattern?
}

/// An exchange and its outgoing bindings. Owned by the broker's event loop.
final class Exchange {
    let name: String
    let type: ExchangeType
    let durable: Bool
    let autoDelete: Bool
    let isInternal: Bool
    let arguments: FieldTable
    private(set) var bindings: [Binding] = []
    /// Direct exchanges: routing key -> indices into `bindings`.
    private var directIndex: [String: [Int]] = [:]
    /// Topic exchanges: routing key -> indices into `bindings`, cleared on any change.
    private var topicCache: [String: [Int]] = [:]
    /// Bindings that lead here from other exchanges (for cleanup when this one goes).
    var incomingSources: [Exchange] = []
    var routeEpoch: UInt64 = 0

    init(name: String, type: ExchangeType, durable: Bool, autoDelete: Bool, isInternal: Bool, arguments: FieldTable) {
        self.name = name
        self.type = type
        self.durable = durable
        self.autoDelete = autoDelete
        self.isInternal = isInternal
        self.arguments = arguments
    }

    /// Adds a binding; returns false if an identical one already exists.
    @discardableResult
    func bind(_ destination: BindingDestination, key: String, arguments: FieldTable) -> Bool {
        if self.bindings.contains(where: { $0.destination.isSame(as: destination) && $0.key == key && $0.arguments == arguments }) {
            return false
        }
        self.bindings.append(Binding(
            destination: destination, key: key, arguments: arguments,
            topic: self.type == .topic ? TopicPattern(key) : nil
        ))
        self.reindex()
        return true
    }

    /// Removes matching bindings; `key`/`arguments` nil means every binding to the destination.
    func unbind(_ destination: BindingDestination, key: String?, arguments: FieldTable?) {
        let before = self.bindings.count
        self.bindings.removeAll {
            $0.destination.isSame(as: destination) && (key == nil || $0.key == key!)
                && (arguments == nil || $0.arguments == arguments!)
        }
        if self.bindings.count != before { self.reindex() }
    }

    func hasBinding(_ destination: BindingDestination, key: String, arguments: FieldTable) -> Bool {
        self.bindings.contains { $0.destination.isSame(as: destination) && $0.key == key && $0.arguments == arguments }
    }

    private func reindex() {
        self.topicCache.removeAll()
        guard self.type == .direct else { return }
        self.directIndex.removeAll(keepingCapacity: true)
        for (index, binding) in self.bindings.enumerated() {
            self.directIndex[binding.key, default: []].append(index)
        }
    }

    /// Calls `body` for each binding the message matches.
    @inline(__always)
    func forEachMatch(routingKey: String, headers: FieldTable?, _ body: (BindingDestination) -> Void) {
        switch self.type {
        case .direct:
            if let indices = self.directIndex[routingKey] {
                for index in indices { body(self.bindings[index].destination) }
            }
        case .fanout:
            for binding in self.bindings { body(binding.destination) }
        case .topic:
            let indices: [Int]
            if let cached = self.topicCache[routingKey] {
                indices = cached
            } else {
                indices = self.bindings.indices.filter { self.bindings[$0].topic!.matches(routingKey) }
                if self.topicCache.count >= 4096 { self.topicCache.removeAll(keepingCapacity: true) }
                self.topicCache[routingKey] = indices
            }
            for index in indices { body(self.bindings[index].destination) }
        case .headers:
            for binding in self.bindings where HeadersMatch.matches(binding: binding.arguments, headers: headers) {
                body(binding.destination)
            }
        }
    }
}

/// A subscription of a channel to a queue.
final class Consumer {
    let tag: String
    unowned let channel: ServerChannel
    unowned let queue: BrokerQueue
    let noAck: Bool
    let exclusive: Bool
    /// Per-consumer prefetch (basic.qos global=false at consume time); 0 is unlimited.
    let prefetchCount: UInt16
    var unackedCount = 0

    init(tag: String, channel: ServerChannel, queue: BrokerQueue, noAck: Bool, exclusive: Bool, prefetchCount: UInt16) {
        self.tag = tag
        self.channel = channel
        self.queue = queue
        self.noAck = noAck
        self.exclusive = exclusive
        self.prefetchCount = prefetchCount
    }

    var canTakeMessage: Bool {
        if self.noAck { return self.channel.isActive }
        if self.prefetchCount != 0, self.unackedCount >= Int(self.prefetchCount) { return false }
        return self.channel.canTakeMessage
    }
}

/// A queue: FIFO of messages, consumers served round-robin. Owned by the broker's loop.
final class BrokerQueue {
    let name: String
    let durable: Bool
    /// The connection that declared an exclusive queue.
    let exclusiveOwner: ObjectIdentifier?
    let autoDelete: Bool
    let arguments: FieldTable
    unowned let vhost: VirtualHost
    private unowned let flow: FlowController
    /// Change only through `enqueue`, `popFirst`, `requeue` and `purge`, which keep the
    /// byte counts and flow control in step.
    private(set) var messages = MessageBuffer()
    /// Body bytes of the ready messages.
    private(set) var readyBytes = 0
    private(set) var consumers: [Consumer] = []
    private var nextConsumer = 0
    private var nextSequence: UInt64 = 0
    var routeEpoch: UInt64 = 0
    var isDeleted = false
    /// Exchanges with bindings to this queue.
    var boundFrom: [Exchange] = []
    private var isDispatching = false
    /// Connections no longer read because this queue's backlog passed the high watermark.
    private var blockedPublishers: [BrokerConnection] = []
    private let maxReady: Int
    private let resumeReady: Int

    init(name: String, durable: Bool, exclusiveOwner: ObjectIdentifier?, autoDelete: Bool, arguments: FieldTable, vhost: VirtualHost) {
        self.name = name
        self.durable = durable
        self.exclusiveOwner = exclusiveOwner
        self.autoDelete = autoDelete
        self.arguments = arguments
        self.vhost = vhost
        self.flow = vhost.flow
        self.maxReady = vhost.flow.limits.queueMaxReady
        self.resumeReady = vhost.flow.limits.queueResumeReady
    }

    var hasExclusiveConsumer: Bool { self.consumers.first?.exclusive ?? false }

    func enqueue(_ message: Message) {
        let size = message.size
        self.readyBytes &+= size
        self.flow.add(size)
        self.messages.append(QueuedMessage(message: message, sequence: self.nextSequence, redelivered: false))
        self.nextSequence &+= 1
        if !self.consumers.isEmpty { self.dispatch() }
    }

    /// After a publish into this queue: a backlog past the high watermark stops reading
    /// from the publishing connection until it drains (see `FlowController`).
    @inline(__always)
    func published(by connection: BrokerConnection) {
        guard self.maxReady > 0, self.messages.count > self.maxReady else { return }
        if connection.blockReading(by: ObjectIdentifier(self)) { self.blockedPublishers.append(connection) }
    }

    func popFirst() -> QueuedMessage? {
        guard let queued = self.messages.popFirst() else { return nil }
        let size = queued.message.size
        self.readyBytes &-= size
        self.flow.remove(size)
        if !self.blockedPublishers.isEmpty, self.messages.count <= self.resumeReady { self.resumePublishers() }
        return queued
    }

    func requeue(_ messages: [QueuedMessage]) {
        guard !self.isDeleted else { return }
        var size = 0
        for queued in messages { size &+= queued.message.size }
        self.readyBytes &+= size
        self.flow.add(size)
        self.messages.requeue(messages)
    }

    /// Drops every ready message; returns how many there were.
    @discardableResult
    func purge() -> Int {
        let count = self.messages.removeAll()
        self.flow.remove(self.readyBytes)
        self.readyBytes = 0
        self.resumePublishers()
        return count
    }

    private func resumePublishers() {
        guard !self.blockedPublishers.isEmpty else { return }
        let connections = self.blockedPublishers
        self.blockedPublishers.removeAll()
        for connection in connections { connection.unblockReading(by: ObjectIdentifier(self)) }
    }

    func addConsumer(_ consumer: Consumer) {
        self.consumers.append(consumer)
    }

    func removeConsumer(_ consumer: Consumer) {
        guard let index = self.consumers.firstIndex(where: { $0 === consumer }) else { return }
        self.consumers.remove(at: index)
        if self.nextConsumer > index { self.nextConsumer -= 1 }
        if self.nextConsumer >= self.consumers.count { self.nextConsumer = 0 }
    }

    func removeAllConsumers() -> [Consumer] {
        let all = self.consumers
        self.consumers.removeAll()
        self.nextConsumer = 0
        return all
    }

    /// Hands queued messages to consumers with room, round-robin, until either runs out.
    func dispatch() {
        guard !self.isDispatching, !self.isDeleted else { return }
        self.isDispatching = true
        defer { self.isDispatching = false }
        while !self.messages.isEmpty, !self.consumers.isEmpty {
            var chosen: Consumer?
            let count = self.consumers.count
            for offset in 0..<count {
                let index = (self.nextConsumer + offset) % count
                if self.consumers[index].canTakeMessage {
                    chosen = self.consumers[index]
                    self.nextConsumer = (index + 1) % count
                    break
                }
            }
            guard let consumer = chosen, let queued = self.popFirst() else { return }
            consumer.channel.deliver(queued, to: consumer)
        }
    }
}

/// One virtual host: its exchanges and queues.
final class VirtualHost {
    let name: String
    var exchanges: [String: Exchange] = [:]
    var queues: [String: BrokerQueue] = [:]
    let flow: FlowController

    init(name: String, flow: FlowController) {
        self.name = name
        self.flow = flow
        for (name, type) in [("amq.direct", ExchangeType.direct), ("amq.fanout", .fanout), ("amq.topic", .topic),
                             ("amq.headers", .headers), ("amq.match", .headers)] {
            self.exchanges[name] = Exchange(name: name, type: type, durable: true, autoDelete: false, isInternal: false, arguments: [:])
        }
    }

    func deleteQueue(_ queue: BrokerQueue) {
        queue.isDeleted = true
        self.queues[queue.name] = nil
        for exchange in queue.boundFrom {
            exchange.unbind(.queue(queue), key: nil, arguments: nil)
            self.autoDeleteIfUnused(exchange)
        }
        queue.boundFrom.removeAll()
        queue.purge()
    }

    func deleteExchange(_ exchange: Exchange) {
        self.exchanges[exchange.name] = nil
        for binding in exchange.bindings {
            switch binding.destination {
            case .queue(let queue): queue.boundFrom.removeAll { $0 === exchange }
            case .exchange(let destination): destination.incomingSources.removeAll { $0 === exchange }
            }
        }
        for source in exchange.incomingSources {
            source.unbind(.exchange(exchange), key: nil, arguments: nil)
            self.autoDeleteIfUnused(source)
        }
        exchange.incomingSources.removeAll()
    }

    func autoDeleteIfUnused(_ exchange: Exchange) {
        if exchange.autoDelete, exchange.bindings.isEmpty, self.exchanges[exchange.name] === exchange {
            self.deleteExchange(exchange)
        }
    }
}
