import AMQPProtocol
import NIOConcurrencyHelpers
import NIOCore

/// An AMQP channel. A stable handle: after the connection recovers it is reopened under
/// the same number with its qos, confirm and tx modes, and its consumers resume.
/// A channel the broker closed (a 404 on a passive declare, a 406, …) stays closed and
/// every later call throws that error.
public final class AMQPChannel: Sendable {
    public let channelID: UInt16
    public let connection: AMQPConnection

    struct ConsumerRecord: Sendable {
        var queue: String
        var noAck: Bool
        var exclusive: Bool
        var arguments: FieldTable
        var sink: ConsumerSink
        /// The session the broker has it registered on; nil while being registered, or
        /// after the broker cancelled it (until it is resumed).
        var session: UInt64? = nil
        /// How many times the broker cancelled it: a resumption only counts for the cancel
        /// it answered.
        var cancels = 0
        /// This connection is deleting its queue: the broker's cancel that follows ends the
        /// sequence, as the application meant.
        var queueDeletedByApplication = false
    }

    private struct State {
        var closed: AMQPError? = nil
        var prefetch: (count: UInt16, global: Bool)? = nil
        var confirmMode = false
        var txMode = false
        var consumers: [String: ConsumerRecord] = [:]
        var nextConsumerNumber = 1
    }

    private let state = NIOLockedValueBox(State())
    /// Messages published with `mandatory` that the broker could not route.
    public let returns: AsyncStream<ReturnedMessage>
    let returnsContinuation: AsyncStream<ReturnedMessage>.Continuation

    init(channelID: UInt16, connection: AMQPConnection) {
        self.channelID = channelID
        self.connection = connection
        (self.returns, self.returnsContinuation) = AsyncStream.makeStream(of: ReturnedMessage.self, bufferingPolicy: .bufferingNewest(10_000))
    }

    /// The error the channel closed with, if it did.
    public var closeError: AMQPError? { self.state.withLockedValue { $0.closed } }

    // MARK: synchronous calls

    private func session() async throws -> Session {
        if let error = self.closeError { throw error }
        let session = try await self.connection.currentSession()
        if let error = self.closeError { throw error }
        return session
    }

    /// Sends `method`. A method that may be sent twice (declares, binds, deletes, qos)
    /// and was lost with the connection is sent again once the connection has recovered
    /// (on whichever node): the caller sees one answer, not the failover.
    @discardableResult
    private func call(_ method: AMQP.Method) async throws -> CallResult {
        let session = try await self.session()
        do {
            return try await session.call(self.channelID, method)
        } catch let error as AMQPError where Self.isRepeatable(method) && self.lostWithConnection(error) {
            let fresh = try await self.session(after: session)
            return try await fresh.call(self.channelID, method)
        }
    }

    /// Methods whose second copy changes nothing the first did not.
    static func isRepeatable(_ method: AMQP.Method) -> Bool {
        switch method {
        case .exchangeDeclare, .exchangeDelete, .exchangeBind, .exchangeUnbind, .queueBind, .queueUnbind, .queueDelete, .basicQos:
            return true
        case .queueDeclare(let declare):
            return !declare.queue.isEmpty
        default:
            return false
        }
    }

    /// Whether `error` is the loss of the connection (not a refusal by the broker) and the
    /// connection is recovering from it.
    func lostWithConnection(_ error: AMQPError) -> Bool {
        let recovery = self.connection.configuration.recovery
        guard recovery.enabled, self.closeError == nil else { return false }
        return error.code == .connectionClosed || error.code == .heartbeatTimeout || error.code == .notConnected
    }

    /// A live session other than `dead`, waiting for the recovery (bounded by
    /// `recoveryWaitTimeout` in `currentSession`). The failed call may return before the
    /// connection has noticed the loss: then `dead` is still current for a moment.
    func session(after dead: Session) async throws -> Session {
        for _ in 0..<200 {
            let session = try await self.session()
            if session.id != dead.id { return session }
            try await Task.sleep(nanoseconds: 25_000_000)
        }
        throw AMQPError(.timeout, "the connection did not notice its loss within 5 s")
    }

    // MARK: exchanges

    public func exchangeDeclare(name: String, type: String = "direct", passive: Bool = false, durable: Bool = false, autoDelete: Bool = false, internal: Bool = false, arguments: FieldTable = [:]) async throws {
        let declare = AMQP.Exchange.Declare(exchange: name, type: type, passive: passive, durable: durable, autoDelete: autoDelete, internal: `internal`, arguments: arguments)
        try await self.call(.exchangeDeclare(declare))
        self.connection.updateTopology { $0.exchangeDeclared(declare) }
    }

    public func exchangeDelete(name: String, ifUnused: Bool = false) async throws {
        try await self.call(.exchangeDelete(AMQP.Exchange.Delete(exchange: name, ifUnused: ifUnused)))
        self.connection.updateTopology { $0.exchangeDeleted(name) }
    }

    public func exchangeBind(destination: String, source: String, routingKey: String = "", arguments: FieldTable = [:]) async throws {
        let bind = AMQP.Exchange.Bind(destination: destination, source: source, routingKey: routingKey, arguments: arguments)
        try await self.call(.exchangeBind(bind))
        self.connection.updateTopology { $0.exchangeBound(bind) }
    }

    public func exchangeUnbind(destination: String, source: String, routingKey: String = "", arguments: FieldTable = [:]) async throws {
        let unbind = AMQP.Exchange.Unbind(destination: destination, source: source, routingKey: routingKey, arguments: arguments)
        try await self.call(.exchangeUnbind(unbind))
        self.connection.updateTopology { $0.exchangeUnbound(unbind) }
    }

    // MARK: queues
    // Queue names given here are translated when a server-named queue was renamed by a
    // recovery, so the name the first declare returned stays usable.

    @discardableResult
    public func queueDeclare(name: String = "", passive: Bool = false, durable: Bool = false, exclusive: Bool = false, autoDelete: Bool = false, arguments: FieldTable = [:]) async throws -> QueueDeclareResult {
        let declare = AMQP.Queue.Declare(queue: name.isEmpty ? "" : self.connection.currentName(ofQueue: name), passive: passive, durable: durable, exclusive: exclusive, autoDelete: autoDelete, arguments: arguments)
        guard case .method(.queueDeclareOk(let ok)) = try await self.call(.queueDeclare(declare)) else {
            throw AMQPError(.protocolViolation, "queue.declare answered with something other than declare-ok")
        }
        self.connection.updateTopology { $0.queueDeclared(declare, name: ok.queue) }
        return QueueDeclareResult(name: ok.queue, messageCount: ok.messageCount, consumerCount: ok.consumerCount)
    }

    public func queueBind(queue: String, exchange: String, routingKey: String = "", arguments: FieldTable = [:]) async throws {
        let bind = AMQP.Queue.Bind(queue: self.connection.currentName(ofQueue: queue), exchange: exchange, routingKey: routingKey, arguments: arguments)
        try await self.call(.queueBind(bind))
        self.connection.updateTopology { $0.queueBound(bind) }
    }

    public func queueUnbind(queue: String, exchange: String, routingKey: String = "", arguments: FieldTable = [:]) async throws {
        let unbind = AMQP.Queue.Unbind(queue: self.connection.currentName(ofQueue: queue), exchange: exchange, routingKey: routingKey, arguments: arguments)
        try await self.call(.queueUnbind(unbind))
        self.connection.updateTopology { $0.queueUnbound(unbind) }
    }

    /// Removes all ready messages; returns how many were removed.
    @discardableResult
    public func queuePurge(name: String) async throws -> UInt32 {
        guard case .method(.queuePurgeOk(let ok)) = try await self.call(.queuePurge(AMQP.Queue.Purge(queue: self.connection.currentName(ofQueue: name)))) else {
            throw AMQPError(.protocolViolation, "queue.purge answered with something other than purge-ok")
        }
        return ok.messageCount
    }

    /// Deletes a queue; returns how many messages it held.
    @discardableResult
    public func queueDelete(name: String, ifUnused: Bool = false, ifEmpty: Bool = false) async throws -> UInt32 {
        let current = self.connection.currentName(ofQueue: name)
        // Our own consumers of it are not resumed when the broker cancels them for this.
        self.connection.markConsumers(ofQueue: current, deleting: true)
        let result: CallResult
        do {
            result = try await self.call(.queueDelete(AMQP.Queue.Delete(queue: current, ifUnused: ifUnused, ifEmpty: ifEmpty)))
        } catch {
            self.connection.markConsumers(ofQueue: current, deleting: false)
            throw error
        }
        guard case .method(.queueDeleteOk(let ok)) = result else {
            throw AMQPError(.protocolViolation, "queue.delete answered with something other than delete-ok")
        }
        self.connection.updateTopology { $0.queueDeleted(current) }
        return ok.messageCount
    }

    // MARK: basic

    /// Limits unacknowledged deliveries (per consumer, or per channel with `global`).
    public func basicQos(prefetchCount: UInt16, global: Bool = false) async throws {
        try await self.call(.basicQos(AMQP.Basic.Qos(prefetchCount: prefetchCount, global: global)))
        self.state.withLockedValue { $0.prefetch = (prefetchCount, global) }
    }

    /// Publishes without waiting: the frames are queued and written by the event loop in
    /// batches. Returns the publish sequence number in confirm mode (nil otherwise).
    /// Throws `.notConnected` while the connection recovers. Pair with
    /// `waitUntilWritable()` in tight loops so memory stays bounded.
    @discardableResult
    public func publish(_ body: ByteBuffer, exchange: String = "", routingKey: String, mandatory: Bool = false, properties: BasicProperties = BasicProperties()) throws(AMQPError) -> UInt64? {
        try self.publish(body, exchange: exchange, routingKey: routingKey, mandatory: mandatory, properties: properties, waiter: nil)
    }

    @discardableResult
    public func publish(_ body: [UInt8], exchange: String = "", routingKey: String, mandatory: Bool = false, properties: BasicProperties = BasicProperties()) throws(AMQPError) -> UInt64? {
        try self.publish(ByteBuffer(bytes: body), exchange: exchange, routingKey: routingKey, mandatory: mandatory, properties: properties, waiter: nil)
    }

    @discardableResult
    public func publish(_ body: String, exchange: String = "", routingKey: String, mandatory: Bool = false, properties: BasicProperties = BasicProperties()) throws(AMQPError) -> UInt64? {
        try self.publish(ByteBuffer(string: body), exchange: exchange, routingKey: routingKey, mandatory: mandatory, properties: properties, waiter: nil)
    }

    private func publish(_ body: ByteBuffer, exchange: String, routingKey: String, mandatory: Bool, properties: BasicProperties, waiter: ConfirmWaiter?) throws(AMQPError) -> UInt64? {
        if let error = self.closeError { throw error }
        let session = try self.connection.sessionNow()
        let method = AMQP.Method.basicPublish(AMQP.Basic.Publish(exchange: exchange, routingKey: routingKey, mandatory: mandatory))
        let channelID = self.channelID
        return try session.enqueue(channelID: channelID, publish: true, waiter: waiter) { (buffer: inout ByteBuffer, frameMax: UInt32) throws(ProtocolError) in
            try buffer.writeContent(channel: channelID, method: method, properties: properties, body: body, frameMax: frameMax)
        }
    }

    /// Publishes, first waiting for the connection (during recovery) and for the socket
    /// to drain when too much is queued: the variant for load generators.
    @discardableResult
    public func publishWhenConnected(_ body: ByteBuffer, exchange: String = "", routingKey: String, mandatory: Bool = false, properties: BasicProperties = BasicProperties()) async throws -> UInt64? {
        let session = try await self.session()
        if !session.isWritable { try await session.waitUntilWritable() }
        return try self.publish(body, exchange: exchange, routingKey: routingKey, mandatory: mandatory, properties: properties, waiter: nil)
    }

    /// Waits until the connection's socket accepts more data (queued publishes flushed
    /// below NIO's high-water mark).
    public func waitUntilWritable() async throws {
        let session = try await self.session()
        if !session.isWritable { try await session.waitUntilWritable() }
    }

    /// Publishes one message and waits for the broker's confirm; throws
    /// `.messageNacked` on a nack. Requires `confirmSelect()`.
    public func publishConfirmed(_ body: ByteBuffer, exchange: String = "", routingKey: String, mandatory: Bool = false, properties: BasicProperties = BasicProperties()) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            do {
                _ = try self.publish(body, exchange: exchange, routingKey: routingKey, mandatory: mandatory, properties: properties, waiter: .message(continuation))
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    public func publishConfirmed(_ body: String, exchange: String = "", routingKey: String, mandatory: Bool = false, properties: BasicProperties = BasicProperties()) async throws {
        try await self.publishConfirmed(ByteBuffer(string: body), exchange: exchange, routingKey: routingKey, mandatory: mandatory, properties: properties)
    }

    /// Puts the channel in confirm mode: every later publish gets a sequence number.
    public func confirmSelect() async throws {
        let session = try await self.session()
        session.outbox.withLockedValue { outbox in
            if outbox.confirms[self.channelID] == nil { outbox.confirms[self.channelID] = ConfirmTracker() }
        }
        _ = try await session.call(self.channelID, .confirmSelect(AMQP.Confirm.Select()))
        self.state.withLockedValue { $0.confirmMode = true }
    }

    /// Waits until every message published so far is confirmed; returns the sequence
    /// numbers the broker nacked since the last call (empty: all acked).
    @discardableResult
    public func waitForConfirms() async throws -> [UInt64] {
        let session = try await self.session()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt64], any Error>) in
            let result: Result<[UInt64]?, AMQPError> = session.outbox.withLockedValue { outbox in
                if let closed = outbox.closed { return .failure(closed) }
                guard outbox.confirms[self.channelID] != nil else {
                    return .failure(AMQPError(.invalidArgument, "waitForConfirms needs confirm mode: call confirmSelect() first"))
                }
                switch outbox.confirms[self.channelID]!.waitForAll(.batch(continuation)) {
                case .batch(_, let nacked)?: return .success(nacked)
                default: return .success(nil)
                }
            }
            switch result {
            case .failure(let error): continuation.resume(throwing: error)
            case .success(let nacked?): continuation.resume(returning: nacked)
            case .success(nil): break
            }
        }
    }

    /// Starts a consumer. The tag is chosen by the client when empty, so that the
    /// consumer keeps it across recoveries.
    public func consume(queue: String, consumerTag: String = "", noAck: Bool = false, exclusive: Bool = false, arguments: FieldTable = [:]) async throws -> AMQPConsumer {
        let session = try await self.session()
        let tag = consumerTag.isEmpty ? self.state.withLockedValue { state in
            defer { state.nextConsumerNumber += 1 }
            return "ctag-\(self.channelID)-\(state.nextConsumerNumber)-\(UInt32.random(in: 0...UInt32.max))"
        } : consumerTag
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: AMQPMessage.self, throwing: (any Error).self)
        let sink = ConsumerSink(continuation: continuation, channel: self)
        let record = ConsumerRecord(queue: queue, noAck: noAck, exclusive: exclusive, arguments: arguments, sink: sink)
        self.state.withLockedValue { $0.consumers[tag] = record }
        do {
            do {
                try await self.register(tag, record, on: session)
            } catch let error as AMQPError where self.lostWithConnection(error) {
                // Lost with the connection: the recovery that ran meanwhile registered it on
                // the new session (it was recorded), or the broker never saw it.
                let fresh = try await self.session(after: session)
                if self.state.withLockedValue({ $0.consumers[tag]?.session }) != fresh.id {
                    try await self.register(tag, record, on: fresh)
                }
            }
        } catch {
            _ = self.state.withLockedValue { $0.consumers.removeValue(forKey: tag) }
            continuation.finish(throwing: error)
            throw error
        }
        return AMQPConsumer(consumerTag: tag, channel: self, stream: stream)
    }

    private func register(_ tag: String, _ record: ConsumerRecord, on session: Session) async throws {
        let consume = AMQP.Basic.Consume(
            queue: self.connection.currentName(ofQueue: record.queue), consumerTag: tag, noAck: record.noAck, exclusive: record.exclusive, arguments: record.arguments)
        _ = try await session.call(self.channelID, .basicConsume(consume), consumer: record.sink)
        self.state.withLockedValue { state in
            if state.consumers[tag] != nil { state.consumers[tag]?.session = session.id }
        }
    }

    /// Cancels a consumer; its sequence finishes.
    public func cancel(consumerTag: String) async throws {
        let record = self.state.withLockedValue { $0.consumers.removeValue(forKey: consumerTag) }
        if let record, record.cancels > 0, record.session == nil {
            // The broker had cancelled it and it was waiting to be resumed: nothing to tell
            // the broker, and no cancel-ok will end the sequence.
            record.sink.continuation.finish()
            return
        }
        try await self.call(.basicCancel(AMQP.Basic.Cancel(consumerTag: consumerTag)))
    }

    /// Fetches one message, or nil when the queue is empty.
    public func get(queue: String, noAck: Bool = false) async throws -> AMQPMessage? {
        let session = try await self.session()
        let result = try await session.call(self.channelID, .basicGet(AMQP.Basic.Get(queue: self.connection.currentName(ofQueue: queue), noAck: noAck)))
        switch result {
        case .content(let content):
            guard case .basicGetOk(let ok) = content.method else { return nil }
            return AMQPMessage(body: content.body, properties: content.properties, deliveryTag: ok.deliveryTag, redelivered: ok.redelivered, exchange: ok.exchange, routingKey: ok.routingKey, consumerTag: nil, messageCount: ok.messageCount, channel: self, sessionID: session.id)
        case .method:
            return nil
        }
    }

    /// Acknowledges deliveries (no await: queued for the wire, coalesced with other writes).
    public func ack(deliveryTag: UInt64, multiple: Bool = false) throws(AMQPError) {
        try self.acknowledge(.basicAck(AMQP.Basic.Ack(deliveryTag: deliveryTag, multiple: multiple)), sessionID: nil)
    }

    public func nack(deliveryTag: UInt64, multiple: Bool = false, requeue: Bool = true) throws(AMQPError) {
        try self.acknowledge(.basicNack(AMQP.Basic.Nack(deliveryTag: deliveryTag, multiple: multiple, requeue: requeue)), sessionID: nil)
    }

    public func reject(deliveryTag: UInt64, requeue: Bool = true) throws(AMQPError) {
        try self.acknowledge(.basicReject(AMQP.Basic.Reject(deliveryTag: deliveryTag, requeue: requeue)), sessionID: nil)
    }

    /// Sends an ack/nack/reject. With a `sessionID` (from a message) it is dropped when the
    /// connection was recovered since: the tag is void and the broker requeued the message.
    func acknowledge(_ method: AMQP.Method, sessionID: UInt64?) throws(AMQPError) {
        if let error = self.closeError { throw error }
        let session = try self.connection.sessionNow()
        if let sessionID, sessionID != session.id { return }
        let channelID = self.channelID
        _ = try session.enqueue(channelID: channelID, publish: false) { (buffer: inout ByteBuffer, _: UInt32) throws(ProtocolError) in
            try buffer.writeMethodFrame(channel: channelID, method)
        }
    }

    /// Asks the broker to redeliver unacknowledged messages.
    public func recover(requeue: Bool = true) async throws {
        try await self.call(.basicRecover(AMQP.Basic.Recover(requeue: requeue)))
    }

    // MARK: tx

    public func txSelect() async throws {
        try await self.call(.txSelect(AMQP.Tx.Select()))
        self.state.withLockedValue { $0.txMode = true }
    }

    public func txCommit() async throws {
        try await self.call(.txCommit(AMQP.Tx.Commit()))
    }

    public func txRollback() async throws {
        try await self.call(.txRollback(AMQP.Tx.Rollback()))
    }

    /// Closes the channel; its consumers finish and it is no longer recovered.
    public func close() async throws {
        let wasOpen = self.state.withLockedValue { state in
            if state.closed != nil { return false }
            state.closed = AMQPError(.channelClosed, "the channel was closed by the application")
            return true
        }
        guard wasOpen else { return }
        self.connection.channelReleased(self.channelID)
        if let session = try? self.connection.sessionNow() {
            try await session.closeChannel(self.channelID)
        }
        self.finishConsumers(nil)
    }

    // MARK: events from the handler and the connection

    func closed(_ error: AMQPError, consumers: [ConsumerSink]) {
        let wasOpen = self.state.withLockedValue { state in
            if state.closed != nil { return false }
            state.closed = error
            return true
        }
        consumers.forEach { $0.continuation.finish(throwing: error) }
        if wasOpen {
            self.connection.channelReleased(self.channelID)
        }
        self.finishConsumers(error)
    }

    private func finishConsumers(_ error: AMQPError?) {
        let consumers = self.state.withLockedValue { state in
            defer { state.consumers.removeAll() }
            return Array(state.consumers.values)
        }
        for consumer in consumers {
            if let error { consumer.sink.continuation.finish(throwing: error) } else { consumer.sink.continuation.finish() }
        }
        self.returnsContinuation.finish()
    }

    /// The broker cancelled a consumer (`basic.cancel`): its queue was deleted, or the node
    /// that held it went away. With `RecoveryPolicy.resumesCancelledConsumers` the consumer
    /// is registered again as soon as the queue can be found (a quorum queue on another
    /// node, a queue declared again); otherwise, or when that takes longer than
    /// `recoveryWaitTimeout`, its sequence ends with `.consumerCancelled`.
    func consumerCancelledByServer(_ tag: String, sink: ConsumerSink) {
        let policy = self.connection.configuration.recovery
        let resume = policy.enabled && policy.resumesCancelledConsumers
        enum Next { case finish(ConsumerRecord), resume(ConsumerRecord, cancel: Int), applicationCancelled }
        let next: Next = self.state.withLockedValue { state in
            guard var record = state.consumers[tag] else { return .applicationCancelled }
            if record.queueDeletedByApplication {
                state.consumers.removeValue(forKey: tag)
                return .applicationCancelled
            }
            guard resume, state.closed == nil else {
                state.consumers.removeValue(forKey: tag)
                return .finish(record)
            }
            record.session = nil
            record.cancels += 1
            state.consumers[tag] = record
            return .resume(record, cancel: record.cancels)
        }
        switch next {
        case .applicationCancelled:
            // The application cancelled it at the same moment, or deleted its queue: the
            // sequence just ends.
            sink.continuation.finish()
        case .finish(let record):
            self.connection.logger.warning("the broker cancelled a consumer", metadata: ["queue": "\(record.queue)", "consumer_tag": "\(tag)"])
            record.sink.continuation.finish(throwing: Self.cancelledError(record.queue, waited: nil))
        case .resume(let record, let cancel):
            self.connection.logger.warning(
                "the broker cancelled a consumer (queue deleted or its node gone); consuming again once the queue is there",
                metadata: ["queue": "\(record.queue)", "consumer_tag": "\(tag)"])
            // Driven by the event, as the connection's own recovery is.
            Task { await self.resumeCancelledConsumer(tag, cancel: cancel) }
        }
    }

    /// Marks (or unmarks) the consumers of `queue` (its current name) as about to lose it
    /// to a `queue.delete` of this connection.
    func markConsumers(ofQueue queue: String, deleting: Bool) {
        // The names are looked up outside the channel's lock (the connection has its own).
        let queues = self.state.withLockedValue { $0.consumers.mapValues(\.queue) }
        let tags = queues.filter { self.connection.currentName(ofQueue: $0.value) == queue }.map(\.key)
        guard !tags.isEmpty else { return }
        self.state.withLockedValue { state in
            for tag in tags { state.consumers[tag]?.queueDeletedByApplication = deleting }
        }
    }

    static func cancelledError(_ queue: String, waited: TimeAmount?) -> AMQPError {
        let text = "the broker cancelled the consumer of queue '\(queue)' (the queue was deleted, or the node holding it went away)"
        guard let waited else { return AMQPError(.consumerCancelled, text) }
        return AMQPError(.consumerCancelled, text + " and the queue did not come back within \(waited.nanoseconds / 1_000_000) ms")
    }

    /// Looks for the queue (a passive declare on a channel of its own, which a 404 closes)
    /// with the recovery backoff, and consumes it again under the same tag into the same
    /// sequence; gives up after `recoveryWaitTimeout`. Stops as soon as the consumer was
    /// cancelled by the application, resumed by a connection recovery, or cancelled again.
    private func resumeCancelledConsumer(_ tag: String, cancel: Int) async {
        let configuration = self.connection.configuration
        let deadline = NIODeadline.now() + configuration.recoveryWaitTimeout
        var attempt = 0
        func pending() -> ConsumerRecord? {
            self.state.withLockedValue { state in
                guard state.closed == nil, let record = state.consumers[tag], record.session == nil, record.cancels == cancel else { return nil }
                return record
            }
        }
        while NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: UInt64(configuration.recovery.backoff(attempt: attempt).nanoseconds))
            attempt += 1
            guard let record = pending() else { return }
            do {
                let session = try await self.session()
                guard try await self.connection.queueExists(record.queue) else { continue }
                let consume = AMQP.Basic.Consume(
                    queue: self.connection.currentName(ofQueue: record.queue), consumerTag: tag, noAck: record.noAck, exclusive: record.exclusive,
                    arguments: record.arguments)
                guard pending() != nil else { return }
                _ = try await session.call(self.channelID, .basicConsume(consume), consumer: record.sink)
                self.state.withLockedValue { state in
                    if state.consumers[tag]?.cancels == cancel { state.consumers[tag]?.session = session.id }
                }
                self.connection.logger.info("consumer resumed after the broker cancelled it", metadata: ["queue": "\(record.queue)", "consumer_tag": "\(tag)"])
                return
            } catch {
                // The channel closed (its consumers ended with it) or the connection is
                // recovering (which resumes the consumer): the loop's check sees either.
                self.connection.logger.debug("consumer not resumed yet", metadata: ["queue": "\(record.queue)", "error": "\(error)"])
            }
        }
        let expired: ConsumerRecord? = self.state.withLockedValue { state in
            guard let record = state.consumers[tag], record.session == nil, record.cancels == cancel else { return nil }
            state.consumers.removeValue(forKey: tag)
            return record
        }
        if let expired {
            self.connection.logger.error("consumer not resumed: its queue did not come back", metadata: ["queue": "\(expired.queue)", "consumer_tag": "\(tag)"])
            expired.sink.continuation.finish(throwing: Self.cancelledError(expired.queue, waited: configuration.recoveryWaitTimeout))
        }
    }

    /// Recovery: reopen under the same number and restore the channel's modes.
    func reopen(on session: Session) async throws {
        let (prefetch, confirm, tx) = self.state.withLockedValue { ($0.prefetch, $0.confirmMode, $0.txMode) }
        try await session.openChannel(self.channelID, handle: self)
        if let prefetch {
            _ = try await session.call(self.channelID, .basicQos(AMQP.Basic.Qos(prefetchCount: prefetch.count, global: prefetch.global)))
        }
        if confirm {
            session.outbox.withLockedValue { $0.confirms[self.channelID] = ConfirmTracker() }
            _ = try await session.call(self.channelID, .confirmSelect(AMQP.Confirm.Select()))
        }
        if tx {
            _ = try await session.call(self.channelID, .txSelect(AMQP.Tx.Select()))
        }
    }

    /// Recovery: re-register consumers under their tags, feeding the same sequences.
    /// A consumer the broker had cancelled is registered again too: the new session may
    /// well find its queue (another node).
    func resumeConsumers(on session: Session, names: TopologyRecord) async throws {
        let consumers = self.state.withLockedValue { $0.consumers }
        for (tag, record) in consumers.sorted(by: { $0.key < $1.key }) {
            let consume = AMQP.Basic.Consume(queue: names.currentName(ofQueue: record.queue), consumerTag: tag, noAck: record.noAck, exclusive: record.exclusive, arguments: record.arguments)
            _ = try await session.call(self.channelID, .basicConsume(consume), consumer: record.sink)
            self.state.withLockedValue { state in
                if state.consumers[tag] != nil { state.consumers[tag]?.session = session.id }
            }
        }
    }
}
