import AMQPProtocol

/// A refusal of a client's request: a channel error closes the channel, a connection
/// error the whole connection; `replyCode` is what travels in the close method.
struct BrokerError: Error, Sendable, Hashable {
    enum Scope: Sendable, Hashable { case channel, connection }

    var scope: Scope
    var replyCode: UInt16
    var text: String

    /// `text` travels as a short string: cut to 255 bytes (on a character boundary) so a
    /// long queue name in it cannot make the close unencodable.
    init(scope: Scope, replyCode: UInt16, text: String) {
        self.scope = scope
        self.replyCode = replyCode
        var cut = text
        while cut.utf8.count > 255 { cut.removeLast() }
        self.text = cut
    }

    static func channel(_ replyCode: UInt16, _ text: String) -> BrokerError {
        BrokerError(scope: .channel, replyCode: replyCode, text: text)
    }

    static func connection(_ replyCode: UInt16, _ text: String) -> BrokerError {
        BrokerError(scope: .connection, replyCode: replyCode, text: text)
    }

    static func notFound(_ text: String) -> BrokerError { .channel(ReplyCode.notFound, "NOT_FOUND - \(text)") }
    static func accessRefused(_ text: String) -> BrokerError { .channel(ReplyCode.accessRefused, "ACCESS_REFUSED - \(text)") }
    static func preconditionFailed(_ text: String) -> BrokerError {
        .channel(ReplyCode.preconditionFailed, "PRECONDITION_FAILED - \(text)")
    }
    static func resourceLocked(_ text: String) -> BrokerError { .channel(ReplyCode.resourceLocked, "RESOURCE_LOCKED - \(text)") }
    static func notImplemented(_ text: String) -> BrokerError {
        .connection(ReplyCode.notImplemented, "NOT_IMPLEMENTED - \(text)")
    }
    static func commandInvalid(_ text: String) -> BrokerError { .connection(ReplyCode.commandInvalid, "COMMAND_INVALID - \(text)") }
    static func notAllowed(_ text: String) -> BrokerError { .connection(ReplyCode.notAllowed, "NOT_ALLOWED - \(text)") }
    static func channelError(_ text: String) -> BrokerError { .connection(ReplyCode.channelError, "CHANNEL_ERROR - \(text)") }
    static func unexpectedFrame(_ text: String) -> BrokerError {
        .connection(ReplyCode.unexpectedFrame, "UNEXPECTED_FRAME - \(text)")
    }
}
