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
    /// The `alternate-exchange` argument: where messages go that no binding takes.
    var alternateExchange: String? { self.arguments["alternate-exchange"]?.stringValue }
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

/// A queue: FIFO of messages (per priority level with `x-max-priority`), consumers served
/// round-robin (or only the first with `x-single-active-consumer`). Owned by the broker's
/// loop. Arguments it acts on: see `QueueArguments` and docs/broker.md.
final class BrokerQueue {
    let name: String
    let durable: Bool
    /// The connection that declared an exclusive queue.
    let exclusiveOwner: ObjectIdentifier?
    let autoDelete: Bool
    let arguments: FieldTable
    let settings: QueueArguments
    unowned let vhost: VirtualHost
    private unowned let flow: FlowController
    /// Its id in the data directory, 0 when its messages are not persisted.
    var storeID: UInt64 = 0
    /// Change only through `enqueue`, `popFirst`, `requeue` and `purge`, which keep the
    /// byte counts and flow control in step.
    private(set) var messages: PriorityMessages
    /// Body bytes of the ready messages.
    private(set) var readyBytes = 0
    /// Of those, bytes paged out (dropped from memory, read back at delivery).
    private(set) var pagedBytes = 0
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
    /// Some ready message may carry an expiry (x-message-ttl or a message's expiration).
    private var mayExpire = false
    private var expiryTimer: Scheduled<Void>?
    private var expiryTimerAt: Int64 = 0
    private var unusedTimer: Scheduled<Void>?
    /// Last declare, consume, cancel or get (for x-expires), in `BrokerClock` milliseconds.
    private var lastUsed: Int64

    init(name: String, durable: Bool, exclusiveOwner: ObjectIdentifier?, autoDelete: Bool, arguments: FieldTable, vhost: VirtualHost,
         settings: QueueArguments = QueueArguments())
    {
        self.name = name
        self.durable = durable
        self.exclusiveOwner = exclusiveOwner
        self.autoDelete = autoDelete
        self.arguments = arguments
        self.settings = settings
        self.vhost = vhost
        self.flow = vhost.flow
        self.maxReady = vhost.flow.limits.queueMaxReady
        self.resumeReady = vhost.flow.limits.queueResumeReady
        self.messages = PriorityMessages(levels: Int(settings.maxPriority ?? 0) + 1)
        self.lastUsed = BrokerClock.milliseconds()
        self.armUnusedTimer()
    }

    var hasExclusiveConsumer: Bool { self.consumers.first?.exclusive ?? false }

    // MARK: - Messages in

    /// Whether a publish of `message` is refused by the queue's length limits with
    /// `x-overflow` reject-publish(-dlx). Asked before `enqueue`, so a refused message is
    /// neither persisted for this queue nor confirmed (the publisher gets a nack).
    func refuses(_ message: Message) -> Bool {
        guard self.settings.overflow != .dropHead else { return false }
        if let limit = self.settings.maxLength, self.messages.count >= limit { return true }
        if let limit = self.settings.maxLengthBytes, self.readyBytes + message.size > limit { return true }
        return false
    }

    func enqueue(_ message: Message) {
        let size = message.size
        self.readyBytes &+= size
        self.flow.add(size)
        var queued = QueuedMessage(message: message, sequence: self.nextSequence, redelivered: false)
        self.nextSequence &+= 1
        if self.settings.messageTTL != nil || message.properties.expiration != nil {
            let ttl = [self.settings.messageTTL, (try? MessageExpiration.milliseconds(message.properties.expiration)) ?? nil]
                .compactMap { $0 }.min()
            if let ttl {
                queued.expiresAt = BrokerClock.milliseconds() + ttl
                self.mayExpire = true
            }
        }
        self.messages.append(queued, priority: self.priority(of: message))
        if self.storeID != 0, message.storeID != 0, let core = self.vhost.core, core.configuration.storePageOutBytes > 0,
            self.readyBytes - self.pagedBytes > core.configuration.storePageOutBytes
        {
            core.pagingQueues[ObjectIdentifier(self)] = self
        }
        if self.settings.overflow == .dropHead { self.dropOverLimit() }
        if !self.consumers.isEmpty { self.dispatch() }
        if self.mayExpire { self.expireHeads() }
    }

    /// A message recovered from the data directory (redelivered: it may have been
    /// delivered), possibly paged out; `expiresAt` as `RecoveredExpiry` computed it.
    func enqueueRecovered(_ message: Message, expiresAt: Int64) {
        self.readyBytes &+= message.size
        if message.isPagedOut { self.pagedBytes &+= message.size }
        self.flow.add(message.size)
        var queued = QueuedMessage(message: message, sequence: self.nextSequence, redelivered: true)
        self.nextSequence &+= 1
        if expiresAt != 0 {
            queued.expiresAt = expiresAt
            self.mayExpire = true
        }
        self.messages.append(queued, priority: self.priority(of: message))
    }

    private func priority(of message: Message) -> Int {
        guard let maximum = self.settings.maxPriority else { return 0 }
        return Int(Swift.min(message.properties.priority ?? 0, maximum))
    }

    /// x-max-length / x-max-length-bytes with drop-head: the oldest go (dead-lettered).
    private func dropOverLimit() {
        while let limit = self.settings.maxLength, self.messages.count > limit, let head = self.takeHead() {
            self.deadLetter(head, reason: "maxlen")
        }
        while let limit = self.settings.maxLengthBytes, self.readyBytes > limit, let head = self.takeHead() {
            self.deadLetter(head, reason: "maxlen")
        }
    }

    /// After a publish into this queue: a backlog past the high watermark stops reading
    /// from the publishing connection until it drains (see `FlowController`).
    @inline(__always)
    func published(by connection: BrokerConnection) {
        guard self.maxReady > 0, self.messages.count > self.maxReady else { return }
        if connection.blockReading(by: ObjectIdentifier(self)) { self.blockedPublishers.append(connection) }
    }

    // MARK: - Messages out

    /// The next live message; expired ones met on the way are dead-lettered.
    func popFirst() -> QueuedMessage? {
        while let queued = self.takeHead() {
            if queued.expiresAt != 0, queued.expiresAt <= BrokerClock.milliseconds() {
                self.deadLetter(queued, reason: "expired")
                continue
            }
            // The next head may carry an expiry that no timer covers yet.
            if self.mayExpire { self.armExpiryTimer() }
            return queued
        }
        return nil
    }

    private func takeHead() -> QueuedMessage? {
        guard let queued = self.messages.popFirst() else { return nil }
        let size = queued.message.size
        self.readyBytes &-= size
        self.flow.remove(size)
        if queued.message.isPagedOut {
            self.pagedBytes = Swift.max(0, self.pagedBytes - size)
            self.vhost.store?.pageIn(queued.message)
        }
        if !self.blockedPublishers.isEmpty, self.messages.count <= self.resumeReady { self.resumePublishers() }
        return queued
    }

    /// Past `limit` bytes of bodies in memory: drops the bodies served last (newest,
    /// lowest priority) whose records are on disk, down to half the limit. Stops at the
    /// first body already paged out, so each call costs about what arrived since the
    /// last. Returns whether the queue is still over the limit.
    func pageOut(into store: BrokerStore, limit: Int) -> Bool {
        guard !self.isDeleted else { return false }
        let target = limit / 2
        var steps = 0
        self.messages.reverseWalk { queued in
            steps += 1
            let message = queued.message
            if message.isPagedOut || steps > 100_000 { return false }
            if store.pageOut(message) { self.pagedBytes += message.size }
            return self.readyBytes - self.pagedBytes > target
        }
        return self.readyBytes - self.pagedBytes > limit
    }

    func requeue(_ messages: [QueuedMessage]) {
        guard !self.isDeleted else {
            for queued in messages { self.forget(queued.message) }
            return
        }
        var size = 0
        for queued in messages { size &+= queued.message.size }
        self.readyBytes &+= size
        self.flow.add(size)
        if self.settings.maxPriority == nil {
            self.messages.requeue(messages, priority: 0)
        } else {
            var byPriority: [Int: [QueuedMessage]] = [:]
            for queued in messages { byPriority[self.priority(of: queued.message), default: []].append(queued) }
            for (priority, group) in byPriority { self.messages.requeue(group, priority: priority) }
        }
        if self.mayExpire { self.armExpiryTimer() }
    }

    /// Drops every ready message; returns how many there were.
    @discardableResult
    func purge() -> Int {
        if self.storeID != 0, let store = self.vhost.store {
            self.messages.forEach { queued in
                if queued.message.storeID != 0 { store.remove(queued.message, queue: self.storeID) }
            }
        }
        let count = self.messages.removeAll()
        self.flow.remove(self.readyBytes)
        self.readyBytes = 0
        self.pagedBytes = 0
        self.resumePublishers()
        return count
    }

    /// The message left this queue for good (acked, auto-acked, dropped): a persisted one
    /// gets a removal record so it does not come back after a restart.
    @inline(__always)
    func forget(_ message: Message) {
        if message.storeID != 0, self.storeID != 0, let store = self.vhost.store {
            store.remove(message, queue: self.storeID)
        }
    }

    /// Removed without delivery (expired, over the length limit, rejected): to the
    /// dead-letter exchange if the queue has one, then forgotten.
    func deadLetter(_ queued: QueuedMessage, reason: String) {
        if let exchange = self.settings.deadLetterExchange {
            self.vhost.core?.deadLetter(queued, from: self, exchange: exchange, reason: reason)
        }
        self.forget(queued.message)
    }

    private func resumePublishers() {
        guard !self.blockedPublishers.isEmpty else { return }
        let connections = self.blockedPublishers
        self.blockedPublishers.removeAll()
        for connection in connections { connection.unblockReading(by: ObjectIdentifier(self)) }
    }

    // MARK: - Expiry

    /// Dead-letters expired messages at the heads (as RabbitMQ, expiry happens at the
    /// head) and sets a timer for the next one.
    func expireHeads() {
        let now = BrokerClock.milliseconds()
        while let head = self.messages.first, head.expiresAt != 0, head.expiresAt <= now, let queued = self.takeHead() {
            self.deadLetter(queued, reason: "expired")
        }
        self.armExpiryTimer()
    }

    private func armExpiryTimer() {
        guard !self.isDeleted, let next = self.messages.earliestHeadExpiry else { return }
        if self.expiryTimer != nil, self.expiryTimerAt <= next { return }
        self.expiryTimer?.cancel()
        self.expiryTimerAt = next
        let delay = Swift.max(0, next - BrokerClock.milliseconds())
        guard let eventLoop = self.vhost.core?.eventLoop else { return }
        self.expiryTimer = eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay + 1)) { [weak self] in
            guard let self else { return }
            self.expiryTimer = nil
            self.expireHeads()
        }
    }

    // MARK: - x-expires

    /// Declared, consumed from, fetched from: the x-expires clock starts again.
    func used() {
        self.lastUsed = BrokerClock.milliseconds()
    }

    private func armUnusedTimer() {
        guard let expires = self.settings.expires, !self.isDeleted else { return }
        self.unusedTimer?.cancel()
        let delay = Swift.max(0, self.lastUsed + expires - BrokerClock.milliseconds())
        guard let eventLoop = self.vhost.core?.eventLoop else { return }
        self.unusedTimer = eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay + 1)) { [weak self] in
            guard let self, !self.isDeleted else { return }
            self.unusedTimer = nil
            if self.consumers.isEmpty, BrokerClock.milliseconds() >= self.lastUsed + expires {
                self.vhost.core?.deleteQueue(self)
            } else {
                self.armUnusedTimer()
            }
        }
    }

    /// Stops the queue's timers (it was deleted).
    func cancelTimers() {
        self.expiryTimer?.cancel()
        self.expiryTimer = nil
        self.unusedTimer?.cancel()
        self.unusedTimer = nil
    }

    // MARK: - Consumers

    func addConsumer(_ consumer: Consumer) {
        self.consumers.append(consumer)
        self.used()
    }

    func removeConsumer(_ consumer: Consumer) {
        guard let index = self.consumers.firstIndex(where: { $0 === consumer }) else { return }
        self.consumers.remove(at: index)
        if self.nextConsumer > index { self.nextConsumer -= 1 }
        if self.nextConsumer >= self.consumers.count { self.nextConsumer = 0 }
        self.used()
        if self.consumers.isEmpty { self.armUnusedTimer() }
    }

    func removeAllConsumers() -> [Consumer] {
        let all = self.consumers
        self.consumers.removeAll()
        self.nextConsumer = 0
        return all
    }

    /// Hands queued messages to consumers with room, round-robin (only the first consumer
    /// with x-single-active-consumer), until either runs out.
    func dispatch() {
        guard !self.isDispatching, !self.isDeleted else { return }
        self.isDispatching = true
        defer { self.isDispatching = false }
        let single = self.settings.singleActiveConsumer
        while !self.messages.isEmpty, !self.consumers.isEmpty {
            var chosen: Consumer?
            let count = single ? 1 : self.consumers.count
            for offset in 0..<count {
                let index = single ? 0 : (self.nextConsumer + offset) % count
                if self.consumers[index].canTakeMessage {
                    chosen = self.consumers[index]
                    self.nextConsumer = single ? 0 : (index + 1) % count
                    break
                }
            }
            guard let consumer = chosen, let queued = self.popFirst() else { return }
            consumer.channel.deliver(queued, to: consumer)
        }
    }
}

/// Milliseconds of a monotonic clock, for message TTLs and x-expires.
enum BrokerClock {
    @inline(__always)
    static func milliseconds() -> Int64 {
        Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000)
    }
}

/// One virtual host: its exchanges and queues.
final class VirtualHost {
    let name: String
    var exchanges: [String: Exchange] = [:]
    var queues: [String: BrokerQueue] = [:]
    let flow: FlowController
    /// The data directory, when the broker persists (durable entities are recorded there).
    var store: BrokerStore?
    weak var core: BrokerCore?

    init(name: String, flow: FlowController) {
        self.name = name
        self.flow = flow
        for (name, type) in [("amq.direct", ExchangeType.direct), ("amq.fanout", .fanout), ("amq.topic", .topic),
                             ("amq.headers", .headers), ("amq.match", .headers)] {
            self.exchanges[name] = Exchange(name: name, type: type, durable: true, autoDelete: false, isInternal: false, arguments: [:])
        }
    }

    func deleteQueue(_ queue: BrokerQueue) {
        queue.purge()
        queue.isDeleted = true
        queue.cancelTimers()
        self.queues[queue.name] = nil
        if queue.storeID != 0 { self.store?.record(.queueDeleted(vhost: self.name, name: queue.name)) }
        for exchange in queue.boundFrom {
            exchange.unbind(.queue(queue), key: nil, arguments: nil)
            self.autoDeleteIfUnused(exchange)
        }
        queue.boundFrom.removeAll()
    }

    func deleteExchange(_ exchange: Exchange) {
        self.exchanges[exchange.name] = nil
        if exchange.durable { self.store?.record(.exchangeDeleted(vhost: self.name, name: exchange.name)) }
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
