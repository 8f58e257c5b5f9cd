// Generated from amqp0-9-1.extended.xml by scripts/generate-methods.py. Do not edit.
// The AMQP 0-9-1 specification and RabbitMQ's extensions, (c) the AMQP Working Group
// and Broadcom, are distributed under the BSD license quoted in the spec.

import NIOCore

extension AMQP {
    /// The `channel` class (id 20): Work with channels.
    public enum Channel {
        public static let classID: UInt16 = 20
    }
}

extension AMQP.Channel {
    /// `channel.open`: Open a channel for use.
    ///
    /// This method opens a channel to the server.
    ///
    /// Rule state (on failure: channel-error): The client MUST NOT use this method on an
    /// already-opened channel.
    public struct Open: MethodPayload {
        public static let classID: UInt16 = 20
        public static let methodID: UInt16 = 10
        public static let name = "channel.open"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["channel.open-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = false

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

    /// `channel.open-ok`: Signal that the channel is ready.
    ///
    /// This method signals to the client that the channel is ready for use.
    public struct OpenOk: MethodPayload {
        public static let classID: UInt16 = 20
        public static let methodID: UInt16 = 11
        public static let name = "channel.open-ok"
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
            _ = try buffer.readAMQPLongBytes()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeAMQPLongBytes([])
        }
    }

    /// `channel.flow`: Enable/disable flow from peer.
    ///
    /// This method asks the peer to pause or restart the flow of content data sent by a
    /// consumer. This is a simple flow-control mechanism that a peer can use to avoid
    /// overflowing its queues or otherwise finding itself receiving more messages than it
    /// can process. Note that this method is not intended for window control. It does not
    /// affect contents returned by Basic.Get-Ok methods.
    ///
    /// Rule initial-state: When a new channel is opened, it is active (flow is active).
    /// Some applications assume that channels are inactive until started. To emulate this
    /// behaviour a client MAY open the channel, then pause it.
    ///
    /// Rule bidirectional: When sending content frames, a peer SHOULD monitor the channel
    /// for incoming methods and respond to a Channel.Flow as rapidly as possible.
    ///
    /// Rule throttling: A peer MAY use the Channel.Flow method to throttle incoming content
    /// data for internal reasons, for example, when exchanging data over a slower
    /// connection.
    ///
    /// Rule expected-behaviour: The peer that requests a Channel.Flow method MAY disconnect
    /// and/or ban a peer that does not respect the request. This is to prevent badly-
    /// behaved clients from overwhelming a server.
    public struct Flow: MethodPayload {
        public static let classID: UInt16 = 20
        public static let methodID: UInt16 = 20
        public static let name = "channel.flow"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["channel.flow-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// Start/stop content frames.
        ///
        /// If 1, the peer starts sending content frames. If 0, the peer stops sending
        /// content frames.
        public var active: Bool

        @inlinable
        public init(active: Bool = false) {
            self.active = active
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            let bits = try buffer.readAMQPOctet()
            self.active = bits & 1 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.active ? 1 : 0 as UInt8)
        }
    }

    /// `channel.flow-ok`: Confirm a flow method.
    ///
    /// Confirms to the peer that a flow command was received and processed.
    public struct FlowOk: MethodPayload {
        public static let classID: UInt16 = 20
        public static let methodID: UInt16 = 21
        public static let name = "channel.flow-ok"
        public static let isSynchronous = false
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// Current flow setting.
        ///
        /// Confirms the setting of the processed flow method: 1 means the peer will start
        /// sending or continue to send content frames; 0 means it will not.
        public var active: Bool

        @inlinable
        public init(active: Bool = false) {
            self.active = active
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            let bits = try buffer.readAMQPOctet()
            self.active = bits & 1 != 0
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.active ? 1 : 0 as UInt8)
        }
    }

    /// `channel.close`: Request a channel close.
    ///
    /// This method indicates that the sender wants to close the channel. This may be due to
    /// internal conditions (e.g. a forced shut-down) or due to an error handling a specific
    /// method, i.e. an exception. When a close is due to an exception, the sender provides
    /// the class and method id of the method which caused the exception.
    ///
    /// Rule stability: After sending this method, any received methods except Close and
    /// Close-OK MUST be discarded. The response to receiving a Close after sending Close
    /// must be to send Close-Ok.
    public struct Close: MethodPayload {
        public static let classID: UInt16 = 20
        public static let methodID: UInt16 = 40
        public static let name = "channel.close"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["channel.close-ok"]
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
        /// Whether a client must accept this method (the spec's client chassis).
        public static let sentToClient = true

        /// replyCode.
        public var replyCode: UInt16

        /// replyText.
        public var replyText: String

        /// Failing method class.
        ///
        /// When the close is provoked by a method exception, this is the class of the
        /// method.
        public var classId: UInt16

        /// Failing method ID.
        ///
        /// When the close is provoked by a method exception, this is the ID of the method.
        public var methodId: UInt16

        @inlinable
        public init(replyCode: UInt16 = 0, replyText: String = "", classId: UInt16 = 0, methodId: UInt16 = 0) {
            self.replyCode = replyCode
            self.replyText = replyText
            self.classId = classId
            self.methodId = methodId
        }

        /// Reads the arguments (everything after the class and method ids).
        @inlinable
        public init(arguments buffer: inout ByteBuffer) throws(ProtocolError) {
            self.replyCode = try buffer.readAMQPShort()
            self.replyText = try buffer.readAMQPShortString()
            self.classId = try buffer.readAMQPShort()
            self.methodId = try buffer.readAMQPShort()
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            buffer.writeInteger(self.replyCode as UInt16)
            try buffer.writeAMQPShortString(self.replyText)
            buffer.writeInteger(self.classId as UInt16)
            buffer.writeInteger(self.methodId as UInt16)
        }
    }

    /// `channel.close-ok`: Confirm a channel close.
    ///
    /// This method confirms a Channel.Close method and tells the recipient that it is safe
    /// to release resources for the channel.
    ///
    /// Rule reporting: A peer that detects a socket closure without having received a
    /// Channel.Close-Ok handshake method SHOULD log the error.
    public struct CloseOk: MethodPayload {
        public static let classID: UInt16 = 20
        public static let methodID: UInt16 = 41
        public static let name = "channel.close-ok"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = []
        /// Whether a server must accept this method (the spec's server chassis).
        public static let sentToServer = true
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
