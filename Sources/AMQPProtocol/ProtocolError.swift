/// A malformed or unacceptable input on the wire. Every decoding failure is one of these,
/// never a crash; `replyCode` is the AMQP code a peer closes the connection with.
public struct ProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case truncated, malformedFrame, frameTooLarge, unknownFrameType, badFrameEnd
            case unknownMethod, invalidFieldValue, stringTooLong, nestingTooDeep
            case badProtocolHeader, unexpectedFrame, messageTooLarge
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A payload ended before a value it announced.
        public static let truncated = Code(.truncated)
        /// A frame whose structure is wrong (bad header flags, wrong channel for its type, …).
        public static let malformedFrame = Code(.malformedFrame)
        /// A frame larger than the negotiated `frame_max`.
        public static let frameTooLarge = Code(.frameTooLarge)
        /// A frame type other than method, header, body or heartbeat.
        public static let unknownFrameType = Code(.unknownFrameType)
        /// A frame that does not end in 0xCE.
        public static let badFrameEnd = Code(.badFrameEnd)
        /// A class/method id pair the specification does not define.
        public static let unknownMethod = Code(.unknownMethod)
        /// A field-table value tag that is not in RabbitMQ's errata.
        public static let invalidFieldValue = Code(.invalidFieldValue)
        /// A short string longer than 255 bytes (when encoding).
        public static let stringTooLong = Code(.stringTooLong)
        /// Field tables or arrays nested deeper than `FieldTable.maximumDepth`.
        public static let nestingTooDeep = Code(.nestingTooDeep)
        /// The first eight bytes were not `AMQP 0 0 9 1`.
        public static let badProtocolHeader = Code(.badProtocolHeader)
        /// A frame that is valid alone but not here (a body without a header, …).
        public static let unexpectedFrame = Code(.unexpectedFrame)
        /// A content body larger than the receiver accepts.
        public static let messageTooLarge = Code(.messageTooLarge)

        public var description: String { self.base.rawValue }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The AMQP reply code for closing the connection over this error.
    public var replyCode: UInt16 {
        switch self.code {
        case .frameTooLarge, .unknownFrameType, .badFrameEnd, .malformedFrame: return ReplyCode.frameError
        case .unknownMethod: return ReplyCode.notImplemented
        case .unexpectedFrame: return ReplyCode.unexpectedFrame
        case .messageTooLarge: return ReplyCode.preconditionFailed
        default: return ReplyCode.syntaxError
        }
    }

    public var description: String { "\(self.code): \(self.message)" }
}
