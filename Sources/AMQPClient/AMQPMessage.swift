import AMQPProtocol
import NIOCore

/// A message delivered to a consumer or fetched with `basic.get`.
public struct AMQPMessage: Sendable {
    public var body: ByteBuffer
    public var properties: BasicProperties
    /// The channel's tag for this delivery, valid until the connection is recovered.
    public var deliveryTag: UInt64
    public var redelivered: Bool
    public var exchange: String
    public var routingKey: String
    /// The consumer it was delivered to (nil for `get`).
    public var consumerTag: String?
    /// For `get`: how many messages were left in the queue.
    public var messageCount: UInt32?

    let channel: AMQPChannel?
    /// The connection incarnation the delivery tag belongs to: an ack for a message of a
    /// connection that has since been recovered is dropped (the broker already requeued it).
    let sessionID: UInt64

    public init(body: ByteBuffer, properties: BasicProperties = BasicProperties(), deliveryTag: UInt64 = 0, redelivered: Bool = false, exchange: String = "", routingKey: String = "", consumerTag: String? = nil, messageCount: UInt32? = nil) {
        self.init(body: body, properties: properties, deliveryTag: deliveryTag, redelivered: redelivered, exchange: exchange, routingKey: routingKey, consumerTag: consumerTag, messageCount: messageCount, channel: nil, sessionID: 0)
    }

    init(body: ByteBuffer, properties: BasicProperties, deliveryTag: UInt64, redelivered: Bool, exchange: String, routingKey: String, consumerTag: String?, messageCount: UInt32?, channel: AMQPChannel?, sessionID: UInt64) {
        self.body = body
        self.properties = properties
        self.deliveryTag = deliveryTag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routingKey = routingKey
        self.consumerTag = consumerTag
        self.messageCount = messageCount
        self.channel = channel
        self.sessionID = sessionID
    }

    /// The body decoded as UTF-8.
    public var bodyString: String { String(buffer: self.body) }

    /// Acknowledges this message on the channel it came from (no await: queued for the wire).
    public func ack(multiple: Bool = false) throws(AMQPError) {
        try self.requireChannel().acknowledge(.basicAck(AMQP.Basic.Ack(deliveryTag: self.deliveryTag, multiple: multiple)), sessionID: self.sessionID)
    }

    public func nack(multiple: Bool = false, requeue: Bool = true) throws(AMQPError) {
        try self.requireChannel().acknowledge(.basicNack(AMQP.Basic.Nack(deliveryTag: self.deliveryTag, multiple: multiple, requeue: requeue)), sessionID: self.sessionID)
    }

    public func reject(requeue: Bool = true) throws(AMQPError) {
        try self.requireChannel().acknowledge(.basicReject(AMQP.Basic.Reject(deliveryTag: self.deliveryTag, requeue: requeue)), sessionID: self.sessionID)
    }

    private func requireChannel() throws(AMQPError) -> AMQPChannel {
        guard let channel else { throw AMQPError(.invalidArgument, "this message was not received on a channel") }
        return channel
    }
}

/// A message the broker could not route and returned (publish with `mandatory`).
public struct ReturnedMessage: Sendable {
    public var replyCode: UInt16
    public var replyText: String
    public var exchange: String
    public var routingKey: String
    public var properties: BasicProperties
    public var body: ByteBuffer
}

/// The answer to queue.declare.
public struct QueueDeclareResult: Sendable, Hashable {
    public var name: String
    public var messageCount: UInt32
    public var consumerCount: UInt32
}

/// Where a consumer's deliveries go.
struct ConsumerSink: Sendable {
    let continuation: AsyncThrowingStream<AMQPMessage, any Error>.Continuation
    let channel: AMQPChannel
}

/// The deliveries of one consumer, in order. The sequence survives connection recovery:
/// after a reconnect the consumer is re-registered under the same tag and keeps yielding.
/// It ends when the consumer is cancelled (by the application or the broker) and throws
/// when the channel or connection fails for good. Buffering is bounded by the channel's
/// prefetch (basic.qos) for acknowledged consumers.
public struct AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = AMQPMessage

    public let consumerTag: String
    public let channel: AMQPChannel
    let stream: AsyncThrowingStream<AMQPMessage, any Error>

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<AMQPMessage, any Error>.AsyncIterator
        public mutating func next() async throws -> AMQPMessage? {
            try await self.base.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.stream.makeAsyncIterator())
    }

    /// Cancels the consumer; the sequence finishes after the deliveries already received.
    public func cancel() async throws {
        try await self.channel.cancel(consumerTag: self.consumerTag)
    }
}
