import NIOCore

/// Decodes frames, length first: it reads type, channel and size, refuses a size above
/// the negotiated `frame_max` before waiting for (or allocating) the payload, takes the
/// payload as a slice and insists it ends in 0xCE.
public struct FrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = Frame

    /// Largest frame accepted, header and frame-end included; 0 means no limit (a peer
    /// that negotiated frame_max 0). Until tuning it is the spec's frame-min-size, raised
    /// by the connection to what tune/tune-ok settle.
    public var maximumFrameSize: UInt32

    public init(maximumFrameSize: UInt32 = 131_072) {
        self.maximumFrameSize = maximumFrameSize
    }

    @inlinable
    public mutating func decode(buffer: inout ByteBuffer) throws -> Frame? {
        try self.decodeFrame(buffer: &buffer)
    }

    @inlinable
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> Frame? {
        try self.decodeFrame(buffer: &buffer)
    }

    /// The typed-throws core, usable without a pipeline handler.
    @inlinable
    public func decodeFrame(buffer: inout ByteBuffer) throws(ProtocolError) -> Frame? {
        guard buffer.readableBytes >= 7 else { return nil }
        let start = buffer.readerIndex
        let type = buffer.getInteger(at: start, as: UInt8.self)!
        let channel = buffer.getInteger(at: start + 1, as: UInt16.self)!
        let size = buffer.getInteger(at: start + 3, as: UInt32.self)!
        if self.maximumFrameSize != 0, UInt64(size) + UInt64(AMQP.frameOverhead) > UInt64(self.maximumFrameSize) {
            throw ProtocolError(
                .frameTooLarge,
                "frame of \(UInt64(size) + UInt64(AMQP.frameOverhead)) bytes exceeds frame_max \(self.maximumFrameSize)"
            )
        }
        let total = Int(size) + AMQP.frameOverhead
        guard buffer.readableBytes >= total else { return nil }
        let end = buffer.getInteger(at: start + total - 1, as: UInt8.self)!
        guard end == UInt8(FrameConstants.end) else {
            throw ProtocolError(.badFrameEnd, "frame does not end in 0xCE (found 0x\(String(end, radix: 16)))")
        }
        var payload = buffer.getSlice(at: start + 7, length: Int(size))!
        buffer.moveReaderIndex(forwardBy: total)
        return try Frame(type: type, channel: channel, payload: &payload)
    }
}

/// The outcome of reading the 8-byte protocol header a client opens with.
public enum ProtocolHeaderCheck: Sendable, Hashable {
    /// Fewer than 8 bytes so far.
    case needMoreData
    /// `AMQP 0 0 9 1`; the bytes were consumed.
    case accepted
    /// Anything else: the server answers with its own header and closes.
    case rejected
}

extension ByteBuffer {
    /// Checks (and on success consumes) the client's protocol header.
    public mutating func readAMQPProtocolHeader() -> ProtocolHeaderCheck {
        let available = Swift.min(self.readableBytes, AMQP.protocolHeader.count)
        guard let prefix = self.getBytes(at: self.readerIndex, length: available) else { return .needMoreData }
        guard prefix.elementsEqual(AMQP.protocolHeader.prefix(available)) else { return .rejected }
        guard available == AMQP.protocolHeader.count else { return .needMoreData }
        self.moveReaderIndex(forwardBy: available)
        return .accepted
    }
}
