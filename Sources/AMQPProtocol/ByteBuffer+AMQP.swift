import NIOCore

// Primitive readers and writers of the AMQP wire types. Readers never trap: a short
// buffer becomes `ProtocolError.truncated`, and lengths are checked against what is
// actually there before anything is allocated.

extension ByteBuffer {
    @inlinable
    public mutating func readAMQPOctet() throws(ProtocolError) -> UInt8 {
        guard let value = self.readInteger(as: UInt8.self) else { throw .truncated("octet") }
        return value
    }

    @inlinable
    public mutating func readAMQPShort() throws(ProtocolError) -> UInt16 {
        guard let value = self.readInteger(as: UInt16.self) else { throw .truncated("short") }
        return value
    }

    @inlinable
    public mutating func readAMQPLong() throws(ProtocolError) -> UInt32 {
        guard let value = self.readInteger(as: UInt32.self) else { throw .truncated("long") }
        return value
    }

    @inlinable
    public mutating func readAMQPLongLong() throws(ProtocolError) -> UInt64 {
        guard let value = self.readInteger(as: UInt64.self) else { throw .truncated("long long") }
        return value
    }

    /// A short string: one length octet, then that many bytes (UTF-8 expected; invalid
    /// sequences are replaced rather than rejected, as other brokers treat them as bytes).
    @inlinable
    public mutating func readAMQPShortString() throws(ProtocolError) -> String {
        let length = Int(try self.readAMQPOctet())
        guard let value = self.readString(length: length) else { throw .truncated("short string") }
        return value
    }

    @inlinable
    public mutating func writeAMQPShortString(_ value: String) throws(ProtocolError) {
        let length = value.utf8.count
        guard length <= 255 else {
            throw ProtocolError(.stringTooLong, "short string of \(length) bytes exceeds 255")
        }
        self.writeInteger(UInt8(length))
        self.writeString(value)
    }

    /// A long string as bytes: a 32-bit length, then that many bytes.
    @inlinable
    public mutating func readAMQPLongBytes() throws(ProtocolError) -> [UInt8] {
        let length = Int(try self.readAMQPLong())
        guard length <= self.readableBytes, let bytes = self.readBytes(length: length) else {
            throw .truncated("long string")
        }
        return bytes
    }

    @inlinable
    public mutating func writeAMQPLongBytes(_ value: [UInt8]) {
        self.writeInteger(UInt32(truncatingIfNeeded: value.count))
        self.writeBytes(value)
    }

    /// Reads a 32-bit length and returns that many bytes as a slice, without copying.
    @inlinable
    mutating func readAMQPLengthPrefixedSlice(_ what: StaticString) throws(ProtocolError) -> ByteBuffer {
        let length = Int(try self.readAMQPLong())
        guard length <= self.readableBytes, let slice = self.readSlice(length: length) else {
            throw .truncated("\(what)")
        }
        return slice
    }
}

extension ProtocolError {
    @inlinable
    static func truncated(_ what: String) -> ProtocolError {
        ProtocolError(.truncated, "payload ends inside a \(what)")
    }
}
