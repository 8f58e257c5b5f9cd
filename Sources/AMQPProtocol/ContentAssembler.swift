import NIOCore

/// A content-carrying method with its properties and whole body.
public struct Content<Method: Sendable & Hashable>: Sendable, Hashable {
    public var method: Method
    public var properties: BasicProperties
    public var body: ByteBuffer

    public init(method: Method, properties: BasicProperties, body: ByteBuffer) {
        self.method = method
        self.properties = properties
        self.body = body
    }
}

/// Reassembles content on one channel: a content method, then its header, then body
/// frames until the announced size is reached. Used by both roles.
///
/// A body that fits one frame is passed on as that frame's slice (no copy); a larger one
/// is gathered into a buffer that grows with what arrives, never with what was announced.
public struct ContentAssembler<Method: Sendable & Hashable>: Sendable {
    @usableFromInline
    enum State: Sendable {
        case idle
        case awaitingHeader(Method)
        case awaitingBody(Method, BasicProperties, remaining: UInt64, collected: ByteBuffer?)
    }

    @usableFromInline
    var state: State = .idle

    /// Bodies larger than this are refused with `.messageTooLarge`.
    public var maximumBodySize: UInt64

    public init(maximumBodySize: UInt64 = 128 * 1024 * 1024) {
        self.maximumBodySize = maximumBodySize
    }

    /// Whether a content method is waiting for its header or body.
    @inlinable
    public var isAssembling: Bool {
        if case .idle = self.state { return false }
        return true
    }

    /// A content method arrived; with an empty body the content completes at the header.
    @inlinable
    public mutating func methodReceived(_ method: Method) throws(ProtocolError) {
        guard case .idle = self.state else {
            throw ProtocolError(.unexpectedFrame, "method frame while content was expected")
        }
        self.state = .awaitingHeader(method)
    }

    @inlinable
    public mutating func headerReceived(_ header: ContentHeader) throws(ProtocolError) -> Content<Method>? {
        guard case .awaitingHeader(let method) = self.state else {
            throw ProtocolError(.unexpectedFrame, "content header without a content method")
        }
        guard header.bodySize <= self.maximumBodySize else {
            self.state = .idle
            throw ProtocolError(
                .messageTooLarge,
                "message body of \(header.bodySize) bytes exceeds the limit of \(self.maximumBodySize)"
            )
        }
        if header.bodySize == 0 {
            self.state = .idle
            return Content(method: method, properties: header.properties, body: ByteBuffer())
        }
        self.state = .awaitingBody(method, header.properties, remaining: header.bodySize, collected: nil)
        return nil
    }

    @inlinable
    public mutating func bodyReceived(_ body: ByteBuffer) throws(ProtocolError) -> Content<Method>? {
        guard case .awaitingBody(let method, let properties, let remaining, var collected) = self.state else {
            throw ProtocolError(.unexpectedFrame, "body frame without a content header")
        }
        let size = UInt64(body.readableBytes)
        guard size <= remaining else {
            self.state = .idle
            throw ProtocolError(.malformedFrame, "body frames exceed the size the content header announced")
        }
        if size == remaining, collected == nil {
            self.state = .idle
            return Content(method: method, properties: properties, body: body)
        }
        var body = body
        if collected == nil {
            collected = body
        } else {
            self.state = .idle  // drop the reference so the append does not copy on write
            collected!.writeBuffer(&body)
        }
        if size == remaining {
            self.state = .idle
            return Content(method: method, properties: properties, body: collected!)
        }
        self.state = .awaitingBody(method, properties, remaining: remaining - size, collected: collected)
        return nil
    }

    /// Forgets a partial content (on channel close).
    @inlinable
    public mutating func reset() {
        self.state = .idle
    }
}
