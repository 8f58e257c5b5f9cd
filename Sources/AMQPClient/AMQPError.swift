import AMQPProtocol

/// Every failure the client reports. `code` says what kind of failure it is; `replyCode`
/// is the AMQP reply code when the broker closed a channel or the connection (404 not
/// found, 405 resource locked, 403 access refused, …), with the class and method the
/// broker blamed.
public struct AMQPError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case connectionRefused, connectionClosed, channelClosed, authenticationFailed
            case timeout, protocolViolation, invalidURL, notConnected, messageNacked
            case channelLimitReached, invalidArgument, heartbeatTimeout, recoveryFailed
            case tlsFailed, consumerCancelled
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The TCP connection could not be established.
        public static let connectionRefused = Code(.connectionRefused)
        /// The connection was closed (by the broker, with `replyCode`, or by the network).
        public static let connectionClosed = Code(.connectionClosed)
        /// The channel was closed by the broker (see `replyCode`) or by the application.
        public static let channelClosed = Code(.channelClosed)
        /// The broker refused the credentials (403 ACCESS_REFUSED, or it dropped the socket
        /// during the handshake as brokers without `authentication_failure_close` do).
        public static let authenticationFailed = Code(.authenticationFailed)
        /// An operation (connect, a call waiting for recovery, …) took too long.
        public static let timeout = Code(.timeout)
        /// The broker sent something the protocol does not allow here.
        public static let protocolViolation = Code(.protocolViolation)
        /// TLS could not be set up (unreadable CA or certificate file) or its handshake
        /// failed (the broker's certificate is not trusted or does not name the host).
        public static let tlsFailed = Code(.tlsFailed)
        /// The connection URL could not be parsed.
        public static let invalidURL = Code(.invalidURL)
        /// The connection is down and recovering; the call was not sent.
        public static let notConnected = Code(.notConnected)
        /// The broker nacked a published message (publisher confirms).
        public static let messageNacked = Code(.messageNacked)
        /// Every channel number the broker allows is in use.
        public static let channelLimitReached = Code(.channelLimitReached)
        /// The application passed an argument the protocol cannot carry (a name over 255 bytes, …).
        public static let invalidArgument = Code(.invalidArgument)
        /// Nothing arrived from the broker for two heartbeat intervals.
        public static let heartbeatTimeout = Code(.heartbeatTimeout)
        /// Automatic recovery gave up.
        public static let recoveryFailed = Code(.recoveryFailed)
        /// The broker cancelled a consumer (`basic.cancel`: its queue was deleted or the
        /// node holding it went away) and it could not be resumed.
        public static let consumerCancelled = Code(.consumerCancelled)

        public var description: String { self.base.rawValue }
    }

    public var code: Code
    public var message: String
    /// The AMQP reply code when the broker closed a channel or the connection.
    public var replyCode: UInt16?
    /// The class and method the broker's close named as the cause (0 when it named none).
    public var classID: UInt16?
    public var methodID: UInt16?

    public init(_ code: Code, _ message: String, replyCode: UInt16? = nil, classID: UInt16? = nil, methodID: UInt16? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
        self.classID = classID
        self.methodID = methodID
    }

    public var description: String {
        var text = "\(self.code): \(self.message)"
        if let replyCode { text += " (reply code \(replyCode)" + (self.classID.map { c in ", method \(c).\(self.methodID ?? 0)" } ?? "") + ")" }
        return text
    }

    static func channelClosedByServer(_ close: AMQP.Channel.Close) -> AMQPError {
        AMQPError(.channelClosed, "channel closed by the broker: \(close.replyText)", replyCode: close.replyCode, classID: close.classId, methodID: close.methodId)
    }

    static func connectionClosedByServer(_ close: AMQP.Connection.Close) -> AMQPError {
        let code: Code = close.replyCode == ReplyCode.accessRefused && close.classId == AMQP.Connection.classID ? .authenticationFailed : .connectionClosed
        return AMQPError(code, "connection closed by the broker: \(close.replyText)", replyCode: close.replyCode, classID: close.classId, methodID: close.methodId)
    }

    static func protocolViolation(_ error: ProtocolError) -> AMQPError {
        AMQPError(.protocolViolation, error.description, replyCode: error.replyCode)
    }
}
