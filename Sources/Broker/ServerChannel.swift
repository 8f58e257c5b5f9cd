import AMQPProtocol
import NIOCore

/// One open channel of a connection: its consumers, unacknowledged deliveries, qos,
/// confirm/tx mode and content reassembly. Lives on the broker loop.
final class ServerChannel {
    struct Unacked {
        var tag: UInt64
        var queue: BrokerQueue
        var consumer: Consumer?
        var message: QueuedMessage
        var settled = false
    }

    enum Mode { case normal, confirm, transactional }

    enum AckKind { case ack, nack, reject }

    let id: UInt16
    unowned let connection: BrokerConnection
    var isClosing = false
    /// channel.flow active flag: deliveries pause while false.
    var isFlowActive = true
    var assembler = ContentAssembler<AMQP.Basic.Publish>()
    private(set) var consumers: [String: Consumer] = [:]
    private var unacked: [Unacked] = []
    private var unackedHead = 0
    private(set) var unackedLive = 0
    private var nextDeliveryTag: UInt64 = 1
    /// basic.qos global=true: limit over all of the channel's consumers.
    private var channelPrefetch: UInt16 = 0
    /// basic.qos global=false: applies to consumers created afterwards.
    private var consumerPrefetch: UInt16 = 0
    private(set) var mode = Mode.normal
    private var confirms = PublisherConfirms()
    var confirmPending = false
    private var txPublishes: [(AMQP.Basic.Publish, Message)] = []
    private var txAcks: [(AckKind, UInt64, Bool, Bool)] = []
    /// A `tx.commit` whose persistent messages are not on disk yet: its commit-ok waits
    /// for this store ticket, as a confirm would (0: none waits).
    private var commitTicket: UInt64 = 0
    /// The queue last declared here, which an empty queue name in bind/consume/get means.
    private var lastQueueName: String?
    private var scratchQueues: [BrokerQueue] = []
    private var lastDefaultRoute: BrokerQueue?

    init(id: UInt16, connection: BrokerConnection) {
        self.id = id
        self.connection = connection
    }

    var isActive: Bool { !self.isClosing && self.isFlowActive && self.connection.canDeliver }

    /// Has consumers or unacknowledged deliveries (flow control never blocks such a connection).
    var isConsuming: Bool { !self.consumers.isEmpty || self.unackedLive > 0 }

    var canTakeMessage: Bool {
        self.isActive && (self.channelPrefetch == 0 || self.unackedLive < Int(self.channelPrefetch))
    }

    private var core: BrokerCore { self.connection.core }
    private var vhost: VirtualHost { self.connection.vhost! }
    private var access: AccessControl { self.connection.access! }

    // MARK: - Dispatch

    func methodReceived(_ method: AMQP.Method) throws(BrokerError) {
        switch method {
        case .basicPublish(let publish):
            if publish.immediate { throw .notImplemented("immediate=true") }
            do { try self.assembler.methodReceived(publish) } catch { throw .connection(error.replyCode, error.message) }
        case .basicAck(let ack): try self.settle(.ack, ack.deliveryTag, multiple: ack.multiple, requeue: false)
        case .basicNack(let nack): try self.settle(.nack, nack.deliveryTag, multiple: nack.multiple, requeue: nack.requeue)
        case .basicReject(let reject): try self.settle(.reject, reject.deliveryTag, multiple: false, requeue: reject.requeue)
        case .basicQos(let qos): try self.qos(qos)
        case .basicConsume(let consume): try self.consume(consume)
        case .basicCancel(let cancel): self.cancel(cancel)
        case .basicGet(let get): try self.get(get)
        case .basicRecover:
            self.requeueAllUnacked()
            self.send(.basicRecoverOk(.init()))
        case .basicRecoverAsync:
            self.requeueAllUnacked()
        case .exchangeDeclare(let declare): try self.exchangeDeclare(declare)
        case .exchangeDelete(let delete): try self.exchangeDelete(delete)
        case .exchangeBind(let bind): try self.exchangeBind(bind)
        case .exchangeUnbind(let unbind): try self.exchangeUnbind(unbind)
        case .queueDeclare(let declare): try self.queueDeclare(declare)
        case .queueBind(let bind): try self.queueBind(bind)
        case .queueUnbind(let unbind): try self.queueUnbind(unbind)
        case .queuePurge(let purge): try self.queuePurge(purge)
        case .queueDelete(let delete): try self.queueDelete(delete)
        case .confirmSelect(let select):
            if self.mode == .transactional { throw .preconditionFailed("cannot switch from tx to confirm mode") }
            self.mode = .confirm
            if !select.nowait { self.send(.confirmSelectOk(.init())) }
        case .txSelect:
            if self.mode == .confirm { throw .preconditionFailed("cannot switch from confirm to tx mode") }
            self.mode = .transactional
            self.send(.txSelectOk(.init()))
        case .txCommit: try self.txCommit()
        case .txRollback:
            guard self.mode == .transactional else { throw .preconditionFailed("channel is not transactional") }
            self.txPublishes.removeAll()
            self.txAcks.removeAll()
            self.send(.txRollbackOk(.init()))
        case .channelFlow(let flow):
            self.isFlowActive = flow.active
            self.send(.channelFlowOk(.init(active: flow.active)))
            if flow.active { self.dispatchConsumerQueues() }
        case .channelFlowOk:
            break
        case .channelOpen:
            throw .channelError("second 'channel.open' seen")
        default:
            throw .commandInvalid("method \(method.name) is not accepted by a server")
        }
    }

    func headerReceived(_ header: ContentHeader) throws(BrokerError) {
        let content: Content<AMQP.Basic.Publish>?
        do { content = try self.assembler.headerReceived(header) } catch { throw .connection(error.replyCode, error.message) }
        if let content { try self.publish(content) }
    }

    func bodyReceived(_ body: ByteBuffer) throws(BrokerError) {
        let content: Content<AMQP.Basic.Publish>?
        do { content = try self.assembler.bodyReceived(body) } catch { throw .connection(error.replyCode, error.message) }
        if let content { try self.publish(content) }
    }

    private func send(_ method: AMQP.Method) {
        self.connection.writeMethod(channel: self.id, method)
    }

    // MARK: - Publishing

    private func publish(_ content: Content<AMQP.Basic.Publish>) throws(BrokerError) {
        let publish = content.method
        // RabbitMQ's order: write access, the exchange (404, internal 403), the routing key
        // (topic authorisation), then the message's own properties.
        let access = self.access
        try access.check(.write, exchange: publish.exchange)
        let exchange = try self.lookupExchange(publish.exchange)
        if let exchange { try access.checkTopic(.write, exchange: exchange, routingKey: publish.routingKey) }
        if let userID = content.properties.userId, userID != access.user {
            throw .preconditionFailed("user_id property set to '\(userID)' but authenticated user was '\(access.user)'")
        }
        if content.properties.expiration != nil { _ = try MessageExpiration.milliseconds(content.properties.expiration) }
        let message = Message(exchange: publish.exchange, routingKey: publish.routingKey, properties: content.properties, body: content.body)
        if self.mode == .transactional {
            self.txPublishes.append((publish, message))
            return
        }
        var (ticket, refused) = self.route(publish, message, through: exchange)
        if ticket != 0, self.core.store?.failure != nil {
            // Not on disk and never will be: the publisher gets a nack.
            (ticket, refused) = (0, true)
        }
        if self.mode == .confirm {
            self.confirms.published(ticket: ticket, refused: refused)
            if ticket != 0, let store = self.core.store, ticket > store.durableTicket {
                self.core.durabilityWaiters[ObjectIdentifier(self)] = self
            }
            if !self.confirmPending {
                self.confirmPending = true
                self.connection.confirmsPending(on: self)
            }
        }
    }

    private func lookupExchange(_ name: String) throws(BrokerError) -> Exchange? {
        if name.isEmpty { return nil }
        guard let exchange = self.vhost.exchanges[name] else {
            throw .notFound("no exchange '\(name)' in vhost '\(self.vhost.name)'")
        }
        if exchange.isInternal {
            throw .accessRefused("cannot publish to internal exchange '\(name)' in vhost '\(self.vhost.name)'")
        }
        return exchange
    }

    /// Routes and enqueues through `exchange` (nil: the default exchange); returns the store
    /// ticket a confirm must wait for (0: none) and whether a queue refused the message
    /// (x-overflow reject-publish: nack).
    private func route(_ publish: AMQP.Basic.Publish, _ message: Message, through exchange: Exchange?) -> (ticket: UInt64, refused: Bool) {
        guard let exchange else {
            // The default exchange: straight to the queue of that name.
            if let queue = self.defaultExchangeQueue(publish.routingKey) {
                if queue.refuses(message) {
                    if queue.settings.overflow == .rejectPublishDLX { queue.deadLetter(QueuedMessage(message: message, sequence: 0, redelivered: false), reason: "maxlen") }
                    return (0, true)
                }
                let ticket = message.isPersistent && queue.storeID != 0 ? self.core.persistIfNeeded(message, queues: [queue]) : 0
                queue.enqueue(message)
                queue.published(by: self.connection)
                self.core.flow.published(by: self.connection)
                return (ticket, false)
            } else if publish.mandatory {
                self.returnMessage(publish, message)
            }
            return (0, false)
        }
        self.scratchQueues.removeAll(keepingCapacity: true)
        self.core.route(exchange: exchange, routingKey: publish.routingKey, headers: message.properties.headers, into: &self.scratchQueues, vhost: self.vhost)
        if self.scratchQueues.isEmpty {
            if publish.mandatory { self.returnMessage(publish, message) }
            return (0, false)
        }
        var refused = false
        for queue in self.scratchQueues where queue.refuses(message) {
            refused = true
            if queue.settings.overflow == .rejectPublishDLX { queue.deadLetter(QueuedMessage(message: message, sequence: 0, redelivered: false), reason: "maxlen") }
        }
        if refused { self.scratchQueues.removeAll { $0.refuses(message) } }
        let ticket = self.core.persistIfNeeded(message, queues: self.scratchQueues)
        for queue in self.scratchQueues {
            queue.enqueue(message)
            queue.published(by: self.connection)
        }
        self.scratchQueues.removeAll(keepingCapacity: true)
        self.core.flow.published(by: self.connection)
        return (ticket, refused)
    }

    /// The default exchange's route, with the last answer remembered: a publisher usually
    /// sends to one queue, and comparing a short name is cheaper than hashing it.
    private func defaultExchangeQueue(_ name: String) -> BrokerQueue? {
        if let last = self.lastDefaultRoute, !last.isDeleted, last.name == name { return last }
        let queue = self.vhost.queues[name]
        self.lastDefaultRoute = queue
        return queue
    }

    private func returnMessage(_ publish: AMQP.Basic.Publish, _ message: Message) {
        self.connection.writeContent(
            channel: self.id,
            method: .basicReturn(.init(replyCode: ReplyCode.noRoute, replyText: "NO_ROUTE", exchange: publish.exchange, routingKey: publish.routingKey)),
            properties: message.properties, body: message.body
        )
    }

    /// Called by the connection once per read burst: one multiple-ack covers every
    /// publish since the last, up to the first persistent one not yet on disk.
    func flushConfirms() {
        guard self.confirmPending else { return }
        self.confirmPending = false
        self.sendConfirms()
    }

    /// The store's fsync reached `durable`; returns true when nothing waits any more.
    func durabilityAdvanced(to durable: UInt64) -> Bool {
        self.sendConfirms()
        self.sendCommitIfDurable(durable)
        return (!self.confirms.isWaiting && self.commitTicket == 0) || self.isClosing
    }

    /// The store failed: confirms waiting for the disk become nacks, and a commit waiting
    /// for it fails the channel (541) instead of being acknowledged.
    func diskFailed() {
        if self.commitTicket != 0 {
            self.commitTicket = 0
            if !self.isClosing {
                self.connection.failChannel(self, .channel(ReplyCode.internalError, "INTERNAL_ERROR - the data directory cannot be written; the transaction is not committed"))
            }
        }
        for action in self.confirms.diskFailed() where !self.isClosing {
            switch action {
            case .ack(let tag, let multiple): self.send(.basicAck(.init(deliveryTag: tag, multiple: multiple)))
            case .nack(let tag): self.send(.basicNack(.init(deliveryTag: tag, multiple: false, requeue: false)))
            }
        }
    }

    private func sendConfirms() {
        let durable = self.core.store?.durableTicket ?? .max
        for action in self.confirms.confirmable(durable: durable) where !self.isClosing {
            switch action {
            case .ack(let tag, let multiple): self.send(.basicAck(.init(deliveryTag: tag, multiple: multiple)))
            case .nack(let tag): self.send(.basicNack(.init(deliveryTag: tag, multiple: false, requeue: false)))
            }
        }
    }

    private func txCommit() throws(BrokerError) {
        guard self.mode == .transactional else { throw .preconditionFailed("channel is not transactional") }
        let publishes = self.txPublishes
        let acks = self.txAcks
        self.txPublishes.removeAll()
        self.txAcks.removeAll()
        var ticket: UInt64 = 0
        for (publish, message) in publishes {
            // The exchange may have gone since the publish was checked.
            ticket = max(ticket, self.route(publish, message, through: try self.lookupExchange(publish.exchange)).ticket)
        }
        for (kind, tag, multiple, requeue) in acks { try self.applySettle(kind, tag, multiple: multiple, requeue: requeue) }
        // commit-ok promises the publishes are the broker's: persistent ones must be on
        // disk first, or a crash right after it would lose what the client saw committed.
        guard ticket != 0, let store = self.core.store, ticket > store.durableTicket else {
            self.send(.txCommitOk(.init()))
            return
        }
        if let failure = store.failure {
            throw .channel(ReplyCode.internalError, "INTERNAL_ERROR - the data directory cannot be written: \(failure)")
        }
        self.commitTicket = ticket
        self.core.durabilityWaiters[ObjectIdentifier(self)] = self
    }

    /// The commit-ok a `tx.commit` waits for, once the store is durable up to its ticket.
    private func sendCommitIfDurable(_ durable: UInt64) {
        guard self.commitTicket != 0, durable >= self.commitTicket else { return }
        self.commitTicket = 0
        if !self.isClosing { self.send(.txCommitOk(.init())) }
    }

    // MARK: - Delivery and acknowledgement

    func deliver(_ queued: QueuedMessage, to consumer: Consumer) {
        let tag = self.nextDeliveryTag
        self.nextDeliveryTag += 1
        if !consumer.noAck {
            self.unacked.append(Unacked(tag: tag, queue: consumer.queue, consumer: consumer, message: queued))
            self.unackedLive += 1
            consumer.unackedCount += 1
            self.core.flow.add(queued.message.size)
        } else {
            consumer.queue.forget(queued.message)
        }
        let message = queued.message
        self.connection.writeContent(
            channel: self.id,
            method: .basicDeliver(.init(
                consumerTag: consumer.tag, deliveryTag: tag, redelivered: queued.redelivered,
                exchange: message.exchange, routingKey: message.routingKey
            )),
            properties: message.properties, body: message.body
        )
    }

    private func settle(_ kind: AckKind, _ tag: UInt64, multiple: Bool, requeue: Bool) throws(BrokerError) {
        if self.mode == .transactional {
            try self.checkTag(tag, multiple: multiple)
            self.txAcks.append((kind, tag, multiple, requeue))
            return
        }
        try self.applySettle(kind, tag, multiple: multiple, requeue: requeue)
    }

    private func checkTag(_ tag: UInt64, multiple: Bool) throws(BrokerError) {
        if tag == 0, multiple { return }
        guard let index = self.liveIndex(of: tag), !self.unacked[index].settled else {
            throw .preconditionFailed("unknown delivery tag \(tag)")
        }
    }

    private func liveIndex(of tag: UInt64) -> Int? {
        var low = self.unackedHead
        var high = self.unacked.count - 1
        while low <= high {
            let middle = (low + high) / 2
            let value = self.unacked[middle].tag
            if value == tag { return self.unacked[middle].settled ? nil : middle }
            if value < tag { low = middle + 1 } else { high = middle - 1 }
        }
        return nil
    }

    private func applySettle(_ kind: AckKind, _ tag: UInt64, multiple: Bool, requeue: Bool) throws(BrokerError) {
        let returning: [Unacked]
        if multiple {
            let upTo: Int
            if tag == 0 {
                upTo = self.unacked.count - 1
            } else {
                guard let index = self.liveIndex(of: tag) else { throw .preconditionFailed("unknown delivery tag \(tag)") }
                upTo = index
            }
            var settledNow: [Unacked] = []
            if upTo >= self.unackedHead {
                for index in self.unackedHead...upTo where !self.unacked[index].settled {
                    self.unacked[index].settled = true
                    settledNow.append(self.unacked[index])
                }
            }
            returning = settledNow
        } else {
            guard let index = self.liveIndex(of: tag) else { throw .preconditionFailed("unknown delivery tag \(tag)") }
            self.unacked[index].settled = true
            returning = [self.unacked[index]]
        }
        self.release(returning, requeue: kind != .ack && requeue, rejected: kind != .ack && !requeue)
    }

    /// Forgets settled deliveries, requeues them if asked, and lets their queues send more.
    /// Settled for good without `requeue`: acked (`rejected` false) or dead-lettered.
    private func release(_ entries: [Unacked], requeue: Bool, rejected: Bool = false) {
        guard !entries.isEmpty else { return }
        self.unackedLive -= entries.count
        var size = 0
        for entry in entries {
            entry.consumer?.unackedCount -= 1
            size &+= entry.message.message.size
        }
        while self.unackedHead < self.unacked.count, self.unacked[self.unackedHead].settled { self.unackedHead += 1 }
        if self.unackedHead == self.unacked.count {
            self.unacked.removeAll(keepingCapacity: true)
            self.unackedHead = 0
        } else if self.unackedHead >= 1024, self.unackedHead * 2 >= self.unacked.count {
            self.unacked.removeFirst(self.unackedHead)
            self.unackedHead = 0
        }
        var touched: [BrokerQueue] = []
        if !requeue {
            for entry in entries {
                if rejected {
                    entry.queue.deadLetter(entry.message, reason: "rejected")
                } else {
                    entry.queue.forget(entry.message.message)
                }
            }
        }
        if requeue {
            var byQueue: [ObjectIdentifier: (BrokerQueue, [QueuedMessage])] = [:]
            for entry in entries {
                var message = entry.message
                message.redelivered = true
                byQueue[ObjectIdentifier(entry.queue), default: (entry.queue, [])].1.append(message)
            }
            for (queue, messages) in byQueue.values {
                queue.requeue(messages)
                touched.append(queue)
            }
        }
        // After any requeue has counted its bytes again, so a requeue never resumes publishers.
        self.core.flow.remove(size)
        for queue in touched { queue.dispatch() }
        self.dispatchConsumerQueues()
    }

    func dispatchConsumerQueues() {
        for consumer in self.consumers.values { consumer.queue.dispatch() }
    }

    func requeueAllUnacked() {
        var live: [Unacked] = []
        if self.unackedHead < self.unacked.count {
            for index in self.unackedHead..<self.unacked.count where !self.unacked[index].settled {
                self.unacked[index].settled = true
                live.append(self.unacked[index])
            }
        }
        self.release(live, requeue: true)
    }

    private func qos(_ qos: AMQP.Basic.Qos) throws(BrokerError) {
        if qos.prefetchSize != 0 { throw .notImplemented("prefetch_size!=0 (\(qos.prefetchSize))") }
        if qos.global {
            self.channelPrefetch = qos.prefetchCount
        } else {
            self.consumerPrefetch = qos.prefetchCount
        }
        self.send(.basicQosOk(.init()))
        self.dispatchConsumerQueues()
    }

    // MARK: - Consumers

    private func queueName(_ name: String) throws(BrokerError) -> String {
        if !name.isEmpty { return name }
        guard let last = self.lastQueueName else {
            throw .notFound("no previously declared queue")
        }
        return last
    }

    private func lookupQueue(_ name: String) throws(BrokerError) -> BrokerQueue {
        guard let queue = self.vhost.queues[name] else {
            throw .notFound("no queue '\(name)' in vhost '\(self.vhost.name)'")
        }
        try self.checkExclusive(queue)
        return queue
    }

    private func checkExclusive(_ queue: BrokerQueue) throws(BrokerError) {
        if let owner = queue.exclusiveOwner, owner != ObjectIdentifier(self.connection) {
            throw .resourceLocked("cannot obtain exclusive access to locked queue '\(queue.name)' in vhost '\(self.vhost.name)'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.")
        }
    }

    private func consume(_ consume: AMQP.Basic.Consume) throws(BrokerError) {
        let name = try self.queueName(consume.queue)
        try self.access.check(.read, queue: name)
        let queue = try self.lookupQueue(name)
        queue.used()
        let tag = consume.consumerTag.isEmpty ? BrokerCore.randomName(prefix: "amq.ctag-") : consume.consumerTag
        if self.consumers[tag] != nil {
            throw .notAllowed("attempt to reuse consumer tag '\(tag)'")
        }
        if queue.hasExclusiveConsumer || (consume.exclusive && !queue.consumers.isEmpty) {
            throw .accessRefused("queue '\(queue.name)' in vhost '\(self.vhost.name)' in exclusive use")
        }
        let consumer = Consumer(
            tag: tag, channel: self, queue: queue, noAck: consume.noAck, exclusive: consume.exclusive,
            prefetchCount: self.consumerPrefetch
        )
        self.consumers[tag] = consumer
        queue.addConsumer(consumer)
        if !consume.noWait { self.send(.basicConsumeOk(.init(consumerTag: tag))) }
        queue.dispatch()
    }

    private func cancel(_ cancel: AMQP.Basic.Cancel) {
        if let consumer = self.consumers.removeValue(forKey: cancel.consumerTag) {
            self.detach(consumer)
        }
        if !cancel.noWait { self.send(.basicCancelOk(.init(consumerTag: cancel.consumerTag))) }
    }

    /// Removes a consumer from its queue; an auto-delete queue goes with its last consumer.
    private func detach(_ consumer: Consumer) {
        let queue = consumer.queue
        queue.removeConsumer(consumer)
        if queue.autoDelete, queue.consumers.isEmpty, !queue.isDeleted {
            queue.vhost.deleteQueue(queue)
        } else {
            queue.dispatch()
        }
    }

    /// The queue went away: tell the client if it asked to be told (consumer_cancel_notify).
    func consumerCancelledByServer(_ consumer: Consumer) {
        guard self.consumers.removeValue(forKey: consumer.tag) != nil else { return }
        if self.connection.wantsCancelNotifications, !self.isClosing {
            self.send(.basicCancel(.init(consumerTag: consumer.tag, noWait: true)))
        }
    }

    private func get(_ get: AMQP.Basic.Get) throws(BrokerError) {
        let name = try self.queueName(get.queue)
        try self.access.check(.read, queue: name)
        let queue = try self.lookupQueue(name)
        queue.used()
        guard let queued = queue.popFirst() else {
            self.send(.basicGetEmpty(.init()))
            return
        }
        let tag = self.nextDeliveryTag
        self.nextDeliveryTag += 1
        if !get.noAck {
            self.unacked.append(Unacked(tag: tag, queue: queue, consumer: nil, message: queued))
            self.unackedLive += 1
            self.core.flow.add(queued.message.size)
        } else {
            queue.forget(queued.message)
        }
        self.connection.writeContent(
            channel: self.id,
            method: .basicGetOk(.init(
                deliveryTag: tag, redelivered: queued.redelivered, exchange: queued.message.exchange,
                routingKey: queued.message.routingKey, messageCount: UInt32(truncatingIfNeeded: queue.messages.count)
            )),
            properties: queued.message.properties, body: queued.message.body
        )
    }

    // MARK: - Exchanges

    private func exchangeDeclare(_ declare: AMQP.Exchange.Declare) throws(BrokerError) {
        let name = declare.exchange
        if name.isEmpty { throw .accessRefused("operation not permitted on the default exchange") }
        if declare.passive {
            guard self.vhost.exchanges[name] != nil else {
                throw .notFound("no exchange '\(name)' in vhost '\(self.vhost.name)'")
            }
            if !declare.noWait { self.send(.exchangeDeclareOk(.init())) }
            return
        }
        guard let type = ExchangeType(rawValue: declare.type) else {
            throw .commandInvalid("unknown exchange type '\(declare.type)'")
        }
        try self.access.check(.configure, exchange: name)
        if let existing = self.vhost.exchanges[name] {
            func inequivalent(_ field: String, _ received: String, _ current: String) -> BrokerError {
                .preconditionFailed("inequivalent arg '\(field)' for exchange '\(name)' in vhost '\(self.vhost.name)': received '\(received)' but current is '\(current)'")
            }
            if existing.type != type { throw inequivalent("type", declare.type, existing.type.rawValue) }
            if existing.durable != declare.durable { throw inequivalent("durable", "\(declare.durable)", "\(existing.durable)") }
            if existing.autoDelete != declare.autoDelete { throw inequivalent("auto_delete", "\(declare.autoDelete)", "\(existing.autoDelete)") }
            if existing.isInternal != declare.internal { throw inequivalent("internal", "\(declare.internal)", "\(existing.isInternal)") }
        } else {
            if name.hasPrefix("amq.") {
                throw .accessRefused("exchange name '\(name)' contains reserved prefix 'amq.*'")
            }
            // As RabbitMQ: naming an alternate exchange needs read on the new exchange and
            // write on the alternate (messages will be published to it on the user's behalf).
            if let alternate = declare.arguments["alternate-exchange"]?.stringValue {
                try self.access.check(.read, exchange: name)
                try self.access.check(.write, exchange: alternate)
            }
            self.vhost.exchanges[name] = Exchange(
                name: name, type: type, durable: declare.durable, autoDelete: declare.autoDelete,
                isInternal: declare.internal, arguments: declare.arguments
            )
            if declare.durable {
                self.vhost.store?.record(.exchange(StoredExchange(
                    vhost: self.vhost.name, name: name, type: type.rawValue, autoDelete: declare.autoDelete,
                    isInternal: declare.internal, arguments: declare.arguments
                )))
            }
        }
        if !declare.noWait { self.send(.exchangeDeclareOk(.init())) }
    }

    private func exchangeDelete(_ delete: AMQP.Exchange.Delete) throws(BrokerError) {
        let name = delete.exchange
        if name.isEmpty { throw .accessRefused("operation not permitted on the default exchange") }
        if name.hasPrefix("amq.") { throw .accessRefused("deletion of system exchange '\(name)' in vhost '\(self.vhost.name)' not allowed") }
        try self.access.check(.configure, exchange: name)
        if let exchange = self.vhost.exchanges[name] {
            if delete.ifUnused, !exchange.bindings.isEmpty {
                throw .preconditionFailed("exchange '\(name)' in vhost '\(self.vhost.name)' in use")
            }
            self.vhost.deleteExchange(exchange)
        }
        if !delete.noWait { self.send(.exchangeDeleteOk(.init())) }
    }

    /// The ends of an exchange-to-exchange binding, checked in RabbitMQ's order: write on
    /// the destination, neither the default exchange, read on the source, the binding key
    /// against the source's topic permission, then both must exist.
    private func bindingExchanges(destination: String, source: String, key: String) throws(BrokerError) -> (Exchange, Exchange) {
        let access = self.access
        try access.check(.write, exchange: destination)
        if destination.isEmpty || source.isEmpty { throw .accessRefused("operation not permitted on the default exchange") }
        try access.check(.read, exchange: source)
        let origin = self.vhost.exchanges[source]
        if let origin { try access.checkTopic(.read, exchange: origin, routingKey: key) }
        guard let origin else {
            throw .notFound("no exchange '\(source)' in vhost '\(self.vhost.name)'")
        }
        guard let target = self.vhost.exchanges[destination] else {
            throw .notFound("no exchange '\(destination)' in vhost '\(self.vhost.name)'")
        }
        return (target, origin)
    }

    private func exchangeBind(_ bind: AMQP.Exchange.Bind) throws(BrokerError) {
        let (destination, source) = try self.bindingExchanges(destination: bind.destination, source: bind.source, key: bind.routingKey)
        if source.bind(.exchange(destination), key: bind.routingKey, arguments: bind.arguments) {
            if !destination.incomingSources.contains(where: { $0 === source }) { destination.incomingSources.append(source) }
            if source.durable, destination.durable {
                self.vhost.store?.record(.binding(StoredBinding(
                    vhost: self.vhost.name, source: source.name, destinationIsQueue: false, destination: destination.name, key: bind.routingKey, arguments: bind.arguments
                )))
            }
        }
        if !bind.noWait { self.send(.exchangeBindOk(.init())) }
    }

    private func exchangeUnbind(_ unbind: AMQP.Exchange.Unbind) throws(BrokerError) {
        let (destination, source) = try self.bindingExchanges(destination: unbind.destination, source: unbind.source, key: unbind.routingKey)
        source.unbind(.exchange(destination), key: unbind.routingKey, arguments: unbind.arguments)
        if source.durable, destination.durable {
            self.vhost.store?.record(.unbinding(StoredBinding(
                vhost: self.vhost.name, source: source.name, destinationIsQueue: false, destination: destination.name, key: unbind.routingKey, arguments: unbind.arguments
            )))
        }
        if !source.bindings.contains(where: { $0.destination.isSame(as: .exchange(destination)) }) {
            destination.incomingSources.removeAll { $0 === source }
        }
        self.vhost.autoDeleteIfUnused(source)
        if !unbind.noWait { self.send(.exchangeUnbindOk(.init())) }
    }

    // MARK: - Queues

    private func queueDeclare(_ declare: AMQP.Queue.Declare) throws(BrokerError) {
        var name = declare.queue
        let vhost = self.vhost
        if declare.passive {
            let queue = try self.lookupQueue(try self.queueName(name))
            queue.used()
            self.lastQueueName = queue.name
            if !declare.noWait {
                self.send(.queueDeclareOk(.init(queue: queue.name, messageCount: UInt32(truncatingIfNeeded: queue.messages.count), consumerCount: UInt32(queue.consumers.count))))
            }
            return
        }
        if name.isEmpty {
            name = BrokerCore.randomName(prefix: "amq.gen-")
        } else if name.hasPrefix("amq.") {
            throw .accessRefused("queue name '\(name)' contains reserved prefix 'amq.*'")
        }
        try self.access.check(.configure, queue: name)
        let queue: BrokerQueue
        if let existing = vhost.queues[name] {
            try self.checkExclusive(existing)
            func inequivalent(_ field: String, _ received: Bool, _ current: Bool) -> BrokerError {
                .preconditionFailed("inequivalent arg '\(field)' for queue '\(name)' in vhost '\(vhost.name)': received '\(received)' but current is '\(current)'")
            }
            if existing.durable != declare.durable { throw inequivalent("durable", declare.durable, existing.durable) }
            if (existing.exclusiveOwner != nil) != declare.exclusive {
                throw .resourceLocked("cannot obtain exclusive access to locked queue '\(name)' in vhost '\(vhost.name)'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.")
            }
            if existing.autoDelete != declare.autoDelete { throw inequivalent("auto_delete", declare.autoDelete, existing.autoDelete) }
            try QueueArguments.checkEquivalent(existing: existing.arguments, received: declare.arguments, queue: name, vhost: vhost.name)
            existing.used()
            queue = existing
        } else {
            // As RabbitMQ: a dead letter exchange needs read on the new queue and write on
            // that exchange (dead letters are published to it on the user's behalf).
            if let deadLetterExchange = declare.arguments["x-dead-letter-exchange"]?.stringValue {
                try self.access.check(.read, queue: name)
                try self.access.check(.write, exchange: deadLetterExchange)
            }
            let settings = try QueueArguments(declare.arguments, queue: name, vhost: vhost.name)
            queue = BrokerQueue(
                name: name, durable: declare.durable,
                exclusiveOwner: declare.exclusive ? ObjectIdentifier(self.connection) : nil,
                autoDelete: declare.autoDelete, arguments: declare.arguments, vhost: vhost, settings: settings
            )
            vhost.queues[name] = queue
            if declare.durable, !declare.exclusive, let store = vhost.store {
                queue.storeID = store.newQueueID()
                store.record(.queue(StoredQueue(vhost: vhost.name, name: name, id: queue.storeID, autoDelete: declare.autoDelete, arguments: declare.arguments)))
            }
            if declare.exclusive { self.connection.exclusiveQueues.append(queue) }
        }
        self.lastQueueName = name
        if !declare.noWait {
            self.send(.queueDeclareOk(.init(queue: name, messageCount: UInt32(truncatingIfNeeded: queue.messages.count), consumerCount: UInt32(queue.consumers.count))))
        }
    }

    /// The ends of a queue binding and its key, checked in RabbitMQ's order: write on the
    /// queue, not the default exchange, read on the exchange, the binding key against the
    /// exchange's topic permission, then both must exist. An empty queue name means the
    /// channel's last declared queue and then an empty key means its name.
    private func bindingEnds(queue: String, exchange: String, key: String) throws(BrokerError) -> (BrokerQueue, Exchange, String) {
        let name = try self.queueName(queue)
        let key = queue.isEmpty && key.isEmpty ? name : key
        let access = self.access
        try access.check(.write, queue: name)
        if exchange.isEmpty { throw .accessRefused("operation not permitted on the default exchange") }
        try access.check(.read, exchange: exchange)
        let source = self.vhost.exchanges[exchange]
        if let source { try access.checkTopic(.read, exchange: source, routingKey: key) }
        guard let source else {
            throw .notFound("no exchange '\(exchange)' in vhost '\(self.vhost.name)'")
        }
        return (try self.lookupQueue(name), source, key)
    }

    private func queueBind(_ bind: AMQP.Queue.Bind) throws(BrokerError) {
        let (queue, exchange, key) = try self.bindingEnds(queue: bind.queue, exchange: bind.exchange, key: bind.routingKey)
        if exchange.bind(.queue(queue), key: key, arguments: bind.arguments) {
            if !queue.boundFrom.contains(where: { $0 === exchange }) { queue.boundFrom.append(exchange) }
            if exchange.durable, queue.storeID != 0 {
                self.vhost.store?.record(.binding(StoredBinding(
                    vhost: self.vhost.name, source: exchange.name, destinationIsQueue: true, destination: queue.name, key: key, arguments: bind.arguments
                )))
            }
        }
        if !bind.noWait { self.send(.queueBindOk(.init())) }
    }

    private func queueUnbind(_ unbind: AMQP.Queue.Unbind) throws(BrokerError) {
        let (queue, exchange, key) = try self.bindingEnds(queue: unbind.queue, exchange: unbind.exchange, key: unbind.routingKey)
        exchange.unbind(.queue(queue), key: key, arguments: unbind.arguments)
        if exchange.durable, queue.storeID != 0 {
            self.vhost.store?.record(.unbinding(StoredBinding(
                vhost: self.vhost.name, source: exchange.name, destinationIsQueue: true, destination: queue.name, key: key, arguments: unbind.arguments
            )))
        }
        if !exchange.bindings.contains(where: { $0.destination.isSame(as: .queue(queue)) }) {
            queue.boundFrom.removeAll { $0 === exchange }
        }
        self.vhost.autoDeleteIfUnused(exchange)
        self.send(.queueUnbindOk(.init()))
    }

    private func queuePurge(_ purge: AMQP.Queue.Purge) throws(BrokerError) {
        let name = try self.queueName(purge.queue)
        try self.access.check(.read, queue: name)
        let queue = try self.lookupQueue(name)
        let count = queue.purge()
        if !purge.noWait { self.send(.queuePurgeOk(.init(messageCount: UInt32(truncatingIfNeeded: count)))) }
    }

    private func queueDelete(_ delete: AMQP.Queue.Delete) throws(BrokerError) {
        let name = try self.queueName(delete.queue)
        try self.access.check(.configure, queue: name)
        var count = 0
        if let queue = self.vhost.queues[name] {
            try self.checkExclusive(queue)
            if delete.ifUnused, !queue.consumers.isEmpty {
                throw .preconditionFailed("queue '\(name)' in vhost '\(self.vhost.name)' in use")
            }
            if delete.ifEmpty, !queue.messages.isEmpty {
                throw .preconditionFailed("queue '\(name)' in vhost '\(self.vhost.name)' is not empty")
            }
            count = queue.messages.count
            self.connection.deleteQueue(queue)
        }
        if !delete.noWait { self.send(.queueDeleteOk(.init(messageCount: UInt32(truncatingIfNeeded: count)))) }
    }

    // MARK: - Closing

    /// The channel ends (closed by either side, or its connection went): unacked
    /// messages go back to their queues and its consumers leave them.
    func tearDown() {
        self.core.durabilityWaiters[ObjectIdentifier(self)] = nil
        self.requeueAllUnacked()
        let consumers = self.consumers.values
        self.consumers.removeAll()
        for consumer in consumers { self.detach(consumer) }
        self.assembler.reset()
        self.txPublishes.removeAll()
        self.txAcks.removeAll()
    }
}
