// Generated from amqp0-9-1.extended.xml by scripts/generate-methods.py. Do not edit.
// The AMQP 0-9-1 specification and RabbitMQ's extensions, (c) the AMQP Working Group
// and Broadcom, are distributed under the BSD license quoted in the spec.

import NIOCore

extension AMQP {
    /// The `queue` class (id 50): Work with queues.
    public enum Queue {
        public static let classID: UInt16 = 50
    }
}

extension AMQP.Queue {
    /// `queue.declare`: Declare queue, create if needed.
    ///
    /// This method creates or checks a queue. When creating a new queue the client can
    /// specify various properties that control the durability of the queue and its
    /// contents, and the level of sharing for the queue.
    ///
    /// Rule default-binding: The server MUST create a default binding for a newly-declared
    /// queue to the default exchange, which is an exchange of type 'direct' and use the
    /// queue name as the routing key.
    ///
    /// Rule minimum-queues: The server SHOULD support a minimum of 256 queues per virtual
    /// host and ideally, impose no limit except as defined by available resources.
    public struct Declare: MethodPayload {
        public static let classID: UInt16 = 50
        public static let methodID: UInt16 = 10
        public static let name = "queue.declare"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["queue.declare-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// queue.
        ///
        /// Rule default-name: The queue name MAY be empty, in which case the server MUST
        /// create a new queue with a unique generated name and return this to the client in
        /// the Declare-Ok method.
        ///
        /// Rule reserved (on failure: access-refused): Queue names starting with "amq." are
        /// reserved for pre-declared and standardised queues. The client MAY declare a
        /// queue starting with "amq." if the passive option is set, or the queue already
        /// exists.
        ///
        /// Rule syntax (on failure: precondition-failed): The queue name can be empty, or a
        /// sequence of these characters: letters, digits, hyphen, underscore, period, or
        /// colon.
        public var queue: String

        /// Do not create queue.
        ///
        /// If set, the server will reply with Declare-Ok if the queue already exists with
        /// the same name, and raise an error if not. The client can use this to check
        /// whether a queue exists without modifying the server state. When set, all other
        /// method fields except name and no-wait are ignored. A declare with both passive
        /// and no-wait has no effect. Arguments are compared for semantic equivalence.
        ///
        /// Rule passive (on failure: not-found): The client MAY ask the server to assert
        /// that a queue exists without creating the queue if not. If the queue does not
        /// exist, the server treats this as a failure.
        ///
        /// Rule equivalent: If not set and the queue exists, the server MUST check that the
        /// existing queue has the same values for durable, exclusive, auto-delete, and
        /// arguments fields. The server MUST respond with Declare-Ok if the requested queue
        /// matches these fields, and MUST raise a channel exception if not.
        public var passive: Bool

        /// Request a durable queue.
        ///
        /// If set when creating a new queue, the queue will be marked as durable. Durable
        /// queues remain active when a server restarts. Non-durable queues (transient
        /// queues) are purged if/when a server restarts. Note that durable queues do not
        /// necessarily hold persistent messages, although it does not make sense to send
        /// persistent messages to a transient queue.
        ///
        /// Rule persistence: The server MUST recreate the durable queue after a restart.
        ///
        /// Rule types: The server MUST support both durable and transient queues.
        public var durable: Bool

        /// Request an exclusive queue.
        ///
        /// Exclusive queues may only be accessed by the current connection, and are deleted
        /// when that connection closes. Passive declaration of an exclusive queue by other
        /// connections are not allowed.
        ///
        /// Rule types: The server MUST support both exclusive (private) and non-exclusive
        /// (shared) queues.
        ///
        /// Rule exclusive (on failure: resource-locked): The client MAY NOT attempt to use
        /// a queue that was declared as exclusive by another still-open connection.
        public var exclusive: Bool

        /// Auto-delete queue when unused.
        ///
        /// If set, the queue is deleted when all consumers have finished using it. The last
        /// consumer can be cancelled either explicitly or because its channel is closed. If
        /// there was no consumer ever on the queue, it won't be deleted. Applications can
        /// explicitly delete auto-delete queues using the Delete method as normal.
        ///
        /// Rule pre-existence: The server MUST ignore the auto-delete field if the queue
        /// already exists.
        public var autoDelete: Bool

        /// noWait.
        public var noWait: Bool

        /// Arguments for declaration.
        ///
        /// A set of arguments for the declaration. The syntax and semantics of these
        /// arguments depends on the server implementation.
        public var arguments: FieldTable

        @inlinable
        public init(queue: String = "", passive: Bool = false, durable: Bool = false, exclusive: Bool = false, autoDelete: Bool = false, noWait: Bool = false, arguments: FieldTable = [:]) {
            self.queue = queue
            self.passive = passive
            self.durable = durable
            self.exclusive = exclusive
            self.autoDelete = autoDelete
            self.noWait = noWait
            self.arguments = arguments
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShort()
            self.queue = try buffer.readAMQPShortString()
            let bits = try buffer.readAMQPOctet()
            self.passive = bits & 1 != 0
            self.durable = bits & 2 != 0
            self.exclusive = bits & 4 != 0
            self.autoDelete = bits & 8 != 0
            self.noWait = bits & 16 != 0
            self.arguments = try buffer.readAMQPFieldTable()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(0 as UInt16)
            try buffer.writeAMQPShortString(self.queue)
            var bits: UInt8 = 0
            if self.passive { bits |= 1 }
            if self.durable { bits |= 2 }
            if self.exclusive { bits |= 4 }
            if self.autoDelete { bits |= 8 }
            if self.noWait { bits |= 16 }
            buffer.writeInteger(bits)
            try buffer.writeAMQPFieldTable(self.arguments)
        }
    }

    /// `queue.declare-ok`: Confirms a queue definition.
    ///
    /// This method confirms a Declare method and confirms the name of the queue, essential
    /// for automatically-named queues.
    public struct DeclareOk: MethodPayload {
        public static let classID: UInt16 = 50
        public static let methodID: UInt16 = 11
        public static let name = "queue.declare-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// queue.
        ///
        /// Reports the name of the queue. If the server generated a queue name, this field
        /// contains that name.
        public var queue: String

        /// messageCount.
        public var messageCount: UInt32

        /// Number of consumers.
        ///
        /// Reports the number of active consumers for the queue. Note that consumers can
        /// suspend activity (Channel.Flow) in which case they do not appear in this count.
        public var consumerCount: UInt32

        @inlinable
        public init(queue: String = "", messageCount: UInt32 = 0, consumerCount: UInt32 = 0) {
            self.queue = queue
            self.messageCount = messageCount
            self.consumerCount = consumerCount
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.queue = try buffer.readAMQPShortString()
            self.messageCount = try buffer.readAMQPLong()
            self.consumerCount = try buffer.readAMQPLong()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            try buffer.writeAMQPShortString(self.queue)
            buffer.writeInteger(self.messageCount as UInt32)
            buffer.writeInteger(self.consumerCount as UInt32)
        }
    }

    /// `queue.bind`: Bind queue to an exchange.
    ///
    /// This method binds a queue to an exchange. Until a queue is bound it will not receive
    /// any messages. In a classic messaging model, store-and-forward queues are bound to a
    /// direct exchange and subscription queues are bound to a topic exchange.
    ///
    /// Rule duplicates: A server MUST allow ignore duplicate bindings - that is, two or
    /// more bind methods for a specific queue, with identical arguments - without treating
    /// these as an error.
    ///
    /// Rule unique: A server MUST not deliver the same message more than once to a queue,
    /// even if the queue has multiple bindings that match the message.
    ///
    /// Rule transient-exchange: The server MUST allow a durable queue to bind to a
    /// transient exchange.
    ///
    /// Rule durable-exchange: Bindings of durable queues to durable exchanges are
    /// automatically durable and the server MUST restore such bindings after a server
    /// restart.
    ///
    /// Rule binding-count: The server SHOULD support at least 4 bindings per queue, and
    /// ideally, impose no limit except as defined by available resources.
    public struct Bind: MethodPayload {
        public static let classID: UInt16 = 50
        public static let methodID: UInt16 = 20
        public static let name = "queue.bind"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["queue.bind-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// queue.
        ///
        /// Specifies the name of the queue to bind.
        ///
        /// Rule queue-known (on failure: not-found): The client MUST either specify a queue
        /// name or have previously declared a queue on the same channel
        ///
        /// Rule must-exist (on failure: not-found): The client MUST NOT attempt to bind a
        /// queue that does not exist.
        public var queue: String

        /// Name of the exchange to bind to.
        ///
        /// Rule exchange-existence (on failure: not-found): A client MUST NOT be allowed to
        /// bind a queue to a non-existent exchange.
        ///
        /// Rule default-exchange: The server MUST accept a blank exchange name to mean the
        /// default exchange.
        public var exchange: String

        /// Message routing key.
        ///
        /// Specifies the routing key for the binding. The routing key is used for routing
        /// messages depending on the exchange configuration. Not all exchanges use a
        /// routing key - refer to the specific exchange documentation. If the queue name is
        /// empty, the server uses the last queue declared on the channel. If the routing
        /// key is also empty, the server uses this queue name for the routing key as well.
        /// If the queue name is provided but the routing key is empty, the server does the
        /// binding with that empty routing key. The meaning of empty routing keys depends
        /// on the exchange implementation.
        ///
        /// Rule direct-exchange-key-matching: If a message queue binds to a direct exchange
        /// using routing key K and a publisher sends the exchange a message with routing
        /// key R, then the message MUST be passed to the message queue if K = R.
        public var routingKey: String

        /// noWait.
        public var noWait: Bool

        /// Arguments for binding.
        ///
        /// A set of arguments for the binding. The syntax and semantics of these arguments
        /// depends on the exchange class.
        public var arguments: FieldTable

        @inlinable
        public init(queue: String = "", exchange: String = "", routingKey: String = "", noWait: Bool = false, arguments: FieldTable = [:]) {
            self.queue = queue
            self.exchange = exchange
            self.routingKey = routingKey
            self.noWait = noWait
            self.arguments = arguments
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShort()
            self.queue = try buffer.readAMQPShortString()
            self.exchange = try buffer.readAMQPShortString()
            self.routingKey = try buffer.readAMQPShortString()
            let bits = try buffer.readAMQPOctet()
            self.noWait = bits & 1 != 0
            self.arguments = try buffer.readAMQPFieldTable()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(0 as UInt16)
            try buffer.writeAMQPShortString(self.queue)
            try buffer.writeAMQPShortString(self.exchange)
            try buffer.writeAMQPShortString(self.routingKey)
            buffer.writeInteger(self.noWait ? 1 : 0 as UInt8)
            try buffer.writeAMQPFieldTable(self.arguments)
        }
    }

    /// `queue.bind-ok`: Confirm bind successful.
    ///
    /// This method confirms that the bind was successful.
    public struct BindOk: MethodPayload {
        public static let classID: UInt16 = 50
        public static let methodID: UInt16 = 21
        public static let name = "queue.bind-ok"
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

    /// `queue.unbind`: Unbind a queue from an exchange.
    ///
    /// This method unbinds a queue from an exchange.
    ///
    /// Rule 01: If a unbind fails, the server MUST raise a connection exception.
    public struct Unbind: MethodPayload {
        public static let classID: UInt16 = 50
        public static let methodID: UInt16 = 50
        public static let name = "queue.unbind"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["queue.unbind-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// queue.
        ///
        /// Specifies the name of the queue to unbind.
        ///
        /// Rule queue-known (on failure: not-found): The client MUST either specify a queue
        /// name or have previously declared a queue on the same channel
        ///
        /// Rule must-exist (on failure: not-found): The client MUST NOT attempt to unbind a
        /// queue that does not exist.
        public var queue: String

        /// exchange.
        ///
        /// The name of the exchange to unbind from.
        ///
        /// Rule must-exist (on failure: not-found): The client MUST NOT attempt to unbind a
        /// queue from an exchange that does not exist.
        ///
        /// Rule default-exchange: The server MUST accept a blank exchange name to mean the
        /// default exchange.
        public var exchange: String

        /// Routing key of binding.
        ///
        /// Specifies the routing key of the binding to unbind.
        public var routingKey: String

        /// Arguments of binding.
        ///
        /// Specifies the arguments of the binding to unbind.
        public var arguments: FieldTable

        @inlinable
        public init(queue: String = "", exchange: String = "", routingKey: String = "", arguments: FieldTable = [:]) {
            self.queue = queue
            self.exchange = exchange
            self.routingKey = routingKey
            self.arguments = arguments
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShort()
            self.queue = try buffer.readAMQPShortString()
            self.exchange = try buffer.readAMQPShortString()
            self.routingKey = try buffer.readAMQPShortString()
            self.arguments = try buffer.readAMQPFieldTable()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(0 as UInt16)
            try buffer.writeAMQPShortString(self.queue)
            try buffer.writeAMQPShortString(self.exchange)
            try buffer.writeAMQPShortString(self.routingKey)
            try buffer.writeAMQPFieldTable(self.arguments)
        }
    }

    /// `queue.unbind-ok`: Confirm unbind successful.
    ///
    /// This method confirms that the unbind was successful.
    public struct UnbindOk: MethodPayload {
        public static let classID: UInt16 = 50
        public static let methodID: UInt16 = 51
        public static let name = "queue.unbind-ok"
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

    /// `queue.purge`: Purge a queue.
    ///
    /// This method removes all messages from a queue which are not awaiting acknowledgment.
    ///
    /// Rule 02: The server MUST NOT purge messages that have already been sent to a client
    /// but not yet acknowledged.
    ///
    /// Rule 03: The server MAY implement a purge queue or log that allows system
    /// administrators to recover accidentally-purged messages. The server SHOULD NOT keep
    /// purged messages in the same storage spaces as the live messages since the volumes of
    /// purged messages may get very large.
    public struct Purge: MethodPayload {
        public static let classID: UInt16 = 50
        public static let methodID: UInt16 = 30
        public static let name = "queue.purge"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["queue.purge-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// queue.
        ///
        /// Specifies the name of the queue to purge.
        ///
        /// Rule queue-known (on failure: not-found): The client MUST either specify a queue
        /// name or have previously declared a queue on the same channel
        ///
        /// Rule must-exist (on failure: not-found): The client MUST NOT attempt to purge a
        /// queue that does not exist.
        public var queue: String

        /// noWait.
        public var noWait: Bool

        @inlinable
        public init(queue: String = "", noWait: Bool = false) {
            self.queue = queue
            self.noWait = noWait
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShort()
            self.queue = try buffer.readAMQPShortString()
            let bits = try buffer.readAMQPOctet()
            self.noWait = bits & 1 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(0 as UInt16)
            try buffer.writeAMQPShortString(self.queue)
            buffer.writeInteger(self.noWait ? 1 : 0 as UInt8)
        }
    }

    /// `queue.purge-ok`: Confirms a queue purge.
    ///
    /// This method confirms the purge of a queue.
    public struct PurgeOk: MethodPayload {
        public static let classID: UInt16 = 50
        public static let methodID: UInt16 = 31
        public static let name = "queue.purge-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// messageCount.
        ///
        /// Reports the number of messages purged.
        public var messageCount: UInt32

        @inlinable
        public init(messageCount: UInt32 = 0) {
            self.messageCount = messageCount
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.messageCount = try buffer.readAMQPLong()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.messageCount as UInt32)
        }
    }

    /// `queue.delete`: Delete a queue.
    ///
    /// This method deletes a queue. When a queue is deleted any pending messages are sent
    /// to a dead-letter queue if this is defined in the server configuration, and all
    /// consumers on the queue are cancelled.
    ///
    /// Rule 01: The server SHOULD use a dead-letter queue to hold messages that were
    /// pending on a deleted queue, and MAY provide facilities for a system administrator to
    /// move these messages back to an active queue.
    public struct Delete: MethodPayload {
        public static let classID: UInt16 = 50
        public static let methodID: UInt16 = 40
        public static let name = "queue.delete"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["queue.delete-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// queue.
        ///
        /// Specifies the name of the queue to delete.
        ///
        /// Rule queue-known (on failure: not-found): The client MUST either specify a queue
        /// name or have previously declared a queue on the same channel
        ///
        /// Rule must-exist (on failure: not-found): The client MUST NOT attempt to delete a
        /// queue that does not exist.
        public var queue: String

        /// Delete only if unused.
        ///
        /// If set, the server will only delete the queue if it has no consumers. If the
        /// queue has consumers the server does does not delete it but raises a channel
        /// exception instead.
        ///
        /// Rule in-use (on failure: precondition-failed): The server MUST NOT delete a
        /// queue that has consumers on it, if the if-unused field is true.
        public var ifUnused: Bool

        /// Delete only if empty.
        ///
        /// If set, the server will only delete the queue if it has no messages.
        ///
        /// Rule not-empty (on failure: precondition-failed): The server MUST NOT delete a
        /// queue that has messages on it, if the if-empty field is true.
        public var ifEmpty: Bool

        /// noWait.
        public var noWait: Bool

        @inlinable
        public init(queue: String = "", ifUnused: Bool = false, ifEmpty: Bool = false, noWait: Bool = false) {
            self.queue = queue
            self.ifUnused = ifUnused
            self.ifEmpty = ifEmpty
            self.noWait = noWait
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShort()
            self.queue = try buffer.readAMQPShortString()
            let bits = try buffer.readAMQPOctet()
            self.ifUnused = bits & 1 != 0
            self.ifEmpty = bits & 2 != 0
            self.noWait = bits & 4 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(0 as UInt16)
            try buffer.writeAMQPShortString(self.queue)
            var bits: UInt8 = 0
            if self.ifUnused { bits |= 1 }
            if self.ifEmpty { bits |= 2 }
            if self.noWait { bits |= 4 }
            buffer.writeInteger(bits)
        }
    }

    /// `queue.delete-ok`: Confirm deletion of a queue.
    ///
    /// This method confirms the deletion of a queue.
    public struct DeleteOk: MethodPayload {
        public static let classID: UInt16 = 50
        public static let methodID: UInt16 = 41
        public static let name = "queue.delete-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = false
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// messageCount.
        ///
        /// Reports the number of messages deleted.
        public var messageCount: UInt32

        @inlinable
        public init(messageCount: UInt32 = 0) {
            self.messageCount = messageCount
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.messageCount = try buffer.readAMQPLong()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.messageCount as UInt32)
        }
    }
}
