// Generated from amqp0-9-1.extended.xml by scripts/generate-methods.py. Do not edit.
// The AMQP 0-9-1 specification and RabbitMQ's extensions, (c) the AMQP Working Group
// and Broadcom, are distributed under the BSD license quoted in the spec.

import NIOCore

/// The 14 properties of a `basic` content header, each optional; a set flag bit
/// in the header's property-flags word says the value is present.
public struct BasicProperties: Sendable, Hashable {
    /// MIME content type.
    public var contentType: String?
    /// MIME content encoding.
    public var contentEncoding: String?
    /// Message header field table.
    public var headers: FieldTable?
    /// Non-persistent (1) or persistent (2).
    public var deliveryMode: UInt8?
    /// Message priority, 0 to 9.
    public var priority: UInt8?
    /// Application correlation identifier.
    public var correlationId: String?
    /// Address to reply to.
    public var replyTo: String?
    /// Message expiration specification.
    public var expiration: String?
    /// Application message identifier.
    public var messageId: String?
    /// Message timestamp.
    public var timestamp: UInt64?
    /// Message type name.
    public var `type`: String?
    /// Creating user id.
    public var userId: String?
    /// Creating application id.
    public var appId: String?
    /// Reserved, must be empty.
    public var reserved: String?

    @inlinable
    public init(contentType: String? = nil, contentEncoding: String? = nil, headers: FieldTable? = nil, deliveryMode: UInt8? = nil, priority: UInt8? = nil, correlationId: String? = nil, replyTo: String? = nil, expiration: String? = nil, messageId: String? = nil, timestamp: UInt64? = nil, `type`: String? = nil, userId: String? = nil, appId: String? = nil, reserved: String? = nil) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.headers = headers
        self.deliveryMode = deliveryMode
        self.priority = priority
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.expiration = expiration
        self.messageId = messageId
        self.timestamp = timestamp
        self.`type` = `type`
        self.userId = userId
        self.appId = appId
        self.reserved = reserved
    }

    /// Whether no property is set (the common case on the hot path).
    public var isEmpty: Bool { self.contentType == nil && self.contentEncoding == nil && self.headers == nil && self.deliveryMode == nil && self.priority == nil && self.correlationId == nil && self.replyTo == nil && self.expiration == nil && self.messageId == nil && self.timestamp == nil && self.`type` == nil && self.userId == nil && self.appId == nil && self.reserved == nil }

    /// Reads the property-flags word(s) and the values they announce.
    @inlinable
    public init(from buffer: inout ByteBuffer) throws(ProtocolError) {
        let flags = try buffer.readAMQPShort()
        // Bit 0 announces another flags word; 0-9-1 defines only 14 properties, so any
        // further words can carry no property we know and must be all zero.
        var more = flags & 1 != 0
        while more {
            let next = try buffer.readAMQPShort()
            guard next & 0xFFFE == 0 else {
                throw ProtocolError(.malformedFrame, "content header announces unknown properties")
            }
            more = next & 1 != 0
        }
        self.init()
        if flags & 32768 != 0 { self.contentType = try buffer.readAMQPShortString() }
        if flags & 16384 != 0 { self.contentEncoding = try buffer.readAMQPShortString() }
        if flags & 8192 != 0 { self.headers = try buffer.readAMQPFieldTable() }
        if flags & 4096 != 0 { self.deliveryMode = try buffer.readAMQPOctet() }
        if flags & 2048 != 0 { self.priority = try buffer.readAMQPOctet() }
        if flags & 1024 != 0 { self.correlationId = try buffer.readAMQPShortString() }
        if flags & 512 != 0 { self.replyTo = try buffer.readAMQPShortString() }
        if flags & 256 != 0 { self.expiration = try buffer.readAMQPShortString() }
        if flags & 128 != 0 { self.messageId = try buffer.readAMQPShortString() }
        if flags & 64 != 0 { self.timestamp = try buffer.readAMQPLongLong() }
        if flags & 32 != 0 { self.`type` = try buffer.readAMQPShortString() }
        if flags & 16 != 0 { self.userId = try buffer.readAMQPShortString() }
        if flags & 8 != 0 { self.appId = try buffer.readAMQPShortString() }
        if flags & 4 != 0 { self.reserved = try buffer.readAMQPShortString() }
    }

    /// Writes the property-flags word and the values that are set.
    @inlinable
    public func encode(into buffer: inout ByteBuffer) throws(ProtocolError) {
        var flags: UInt16 = 0
        if self.contentType != nil { flags |= 32768 }
        if self.contentEncoding != nil { flags |= 16384 }
        if self.headers != nil { flags |= 8192 }
        if self.deliveryMode != nil { flags |= 4096 }
        if self.priority != nil { flags |= 2048 }
        if self.correlationId != nil { flags |= 1024 }
        if self.replyTo != nil { flags |= 512 }
        if self.expiration != nil { flags |= 256 }
        if self.messageId != nil { flags |= 128 }
        if self.timestamp != nil { flags |= 64 }
        if self.`type` != nil { flags |= 32 }
        if self.userId != nil { flags |= 16 }
        if self.appId != nil { flags |= 8 }
        if self.reserved != nil { flags |= 4 }
        buffer.writeInteger(flags)
        if let value = self.contentType { try buffer.writeAMQPShortString(value) }
        if let value = self.contentEncoding { try buffer.writeAMQPShortString(value) }
        if let value = self.headers { try buffer.writeAMQPFieldTable(value) }
        if let value = self.deliveryMode { buffer.writeInteger(value as UInt8) }
        if let value = self.priority { buffer.writeInteger(value as UInt8) }
        if let value = self.correlationId { try buffer.writeAMQPShortString(value) }
        if let value = self.replyTo { try buffer.writeAMQPShortString(value) }
        if let value = self.expiration { try buffer.writeAMQPShortString(value) }
        if let value = self.messageId { try buffer.writeAMQPShortString(value) }
        if let value = self.timestamp { buffer.writeInteger(value as UInt64) }
        if let value = self.`type` { try buffer.writeAMQPShortString(value) }
        if let value = self.userId { try buffer.writeAMQPShortString(value) }
        if let value = self.appId { try buffer.writeAMQPShortString(value) }
        if let value = self.reserved { try buffer.writeAMQPShortString(value) }
    }
}
