import NIOCore

/// The frame types of AMQP 0-9-1.
public enum FrameType: UInt8, Sendable {
    case method = 1
    case header = 2
    case body = 3
    case heartbeat = 8
}

/// The content header frame: which class the content belongs to, its total body size
/// and the basic properties.
public struct ContentHeader: Sendable, Hashable {
    public var classID: UInt16
    public var bodySize: UInt64
    public var properties: BasicProperties

    public init(classID: UInt16 = AMQP.Basic.classID, bodySize: UInt64, properties: BasicProperties = BasicProperties()) {
        self.classID = classID
        self.bodySize = bodySize
        self.properties = properties
    }

    public init(from buffer: inout ByteBuffer) throws(ProtocolError) {
        self.classID = try buffer.readAMQPShort()
        guard self.classID == AMQP.Basic.classID else {
            throw ProtocolError(.malformedFrame, "content header for class \(self.classID); only basic (60) carries content")
        }
        _ = try buffer.readAMQPShort()  // weight, unused, must be zero
        self.bodySize = try buffer.readAMQPLongLong()
        self.properties = try BasicProperties(from: &buffer)
    }

    public func encode(into buffer: inout ByteBuffer) throws(ProtocolError) {
        buffer.writeInteger(self.classID)
        buffer.writeInteger(0 as UInt16)
        buffer.writeInteger(self.bodySize)
        try self.properties.encode(into: &buffer)
    }
}

/// One AMQP frame. Heartbeats always travel on channel 0.
public enum Frame: Sendable, Hashable {
    case method(channel: UInt16, AMQP.Method)
    case header(channel: UInt16, ContentHeader)
    case body(channel: UInt16, ByteBuffer)
    case heartbeat

    public var channel: UInt16 {
        switch self {
        case .method(let channel, _), .header(let channel, _), .body(let channel, _): return channel
        case .heartbeat: return 0
        }
    }
}

extension Frame {
    /// Decodes one frame's payload, given the type and channel of its header.
    @inlinable
    public init(type: UInt8, channel: UInt16, payload: inout ByteBuffer) throws(ProtocolError) {
        switch FrameType(rawValue: type) {
        case .method:
            self = .method(channel: channel, try AMQP.Method(from: &payload))
        case .header:
            self = .header(channel: channel, try ContentHeader(from: &payload))
        case .body:
            self = .body(channel: channel, payload)
            payload.moveReaderIndex(to: payload.writerIndex)
        case .heartbeat:
            guard channel == 0 else {
                throw ProtocolError(.malformedFrame, "heartbeat frame on channel \(channel)")
            }
            self = .heartbeat
        case .none:
            throw ProtocolError(.unknownFrameType, "unknown frame type \(type)")
        }
        guard payload.readableBytes == 0 else {
            throw ProtocolError(.malformedFrame, "\(payload.readableBytes) bytes left over in a frame of type \(type)")
        }
    }

    /// Appends the whole frame (header, payload, frame-end) to `buffer`.
    @inlinable
    public func encode(into buffer: inout ByteBuffer) throws(ProtocolError) {
        switch self {
        case .method(let channel, let method):
            try buffer.writeFrame(type: .method, channel: channel) { (payload: inout ByteBuffer) throws(ProtocolError) in
                try method.encode(into: &payload)
            }
        case .header(let channel, let header):
            try buffer.writeFrame(type: .header, channel: channel) { (payload: inout ByteBuffer) throws(ProtocolError) in
                try header.encode(into: &payload)
            }
        case .body(let channel, var body):
            buffer.writeInteger(FrameType.body.rawValue)
            buffer.writeInteger(channel)
            buffer.writeInteger(UInt32(truncatingIfNeeded: body.readableBytes))
            buffer.writeBuffer(&body)
            buffer.writeInteger(UInt8(FrameConstants.end))
        case .heartbeat:
            buffer.writeInteger(FrameType.heartbeat.rawValue)
            buffer.writeInteger(0 as UInt16)
            buffer.writeInteger(0 as UInt32)
            buffer.writeInteger(UInt8(FrameConstants.end))
        }
    }
}

extension ByteBuffer {
    /// Writes a frame whose payload size is known only after writing it: the size field
    /// is reserved and patched, so the payload is never built in a buffer of its own.
    @inlinable
    public mutating func writeFrame(
        type: FrameType,
        channel: UInt16,
        payload: (inout ByteBuffer) throws(ProtocolError) -> Void
    ) throws(ProtocolError) {
        self.writeInteger(type.rawValue)
        self.writeInteger(channel)
        let sizeIndex = self.writerIndex
        self.writeInteger(0 as UInt32)
        try payload(&self)
        self.setInteger(UInt32(truncatingIfNeeded: self.writerIndex - sizeIndex - 4), at: sizeIndex)
        self.writeInteger(UInt8(FrameConstants.end))
    }

    /// Writes a method frame.
    @inlinable
    public mutating func writeMethodFrame(channel: UInt16, _ method: AMQP.Method) throws(ProtocolError) {
        try self.writeFrame(type: .method, channel: channel) { (payload: inout ByteBuffer) throws(ProtocolError) in
            try method.encode(into: &payload)
        }
    }

    /// Writes a content-carrying method and its content: the method frame, the header
    /// frame and as many body frames as `frameMax` requires (none for an empty body).
    @inlinable
    public mutating func writeContent(
        channel: UInt16,
        method: AMQP.Method,
        properties: BasicProperties,
        body: ByteBuffer,
        frameMax: UInt32
    ) throws(ProtocolError) {
        try self.writeMethodFrame(channel: channel, method)
        let header = ContentHeader(bodySize: UInt64(body.readableBytes), properties: properties)
        try self.writeFrame(type: .header, channel: channel) { (payload: inout ByteBuffer) throws(ProtocolError) in
            try header.encode(into: &payload)
        }
        self.writeBodyFrames(channel: channel, body: body, frameMax: frameMax)
    }

    /// Splits a body into frames of at most `frameMax` bytes each (0 means no limit).
    /// A `frameMax` below the spec's minimum counts as the minimum: every peer accepts
    /// frames that small, and a value of 8 or less would otherwise leave no room for payload.
    @inlinable
    public mutating func writeBodyFrames(channel: UInt16, body: ByteBuffer, frameMax: UInt32) {
        let chunk = frameMax == 0
            ? Int(UInt32.max)
            : Int(Swift.max(frameMax, AMQP.frameMinSize)) - AMQP.frameOverhead
        var body = body
        while body.readableBytes > 0 {
            var piece = body.readSlice(length: Swift.min(chunk, body.readableBytes))!
            self.writeInteger(FrameType.body.rawValue)
            self.writeInteger(channel)
            self.writeInteger(UInt32(truncatingIfNeeded: piece.readableBytes))
            self.writeBuffer(&piece)
            self.writeInteger(UInt8(FrameConstants.end))
        }
    }
}
