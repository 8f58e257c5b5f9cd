// Generated from amqp0-9-1.extended.xml by scripts/generate-methods.py. Do not edit.
// The AMQP 0-9-1 specification and RabbitMQ's extensions, (c) the AMQP Working Group
// and Broadcom, are distributed under the BSD license quoted in the spec.

import NIOCore

extension AMQP {
    /// The `basic` class (id 60): Work with basic content.
    public enum Basic {
        public static let classID: UInt16 = 60
    }
}

extension AMQP.Basic {
    /// `basic.qos`: Specify quality of service.
    ///
    /// This method requests a specific quality of service. The QoS can be specified for the
    /// current channel or for all channels on the connection. The particular properties and
    /// semantics of a qos method always depend on the content class semantics. Though the
    /// qos method could in principle apply to both peers, it is currently meaningful only
    /// for the server.
    public struct Qos: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 10
        public static let name = "basic.qos"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["basic.qos-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// Prefetch window in octets.
        ///
        /// The client can request that messages be sent in advance so that when the client
        /// finishes processing a message, the following message is already held locally,
        /// rather than needing to be sent down the channel. Prefetching gives a performance
        /// improvement. This field specifies the prefetch window size in octets. The server
        /// will send a message in advance if it is equal to or smaller in size than the
        /// available prefetch size (and also falls into other prefetch limits). May be set
        /// to zero, meaning "no specific limit", although other prefetch limits may still
        /// apply. The prefetch-size is ignored if the no-ack option is set.
        ///
        /// Rule 01: The server MUST ignore this setting when the client is not processing
        /// any messages - i.e. the prefetch size does not limit the transfer of single
        /// messages to a client, only the sending in advance of more messages while the
        /// client still has one or more unacknowledged messages.
        public var prefetchSize: UInt32

        /// Prefetch window in messages.
        ///
        /// Specifies a prefetch window in terms of whole messages. This field may be used
        /// in combination with the prefetch-size field; a message will only be sent in
        /// advance if both prefetch windows (and those at the channel and connection level)
        /// allow it. The prefetch-count is ignored if the no-ack option is set.
        ///
        /// Rule 01: The server may send less data in advance than allowed by the client's
        /// specified prefetch windows but it MUST NOT send more.
        public var prefetchCount: UInt16

        /// Apply to entire connection.
        ///
        /// RabbitMQ has reinterpreted this field. The original specification said: "By
        /// default the QoS settings apply to the current channel only. If this field is
        /// set, they are applied to the entire connection." Instead, RabbitMQ takes
        /// global=false to mean that the QoS settings should apply per-consumer (for new
        /// consumers on the channel; existing ones being unaffected) and global=true to
        /// mean that the QoS settings should apply per-channel.
        public var global: Bool

        @inlinable
        public init(prefetchSize: UInt32 = 0, prefetchCount: UInt16 = 0, global: Bool = false) {
            self.prefetchSize = prefetchSize
            self.prefetchCount = prefetchCount
            self.global = global
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.prefetchSize = try buffer.readAMQPLong()
            self.prefetchCount = try buffer.readAMQPShort()
            let bits = try buffer.readAMQPOctet()
            self.global = bits & 1 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.prefetchSize as UInt32)
            buffer.writeInteger(self.prefetchCount as UInt16)
            buffer.writeInteger(self.global ? 1 : 0 as UInt8)
        }
    }

    /// `basic.qos-ok`: Confirm the requested qos.
    ///
    /// This method tells the client that the requested QoS levels could be handled by the
    /// server. The requested QoS applies to all active consumers until a new QoS is
    /// defined.
    public struct QosOk: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 11
        public static let name = "basic.qos-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        @inlinable
        public init() {
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = buffer
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = buffer
        }
    }

    /// `basic.consume`: Start a queue consumer.
    ///
    /// This method asks the server to start a "consumer", which is a transient request for
    /// messages from a specific queue. Consumers last as long as the channel they were
    /// declared on, or until the client cancels them.
    ///
    /// Rule 01: The server SHOULD support at least 16 consumers per queue, and ideally,
    /// impose no limit except as defined by available resources.
    public struct Consume: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 20
        public static let name = "basic.consume"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["basic.consume-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// queue.
        ///
        /// Specifies the name of the queue to consume from.
        public var queue: String

        /// consumerTag.
        ///
        /// Specifies the identifier for the consumer. The consumer tag is local to a
        /// channel, so two clients can use the same consumer tags. If this field is empty
        /// the server will generate a unique tag.
        ///
        /// Rule 01 (on failure: not-allowed): The client MUST NOT specify a tag that refers
        /// to an existing consumer.
        ///
        /// Rule 02 (on failure: not-allowed): The consumer tag is valid only within the
        /// channel from which the consumer was created. I.e. a client MUST NOT create a
        /// consumer in one channel and then use it in another.
        public var consumerTag: String

        /// noLocal.
        public var noLocal: Bool

        /// noAck.
        public var noAck: Bool

        /// Request exclusive access.
        ///
        /// Request exclusive consumer access, meaning only this consumer can access the
        /// queue.
        ///
        /// Rule 01 (on failure: access-refused): The client MAY NOT gain exclusive access
        /// to a queue that already has active consumers.
        public var exclusive: Bool

        /// noWait.
        public var noWait: Bool

        /// Arguments for declaration.
        ///
        /// A set of arguments for the consume. The syntax and semantics of these arguments
        /// depends on the server implementation.
        public var arguments: FieldTable

        @inlinable
        public init(queue: String = "", consumerTag: String = "", noLocal: Bool = false, noAck: Bool = false, exclusive: Bool = false, noWait: Bool = false, arguments: FieldTable = [:]) {
            self.queue = queue
            self.consumerTag = consumerTag
            self.noLocal = noLocal
            self.noAck = noAck
            self.exclusive = exclusive
            self.noWait = noWait
            self.arguments = arguments
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShort()
            self.queue = try buffer.readAMQPShortString()
            self.consumerTag = try buffer.readAMQPShortString()
            let bits = try buffer.readAMQPOctet()
            self.noLocal = bits & 1 != 0
            self.noAck = bits & 2 != 0
            self.exclusive = bits & 4 != 0
            self.noWait = bits & 8 != 0
            self.arguments = try buffer.readAMQPFieldTable()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(0 as UInt16)
            try buffer.writeAMQPShortString(self.queue)
            try buffer.writeAMQPShortString(self.consumerTag)
            var bits: UInt8 = 0
            if self.noLocal { bits |= 1 }
            if self.noAck { bits |= 2 }
            if self.exclusive { bits |= 4 }
            if self.noWait { bits |= 8 }
            buffer.writeInteger(bits)
            try buffer.writeAMQPFieldTable(self.arguments)
        }
    }

    /// `basic.consume-ok`: Confirm a new consumer.
    ///
    /// The server provides the client with a consumer tag, which is used by the client for
    /// methods called on the consumer at a later stage.
    public struct ConsumeOk: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 21
        public static let name = "basic.consume-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// consumerTag.
        ///
        /// Holds the consumer tag specified by the client or provided by the server.
        public var consumerTag: String

        @inlinable
        public init(consumerTag: String = "") {
            self.consumerTag = consumerTag
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.consumerTag = try buffer.readAMQPShortString()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            try buffer.writeAMQPShortString(self.consumerTag)
        }
    }

    /// `basic.cancel`: End a queue consumer.
    ///
    /// This method cancels a consumer. This does not affect already delivered messages, but
    /// it does mean the server will not send any more messages for that consumer. The
    /// client may receive an arbitrary number of messages in between sending the cancel
    /// method and receiving the cancel-ok reply. It may also be sent from the server to the
    /// client in the event of the consumer being unexpectedly cancelled (i.e. cancelled for
    /// any reason other than the server receiving the corresponding basic.cancel from the
    /// client). This allows clients to be notified of the loss of consumers due to events
    /// such as queue deletion. Note that as it is not a MUST for clients to accept this
    /// method from the server, it is advisable for the broker to be able to identify those
    /// clients that are capable of accepting the method, through some means of capability
    /// negotiation.
    ///
    /// Rule 01: If the queue does not exist the server MUST ignore the cancel method, so
    /// long as the consumer tag is valid for that channel.
    public struct Cancel: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 30
        public static let name = "basic.cancel"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["basic.cancel-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// consumerTag.
        public var consumerTag: String

        /// noWait.
        public var noWait: Bool

        @inlinable
        public init(consumerTag: String = "", noWait: Bool = false) {
            self.consumerTag = consumerTag
            self.noWait = noWait
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.consumerTag = try buffer.readAMQPShortString()
            let bits = try buffer.readAMQPOctet()
            self.noWait = bits & 1 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            try buffer.writeAMQPShortString(self.consumerTag)
            buffer.writeInteger(self.noWait ? 1 : 0 as UInt8)
        }
    }

    /// `basic.cancel-ok`: Confirm a cancelled consumer.
    ///
    /// This method confirms that the cancellation was completed.
    public struct CancelOk: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 31
        public static let name = "basic.cancel-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// consumerTag.
        public var consumerTag: String

        @inlinable
        public init(consumerTag: String = "") {
            self.consumerTag = consumerTag
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.consumerTag = try buffer.readAMQPShortString()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            try buffer.writeAMQPShortString(self.consumerTag)
        }
    }

    /// `basic.publish`: Publish a message.
    ///
    /// This method publishes a message to a specific exchange. The message will be routed
    /// to queues as defined by the exchange configuration and distributed to any active
    /// consumers when the transaction, if any, is committed.
    public struct Publish: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 40
        public static let name = "basic.publish"
        public static let isSynchronous = false
        public static let hasContent = true
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// exchange.
        ///
        /// Specifies the name of the exchange to publish to. The exchange name can be
        /// empty, meaning the default exchange. If the exchange name is specified, and that
        /// exchange does not exist, the server will raise a channel exception.
        ///
        /// Rule must-exist (on failure: not-found): The client MUST NOT attempt to publish
        /// a content to an exchange that does not exist.
        ///
        /// Rule default-exchange: The server MUST accept a blank exchange name to mean the
        /// default exchange.
        ///
        /// Rule 02: If the exchange was declared as an internal exchange, the server MUST
        /// raise a channel exception with a reply code 403 (access refused).
        ///
        /// Rule 03: The exchange MAY refuse basic content in which case it MUST raise a
        /// channel exception with reply code 540 (not implemented).
        public var exchange: String

        /// Message routing key.
        ///
        /// Specifies the routing key for the message. The routing key is used for routing
        /// messages depending on the exchange configuration.
        public var routingKey: String

        /// Indicate mandatory routing.
        ///
        /// This flag tells the server how to react if the message cannot be routed to a
        /// queue. If this flag is set, the server will return an unroutable message with a
        /// Return method. If this flag is zero, the server silently drops the message.
        ///
        /// Rule 01: The server SHOULD implement the mandatory flag.
        public var mandatory: Bool

        /// Request immediate delivery.
        ///
        /// This flag tells the server how to react if the message cannot be routed to a
        /// queue consumer immediately. If this flag is set, the server will return an
        /// undeliverable message with a Return method. If this flag is zero, the server
        /// will queue the message, but with no guarantee that it will ever be consumed.
        ///
        /// Rule 01: The server SHOULD implement the immediate flag.
        public var immediate: Bool

        @inlinable
        public init(exchange: String = "", routingKey: String = "", mandatory: Bool = false, immediate: Bool = false) {
            self.exchange = exchange
            self.routingKey = routingKey
            self.mandatory = mandatory
            self.immediate = immediate
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShort()
            self.exchange = try buffer.readAMQPShortString()
            self.routingKey = try buffer.readAMQPShortString()
            let bits = try buffer.readAMQPOctet()
            self.mandatory = bits & 1 != 0
            self.immediate = bits & 2 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(0 as UInt16)
            try buffer.writeAMQPShortString(self.exchange)
            try buffer.writeAMQPShortString(self.routingKey)
            var bits: UInt8 = 0
            if self.mandatory { bits |= 1 }
            if self.immediate { bits |= 2 }
            buffer.writeInteger(bits)
        }
    }

    /// `basic.return`: Return a failed message.
    ///
    /// This method returns an undeliverable message that was published with the "immediate"
    /// flag set, or an unroutable message published with the "mandatory" flag set. The
    /// reply code and text provide information about the reason that the message was
    /// undeliverable.
    public struct Return: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 50
        public static let name = "basic.return"
        public static let isSynchronous = false
        public static let hasContent = true
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// replyCode.
        public var replyCode: UInt16

        /// replyText.
        public var replyText: String

        /// exchange.
        ///
        /// Specifies the name of the exchange that the message was originally published to.
        /// May be empty, meaning the default exchange.
        public var exchange: String

        /// Message routing key.
        ///
        /// Specifies the routing key name specified when the message was published.
        public var routingKey: String

        @inlinable
        public init(replyCode: UInt16 = 0, replyText: String = "", exchange: String = "", routingKey: String = "") {
            self.replyCode = replyCode
            self.replyText = replyText
            self.exchange = exchange
            self.routingKey = routingKey
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.replyCode = try buffer.readAMQPShort()
            self.replyText = try buffer.readAMQPShortString()
            self.exchange = try buffer.readAMQPShortString()
            self.routingKey = try buffer.readAMQPShortString()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.replyCode as UInt16)
            try buffer.writeAMQPShortString(self.replyText)
            try buffer.writeAMQPShortString(self.exchange)
            try buffer.writeAMQPShortString(self.routingKey)
        }
    }

    /// `basic.deliver`: Notify the client of a consumer message.
    ///
    /// This method delivers a message to the client, via a consumer. In the asynchronous
    /// message delivery model, the client starts a consumer using the Consume method, then
    /// the server responds with Deliver methods as and when messages arrive for that
    /// consumer.
    ///
    /// Rule 01: The server SHOULD track the number of times a message has been delivered to
    /// clients and when a message is redelivered a certain number of times - e.g. 5 times -
    /// without being acknowledged, the server SHOULD consider the message to be
    /// unprocessable (possibly causing client applications to abort), and move the message
    /// to a dead letter queue.
    public struct Deliver: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 60
        public static let name = "basic.deliver"
        public static let isSynchronous = false
        public static let hasContent = true
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// consumerTag.
        public var consumerTag: String

        /// deliveryTag.
        public var deliveryTag: UInt64

        /// redelivered.
        public var redelivered: Bool

        /// exchange.
        ///
        /// Specifies the name of the exchange that the message was originally published to.
        /// May be empty, indicating the default exchange.
        public var exchange: String

        /// Message routing key.
        ///
        /// Specifies the routing key name specified when the message was published.
        public var routingKey: String

        @inlinable
        public init(consumerTag: String = "", deliveryTag: UInt64 = 0, redelivered: Bool = false, exchange: String = "", routingKey: String = "") {
            self.consumerTag = consumerTag
            self.deliveryTag = deliveryTag
            self.redelivered = redelivered
            self.exchange = exchange
            self.routingKey = routingKey
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.consumerTag = try buffer.readAMQPShortString()
            self.deliveryTag = try buffer.readAMQPLongLong()
            let bits = try buffer.readAMQPOctet()
            self.redelivered = bits & 1 != 0
            self.exchange = try buffer.readAMQPShortString()
            self.routingKey = try buffer.readAMQPShortString()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            try buffer.writeAMQPShortString(self.consumerTag)
            buffer.writeInteger(self.deliveryTag as UInt64)
            buffer.writeInteger(self.redelivered ? 1 : 0 as UInt8)
            try buffer.writeAMQPShortString(self.exchange)
            try buffer.writeAMQPShortString(self.routingKey)
        }
    }

    /// `basic.get`: Direct access to a queue.
    ///
    /// This method provides a direct access to the messages in a queue using a synchronous
    /// dialogue that is designed for specific types of application where synchronous
    /// functionality is more important than performance.
    public struct Get: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 70
        public static let name = "basic.get"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["basic.get-ok", "basic.get-empty"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// queue.
        ///
        /// Specifies the name of the queue to get a message from.
        public var queue: String

        /// noAck.
        public var noAck: Bool

        @inlinable
        public init(queue: String = "", noAck: Bool = false) {
            self.queue = queue
            self.noAck = noAck
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShort()
            self.queue = try buffer.readAMQPShortString()
            let bits = try buffer.readAMQPOctet()
            self.noAck = bits & 1 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(0 as UInt16)
            try buffer.writeAMQPShortString(self.queue)
            buffer.writeInteger(self.noAck ? 1 : 0 as UInt8)
        }
    }

    /// `basic.get-ok`: Provide client with a message.
    ///
    /// This method delivers a message to the client following a get method. A message
    /// delivered by 'get-ok' must be acknowledged unless the no-ack option was set in the
    /// get method.
    public struct GetOk: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 71
        public static let name = "basic.get-ok"
        public static let isSynchronous = true
        public static let hasContent = true
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// deliveryTag.
        public var deliveryTag: UInt64

        /// redelivered.
        public var redelivered: Bool

        /// exchange.
        ///
        /// Specifies the name of the exchange that the message was originally published to.
        /// If empty, the message was published to the default exchange.
        public var exchange: String

        /// Message routing key.
        ///
        /// Specifies the routing key name specified when the message was published.
        public var routingKey: String

        /// messageCount.
        public var messageCount: UInt32

        @inlinable
        public init(deliveryTag: UInt64 = 0, redelivered: Bool = false, exchange: String = "", routingKey: String = "", messageCount: UInt32 = 0) {
            self.deliveryTag = deliveryTag
            self.redelivered = redelivered
            self.exchange = exchange
            self.routingKey = routingKey
            self.messageCount = messageCount
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.deliveryTag = try buffer.readAMQPLongLong()
            let bits = try buffer.readAMQPOctet()
            self.redelivered = bits & 1 != 0
            self.exchange = try buffer.readAMQPShortString()
            self.routingKey = try buffer.readAMQPShortString()
            self.messageCount = try buffer.readAMQPLong()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.deliveryTag as UInt64)
            buffer.writeInteger(self.redelivered ? 1 : 0 as UInt8)
            try buffer.writeAMQPShortString(self.exchange)
            try buffer.writeAMQPShortString(self.routingKey)
            buffer.writeInteger(self.messageCount as UInt32)
        }
    }

    /// `basic.get-empty`: Indicate no messages available.
    ///
    /// This method tells the client that the queue has no messages available for the
    /// client.
    public struct GetEmpty: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 72
        public static let name = "basic.get-empty"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        @inlinable
        public init() {
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShortString()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            try buffer.writeAMQPShortString("")
        }
    }

    /// `basic.ack`: Acknowledge one or more messages.
    ///
    /// When sent by the client, this method acknowledges one or more messages delivered via
    /// the Deliver or Get-Ok methods. When sent by server, this method acknowledges one or
    /// more messages published with the Publish method on a channel in confirm mode. The
    /// acknowledgement can be for a single message or a set of messages up to and including
    /// a specific message.
    public struct Ack: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 80
        public static let name = "basic.ack"
        public static let isSynchronous = false
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// deliveryTag.
        public var deliveryTag: UInt64

        /// Acknowledge multiple messages.
        ///
        /// If set to 1, the delivery tag is treated as "up to and including", so that
        /// multiple messages can be acknowledged with a single method. If set to zero, the
        /// delivery tag refers to a single message. If the multiple field is 1, and the
        /// delivery tag is zero, this indicates acknowledgement of all outstanding
        /// messages.
        ///
        /// Rule exists (on failure: precondition-failed): A message MUST not be
        /// acknowledged more than once. The receiving peer MUST validate that a non-zero
        /// delivery-tag refers to a delivered message, and raise a channel exception if
        /// this is not the case. On a transacted channel, this check MUST be done
        /// immediately and not delayed until a Tx.Commit.
        public var multiple: Bool

        @inlinable
        public init(deliveryTag: UInt64 = 0, multiple: Bool = false) {
            self.deliveryTag = deliveryTag
            self.multiple = multiple
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.deliveryTag = try buffer.readAMQPLongLong()
            let bits = try buffer.readAMQPOctet()
            self.multiple = bits & 1 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.deliveryTag as UInt64)
            buffer.writeInteger(self.multiple ? 1 : 0 as UInt8)
        }
    }

    /// `basic.reject`: Reject an incoming message.
    ///
    /// This method allows a client to reject a message. It can be used to interrupt and
    /// cancel large incoming messages, or return untreatable messages to their original
    /// queue.
    ///
    /// Rule 01: The server SHOULD be capable of accepting and process the Reject method
    /// while sending message content with a Deliver or Get-Ok method. I.e. the server
    /// should read and process incoming methods while sending output frames. To cancel a
    /// partially-send content, the server sends a content body frame of size 1 (i.e. with
    /// no data except the frame-end octet).
    ///
    /// Rule 02: The server SHOULD interpret this method as meaning that the client is
    /// unable to process the message at this time.
    ///
    /// Rule 03: The client MUST NOT use this method as a means of selecting messages to
    /// process.
    public struct Reject: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 90
        public static let name = "basic.reject"
        public static let isSynchronous = false
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// deliveryTag.
        public var deliveryTag: UInt64

        /// Requeue the message.
        ///
        /// If requeue is true, the server will attempt to requeue the message. If requeue
        /// is false or the requeue attempt fails the messages are discarded or dead-
        /// lettered.
        ///
        /// Rule 01: The server MUST NOT deliver the message to the same client within the
        /// context of the current channel. The recommended strategy is to attempt to
        /// deliver the message to an alternative consumer, and if that is not possible, to
        /// move the message to a dead-letter queue. The server MAY use more sophisticated
        /// tracking to hold the message on the queue and redeliver it to the same client at
        /// a later stage.
        public var requeue: Bool

        @inlinable
        public init(deliveryTag: UInt64 = 0, requeue: Bool = false) {
            self.deliveryTag = deliveryTag
            self.requeue = requeue
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.deliveryTag = try buffer.readAMQPLongLong()
            let bits = try buffer.readAMQPOctet()
            self.requeue = bits & 1 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.deliveryTag as UInt64)
            buffer.writeInteger(self.requeue ? 1 : 0 as UInt8)
        }
    }

    /// `basic.recover-async`: Redeliver unacknowledged messages.
    ///
    /// This method asks the server to redeliver all unacknowledged messages on a specified
    /// channel. Zero or more messages may be redelivered. This method is deprecated in
    /// favour of the synchronous Recover/Recover-Ok.
    ///
    /// Rule 01: The server MUST set the redelivered flag on all messages that are resent.
    ///
    /// Deprecated by the specification.
    public struct RecoverAsync: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 100
        public static let name = "basic.recover-async"
        public static let isSynchronous = false
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// Requeue the message.
        ///
        /// If this field is zero, the message will be redelivered to the original
        /// recipient. If this bit is 1, the server will attempt to requeue the message,
        /// potentially then delivering it to an alternative subscriber.
        public var requeue: Bool

        @inlinable
        public init(requeue: Bool = false) {
            self.requeue = requeue
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            let bits = try buffer.readAMQPOctet()
            self.requeue = bits & 1 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.requeue ? 1 : 0 as UInt8)
        }
    }

    /// `basic.recover`: Redeliver unacknowledged messages.
    ///
    /// This method asks the server to redeliver all unacknowledged messages on a specified
    /// channel. Zero or more messages may be redelivered. This method replaces the
    /// asynchronous Recover.
    ///
    /// Rule 01: The server MUST set the redelivered flag on all messages that are resent.
    public struct Recover: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 110
        public static let name = "basic.recover"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["basic.recover-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// Requeue the message.
        ///
        /// If this field is zero, the message will be redelivered to the original
        /// recipient. If this bit is 1, the server will attempt to requeue the message,
        /// potentially then delivering it to an alternative subscriber.
        public var requeue: Bool

        @inlinable
        public init(requeue: Bool = false) {
            self.requeue = requeue
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            let bits = try buffer.readAMQPOctet()
            self.requeue = bits & 1 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.requeue ? 1 : 0 as UInt8)
        }
    }

    /// `basic.recover-ok`: Confirm recovery.
    ///
    /// This method acknowledges a Basic.Recover method.
    public struct RecoverOk: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 111
        public static let name = "basic.recover-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        @inlinable
        public init() {
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = buffer
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = buffer
        }
    }

    /// `basic.nack`: Reject one or more incoming messages.
    ///
    /// This method allows a client to reject one or more incoming messages. It can be used
    /// to interrupt and cancel large incoming messages, or return untreatable messages to
    /// their original queue. This method is also used by the server to inform publishers on
    /// channels in confirm mode of unhandled messages. If a publisher receives this method,
    /// it probably needs to republish the offending messages.
    ///
    /// Rule 01: The server SHOULD be capable of accepting and processing the Nack method
    /// while sending message content with a Deliver or Get-Ok method. I.e. the server
    /// should read and process incoming methods while sending output frames. To cancel a
    /// partially-send content, the server sends a content body frame of size 1 (i.e. with
    /// no data except the frame-end octet).
    ///
    /// Rule 02: The server SHOULD interpret this method as meaning that the client is
    /// unable to process the message at this time.
    ///
    /// Rule 03: The client MUST NOT use this method as a means of selecting messages to
    /// process.
    ///
    /// Rule 04: A client publishing messages to a channel in confirm mode SHOULD be capable
    /// of accepting and somehow handling the Nack method.
    public struct Nack: MethodPayload {
        public static let classID: UInt16 = 60
        public static let methodID: UInt16 = 120
        public static let name = "basic.nack"
        public static let isSynchronous = false
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// deliveryTag.
        public var deliveryTag: UInt64

        /// Reject multiple messages.
        ///
        /// If set to 1, the delivery tag is treated as "up to and including", so that
        /// multiple messages can be rejected with a single method. If set to zero, the
        /// delivery tag refers to a single message. If the multiple field is 1, and the
        /// delivery tag is zero, this indicates rejection of all outstanding messages.
        ///
        /// Rule exists (on failure: precondition-failed): A message MUST not be rejected
        /// more than once. The receiving peer MUST validate that a non-zero delivery-tag
        /// refers to an unacknowledged, delivered message, and raise a channel exception if
        /// this is not the case.
        public var multiple: Bool

        /// Requeue the message.
        ///
        /// If requeue is true, the server will attempt to requeue the message. If requeue
        /// is false or the requeue attempt fails the messages are discarded or dead-
        /// lettered. Clients receiving the Nack methods should ignore this flag.
        ///
        /// Rule 01: The server MUST NOT deliver the message to the same client within the
        /// context of the current channel. The recommended strategy is to attempt to
        /// deliver the message to an alternative consumer, and if that is not possible, to
        /// move the message to a dead-letter queue. The server MAY use more sophisticated
        /// tracking to hold the message on the queue and redeliver it to the same client at
        /// a later stage.
        public var requeue: Bool

        @inlinable
        public init(deliveryTag: UInt64 = 0, multiple: Bool = false, requeue: Bool = false) {
            self.deliveryTag = deliveryTag
            self.multiple = multiple
            self.requeue = requeue
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.deliveryTag = try buffer.readAMQPLongLong()
            let bits = try buffer.readAMQPOctet()
            self.multiple = bits & 1 != 0
            self.requeue = bits & 2 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.deliveryTag as UInt64)
            var bits: UInt8 = 0
            if self.multiple { bits |= 1 }
            if self.requeue { bits |= 2 }
            buffer.writeInteger(bits)
        }
    }
}
