// Generated from amqp0-9-1.extended.xml by scripts/generate-methods.py. Do not edit.
// The AMQP 0-9-1 specification and RabbitMQ's extensions, (c) the AMQP Working Group
// and Broadcom, are distributed under the BSD license quoted in the spec.

import NIOCore

extension AMQP {
    /// The `tx` class (id 90): Work with transactions.
    public enum Tx {
        public static let classID: UInt16 = 90
    }
}

extension AMQP.Tx {
    /// `tx.select`: Select standard transaction mode.
    ///
    /// This method sets the channel to use standard transactions. The client must use this
    /// method at least once on a channel before using the Commit or Rollback methods.
    public struct Select: MethodPayload {
        public static let classID: UInt16 = 90
        public static let methodID: UInt16 = 10
        public static let name = "tx.select"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["tx.select-ok"]
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
            _ = buffer
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = buffer
        }
    }

    /// `tx.select-ok`: Confirm transaction mode.
    ///
    /// This method confirms to the client that the channel was successfully set to use
    /// standard transactions.
    public struct SelectOk: MethodPayload {
        public static let classID: UInt16 = 90
        public static let methodID: UInt16 = 11
        public static let name = "tx.select-ok"
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

    /// `tx.commit`: Commit the current transaction.
    ///
    /// This method commits all message publications and acknowledgments performed in the
    /// current transaction. A new transaction starts immediately after a commit.
    ///
    /// Rule transacted (on failure: precondition-failed): The client MUST NOT use the
    /// Commit method on non-transacted channels.
    public struct Commit: MethodPayload {
        public static let classID: UInt16 = 90
        public static let methodID: UInt16 = 20
        public static let name = "tx.commit"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["tx.commit-ok"]
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
            _ = buffer
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = buffer
        }
    }

    /// `tx.commit-ok`: Confirm a successful commit.
    ///
    /// This method confirms to the client that the commit succeeded. Note that if a commit
    /// fails, the server raises a channel exception.
    public struct CommitOk: MethodPayload {
        public static let classID: UInt16 = 90
        public static let methodID: UInt16 = 21
        public static let name = "tx.commit-ok"
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

    /// `tx.rollback`: Abandon the current transaction.
    ///
    /// This method abandons all message publications and acknowledgments performed in the
    /// current transaction. A new transaction starts immediately after a rollback. Note
    /// that unacked messages will not be automatically redelivered by rollback; if that is
    /// required an explicit recover call should be issued.
    ///
    /// Rule transacted (on failure: precondition-failed): The client MUST NOT use the
    /// Rollback method on non-transacted channels.
    public struct Rollback: MethodPayload {
        public static let classID: UInt16 = 90
        public static let methodID: UInt16 = 30
        public static let name = "tx.rollback"
        public static let isSynchronous = true
        public static let hasContent = false
        /// Methods that answer this one, by name.
        public static let responses: [String] = ["tx.rollback-ok"]
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
            _ = buffer
        }

        /// Writes the arguments (everything after the class and method ids).
        @inlinable
        public func encodeArguments(into buffer: inout ByteBuffer) throws(ProtocolError) {
            _ = buffer
        }
    }

    /// `tx.rollback-ok`: Confirm successful rollback.
    ///
    /// This method confirms to the client that the rollback succeeded. Note that if an
    /// rollback fails, the server raises a channel exception.
    public struct RollbackOk: MethodPayload {
        public static let classID: UInt16 = 90
        public static let methodID: UInt16 = 31
        public static let name = "tx.rollback-ok"
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
