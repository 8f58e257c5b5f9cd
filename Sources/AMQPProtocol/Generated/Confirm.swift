// Generated from amqp0-9-1.extended.xml by scripts/generate-methods.py. Do not edit.
// The AMQP 0-9-1 specification and RabbitMQ's extensions, (c) the AMQP Working Group
// and Broadcom, are distributed under the BSD license quoted in the spec.

import NIOCore

extension AMQP {
    /// The `confirm` class (id 85): Work with confirms.
    public enum Confirm {
        public static let classID: UInt16 = 85
    }
}

extension AMQP.Confirm {
    /// `confirm.select`: confirm.select.
    ///
    /// This method sets the channel to use publisher acknowledgements. The client can only
    /// use this method on a non-transactional channel.
    public struct Select: MethodPayload {
        public static let classID: UInt16 = 85
        public static let methodID: UInt16 = 10
        public static let name = "confirm.select"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["confirm.select-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

        /// nowait.
        public var nowait: Bool

        @inlinable
        public init(nowait: Bool = false) {
            self.nowait = nowait
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            let bits = try buffer.readAMQPOctet()
            self.nowait = bits & 1 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.nowait ? 1 : 0 as UInt8)
        }
    }

    /// `confirm.select-ok`: confirm.select-ok.
    ///
    /// This method confirms to the client that the channel was successfully set to use
    /// publisher acknowledgements.
    public struct SelectOk: MethodPayload {
        public static let classID: UInt16 = 85
        public static let methodID: UInt16 = 11
        public static let name = "confirm.select-ok"
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
