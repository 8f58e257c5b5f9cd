// Generated from amqp0-9-1.extended.xml by scripts/generate-methods.py. Do not edit.
// The AMQP 0-9-1 specification and RabbitMQ's extensions, (c) the AMQP Working Group
// and Broadcom, are distributed under the BSD license quoted in the spec.

import NIOCore

extension AMQP {
    /// The `exchange` class (id 40): Work with exchanges.
    public enum Exchange {
        public static let classID: UInt16 = 40
    }
}

extension AMQP.Exchange {
    /// `exchange.declare`: Verify exchange exists, create if needed.
    ///
    /// This method creates an exchange if it does not already exist, and if the exchange
    /// exists, verifies that it is of the correct and expected class.
    ///
    /// Rule minimum: The server SHOULD support a minimum of 16 exchanges per virtual host
    /// and ideally, impose no limit except as defined by available resources.
    public struct Declare: MethodPayload {
        public static let classID: UInt16 = 40
        public static let methodID: UInt16 = 10
        public static let name = "exchange.declare"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["exchange.declare-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// exchange.
        ///
        /// Rule reserved (on failure: access-refused): Exchange names starting with "amq."
        /// are reserved for pre-declared and standardised exchanges. The client MAY declare
        /// an exchange starting with "amq." if the passive option is set, or the exchange
        /// already exists.
        ///
        /// Rule syntax (on failure: precondition-failed): The exchange name consists of a
        /// non-empty sequence of these characters: letters, digits, hyphen, underscore,
        /// period, or colon.
        public var exchange: String

        /// Exchange type.
        ///
        /// Each exchange belongs to one of a set of exchange types implemented by the
        /// server. The exchange types define the functionality of the exchange - i.e. how
        /// messages are routed through it. It is not valid or meaningful to attempt to
        /// change the type of an existing exchange.
        ///
        /// Rule typed (on failure: not-allowed): Exchanges cannot be redeclared with
        /// different types. The client MUST not attempt to redeclare an existing exchange
        /// with a different type than used in the original Exchange.Declare method.
        ///
        /// Rule support (on failure: command-invalid): The client MUST NOT attempt to
        /// declare an exchange with a type that the server does not support.
        public var `type`: String

        /// Do not create exchange.
        ///
        /// If set, the server will reply with Declare-Ok if the exchange already exists
        /// with the same name, and raise an error if not. The client can use this to check
        /// whether an exchange exists without modifying the server state. When set, all
        /// other method fields except name and no-wait are ignored. A declare with both
        /// passive and no-wait has no effect. Arguments are compared for semantic
        /// equivalence.
        ///
        /// Rule not-found: If set, and the exchange does not already exist, the server MUST
        /// raise a channel exception with reply code 404 (not found).
        ///
        /// Rule equivalent: If not set and the exchange exists, the server MUST check that
        /// the existing exchange has the same values for type, durable, and arguments
        /// fields. The server MUST respond with Declare-Ok if the requested exchange
        /// matches these fields, and MUST raise a channel exception if not.
        public var passive: Bool

        /// Request a durable exchange.
        ///
        /// If set when creating a new exchange, the exchange will be marked as durable.
        /// Durable exchanges remain active when a server restarts. Non-durable exchanges
        /// (transient exchanges) are purged if/when a server restarts.
        ///
        /// Rule support: The server MUST support both durable and transient exchanges.
        public var durable: Bool

        /// Auto-delete when unused.
        ///
        /// If set, the exchange is deleted when all queues have finished using it.
        ///
        /// Rule amq_exchange_02: The server SHOULD allow for a reasonable delay between the
        /// point when it determines that an exchange is not being used (or no longer used),
        /// and the point when it deletes the exchange. At the least it must allow a client
        /// to create an exchange and then bind a queue to it, with a small but non-zero
        /// delay between these two actions.
        ///
        /// Rule amq_exchange_25: The server MUST ignore the auto-delete field if the
        /// exchange already exists.
        public var autoDelete: Bool

        /// Create internal exchange.
        ///
        /// If set, the exchange may not be used directly by publishers, but only when bound
        /// to other exchanges. Internal exchanges are used to construct wiring that is not
        /// visible to applications.
        public var `internal`: Bool

        /// noWait.
        public var noWait: Bool

        /// Arguments for declaration.
        ///
        /// A set of arguments for the declaration. The syntax and semantics of these
        /// arguments depends on the server implementation.
        public var arguments: FieldTable

        @inlinable
        public init(exchange: String = "", `type`: String = "", passive: Bool = false, durable: Bool = false, autoDelete: Bool = false, `internal`: Bool = false, noWait: Bool = false, arguments: FieldTable = [:]) {
            self.exchange = exchange
            self.`type` = `type`
            self.passive = passive
            self.durable = durable
            self.autoDelete = autoDelete
            self.`internal` = `internal`
            self.noWait = noWait
            self.arguments = arguments
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShort()
            self.exchange = try buffer.readAMQPShortString()
            self.`type` = try buffer.readAMQPShortString()
            let bits = try buffer.readAMQPOctet()
            self.passive = bits & 1 != 0
            self.durable = bits & 2 != 0
            self.autoDelete = bits & 4 != 0
            self.`internal` = bits & 8 != 0
            self.noWait = bits & 16 != 0
            self.arguments = try buffer.readAMQPFieldTable()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(0 as UInt16)
            try buffer.writeAMQPShortString(self.exchange)
            try buffer.writeAMQPShortString(self.`type`)
            var bits: UInt8 = 0
            if self.passive { bits |= 1 }
            if self.durable { bits |= 2 }
            if self.autoDelete { bits |= 4 }
            if self.`internal` { bits |= 8 }
            if self.noWait { bits |= 16 }
            buffer.writeInteger(bits)
            try buffer.writeAMQPFieldTable(self.arguments)
        }
    }

    /// `exchange.declare-ok`: Confirm exchange declaration.
    ///
    /// This method confirms a Declare method and confirms the name of the exchange,
    /// essential for automatically-named exchanges.
    public struct DeclareOk: MethodPayload {
        public static let classID: UInt16 = 40
        public static let methodID: UInt16 = 11
        public static let name = "exchange.declare-ok"
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

    /// `exchange.delete`: Delete an exchange.
    ///
    /// This method deletes an exchange. When an exchange is deleted all queue bindings on
    /// the exchange are cancelled.
    public struct Delete: MethodPayload {
        public static let classID: UInt16 = 40
        public static let methodID: UInt16 = 20
        public static let name = "exchange.delete"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["exchange.delete-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// exchange.
        ///
        /// Rule exists (on failure: not-found): The client MUST NOT attempt to delete an
        /// exchange that does not exist.
        public var exchange: String

        /// Delete only if unused.
        ///
        /// If set, the server will only delete the exchange if it has no queue bindings. If
        /// the exchange has queue bindings the server does not delete it but raises a
        /// channel exception instead.
        ///
        /// Rule in-use (on failure: precondition-failed): The server MUST NOT delete an
        /// exchange that has bindings on it, if the if-unused field is true.
        public var ifUnused: Bool

        /// noWait.
        public var noWait: Bool

        @inlinable
        public init(exchange: String = "", ifUnused: Bool = false, noWait: Bool = false) {
            self.exchange = exchange
            self.ifUnused = ifUnused
            self.noWait = noWait
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShort()
            self.exchange = try buffer.readAMQPShortString()
            let bits = try buffer.readAMQPOctet()
            self.ifUnused = bits & 1 != 0
            self.noWait = bits & 2 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(0 as UInt16)
            try buffer.writeAMQPShortString(self.exchange)
            var bits: UInt8 = 0
            if self.ifUnused { bits |= 1 }
            if self.noWait { bits |= 2 }
            buffer.writeInteger(bits)
        }
    }

    /// `exchange.delete-ok`: Confirm deletion of an exchange.
    ///
    /// This method confirms the deletion of an exchange.
    public struct DeleteOk: MethodPayload {
        public static let classID: UInt16 = 40
        public static let methodID: UInt16 = 21
        public static let name = "exchange.delete-ok"
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

    /// `exchange.bind`: Bind exchange to an exchange.
    ///
    /// This method binds an exchange to an exchange.
    ///
    /// Rule duplicates: A server MUST allow and ignore duplicate bindings - that is, two or
    /// more bind methods for a specific exchanges, with identical arguments - without
    /// treating these as an error.
    ///
    /// Rule cyclical: A server MUST allow cycles of exchange bindings to be created
    /// including allowing an exchange to be bound to itself.
    ///
    /// Rule unique: A server MUST not deliver the same message more than once to a
    /// destination exchange, even if the topology of exchanges and bindings results in
    /// multiple (even infinite) routes to that exchange.
    public struct Bind: MethodPayload {
        public static let classID: UInt16 = 40
        public static let methodID: UInt16 = 30
        public static let name = "exchange.bind"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["exchange.bind-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// Name of the destination exchange to bind to.
        ///
        /// Specifies the name of the destination exchange to bind.
        ///
        /// Rule exchange-existence (on failure: not-found): A client MUST NOT be allowed to
        /// bind a non-existent destination exchange.
        ///
        /// Rule default-exchange: The server MUST accept a blank exchange name to mean the
        /// default exchange.
        public var destination: String

        /// Name of the source exchange to bind to.
        ///
        /// Specifies the name of the source exchange to bind.
        ///
        /// Rule exchange-existence (on failure: not-found): A client MUST NOT be allowed to
        /// bind a non-existent source exchange.
        ///
        /// Rule default-exchange: The server MUST accept a blank exchange name to mean the
        /// default exchange.
        public var source: String

        /// Message routing key.
        ///
        /// Specifies the routing key for the binding. The routing key is used for routing
        /// messages depending on the exchange configuration. Not all exchanges use a
        /// routing key - refer to the specific exchange documentation.
        public var routingKey: String

        /// noWait.
        public var noWait: Bool

        /// Arguments for binding.
        ///
        /// A set of arguments for the binding. The syntax and semantics of these arguments
        /// depends on the exchange class.
        public var arguments: FieldTable

        @inlinable
        public init(destination: String = "", source: String = "", routingKey: String = "", noWait: Bool = false, arguments: FieldTable = [:]) {
            self.destination = destination
            self.source = source
            self.routingKey = routingKey
            self.noWait = noWait
            self.arguments = arguments
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShort()
            self.destination = try buffer.readAMQPShortString()
            self.source = try buffer.readAMQPShortString()
            self.routingKey = try buffer.readAMQPShortString()
            let bits = try buffer.readAMQPOctet()
            self.noWait = bits & 1 != 0
            self.arguments = try buffer.readAMQPFieldTable()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(0 as UInt16)
            try buffer.writeAMQPShortString(self.destination)
            try buffer.writeAMQPShortString(self.source)
            try buffer.writeAMQPShortString(self.routingKey)
            buffer.writeInteger(self.noWait ? 1 : 0 as UInt8)
            try buffer.writeAMQPFieldTable(self.arguments)
        }
    }

    /// `exchange.bind-ok`: Confirm bind successful.
    ///
    /// This method confirms that the bind was successful.
    public struct BindOk: MethodPayload {
        public static let classID: UInt16 = 40
        public static let methodID: UInt16 = 31
        public static let name = "exchange.bind-ok"
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

    /// `exchange.unbind`: Unbind an exchange from an exchange.
    ///
    /// This method unbinds an exchange from an exchange.
    ///
    /// Rule 01: If a unbind fails, the server MUST raise a connection exception.
    public struct Unbind: MethodPayload {
        public static let classID: UInt16 = 40
        public static let methodID: UInt16 = 40
        public static let name = "exchange.unbind"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["exchange.unbind-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// destination.
        ///
        /// Specifies the name of the destination exchange to unbind.
        ///
        /// Rule must-exist (on failure: not-found): The client MUST NOT attempt to unbind
        /// an exchange that does not exist from an exchange.
        ///
        /// Rule default-exchange: The server MUST accept a blank exchange name to mean the
        /// default exchange.
        public var destination: String

        /// source.
        ///
        /// Specifies the name of the source exchange to unbind.
        ///
        /// Rule must-exist (on failure: not-found): The client MUST NOT attempt to unbind
        /// an exchange from an exchange that does not exist.
        ///
        /// Rule default-exchange: The server MUST accept a blank exchange name to mean the
        /// default exchange.
        public var source: String

        /// Routing key of binding.
        ///
        /// Specifies the routing key of the binding to unbind.
        public var routingKey: String

        /// noWait.
        public var noWait: Bool

        /// Arguments of binding.
        ///
        /// Specifies the arguments of the binding to unbind.
        public var arguments: FieldTable

        @inlinable
        public init(destination: String = "", source: String = "", routingKey: String = "", noWait: Bool = false, arguments: FieldTable = [:]) {
            self.destination = destination
            self.source = source
            self.routingKey = routingKey
            self.noWait = noWait
            self.arguments = arguments
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = try buffer.readAMQPShort()
            self.destination = try buffer.readAMQPShortString()
            self.source = try buffer.readAMQPShortString()
            self.routingKey = try buffer.readAMQPShortString()
            let bits = try buffer.readAMQPOctet()
            self.noWait = bits & 1 != 0
            self.arguments = try buffer.readAMQPFieldTable()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(0 as UInt16)
            try buffer.writeAMQPShortString(self.destination)
            try buffer.writeAMQPShortString(self.source)
            try buffer.writeAMQPShortString(self.routingKey)
            buffer.writeInteger(self.noWait ? 1 : 0 as UInt8)
            try buffer.writeAMQPFieldTable(self.arguments)
        }
    }

    /// `exchange.unbind-ok`: Confirm unbind successful.
    ///
    /// This method confirms that the unbind was successful.
    public struct UnbindOk: MethodPayload {
        public static let classID: UInt16 = 40
        public static let methodID: UInt16 = 51
        public static let name = "exchange.unbind-ok"
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
}
