import NIOCore

/// A decimal value of a field table: `value` × 10^-`scale`.
public struct AMQPDecimal: Sendable, Hashable {
    public var scale: UInt8
    public var value: Int32

    public init(scale: UInt8, value: Int32) {
        self.scale = scale
        self.value = value
    }
}

/// A value in a field table or field array, with the type tags of RabbitMQ's errata
/// (which every real client and broker follows, not the printed 0-9-1 grammar).
public indirect enum FieldValue: Sendable, Hashable {
    case bool(Bool)            // t
    case int8(Int8)            // b
    case uint8(UInt8)          // B
    case int16(Int16)          // s
    case uint16(UInt16)        // u
    case int32(Int32)          // I
    case uint32(UInt32)        // i
    case int64(Int64)          // l
    case float(Float)          // f
    case double(Double)        // d
    case decimal(AMQPDecimal)  // D
    /// A long string (S). Decoded as UTF-8; bytes that are not valid UTF-8 come back as `.bytes`.
    case string(String)        // S
    case array([FieldValue])   // A
    case timestamp(UInt64)     // T, seconds since the epoch
    case table(FieldTable)     // F
    case void                  // V
    case bytes([UInt8])        // x

    /// The value as a string, if it is one (`S`, or `x` holding UTF-8).
    public var stringValue: String? {
        switch self {
        case .string(let s): return s
        case .bytes(let b): return String(validating: b, as: UTF8.self)
        default: return nil
        }
    }

    /// The value as a signed integer, if it is any integer type that fits.
    public var integerValue: Int64? {
        switch self {
        case .int8(let v): return Int64(v)
        case .uint8(let v): return Int64(v)
        case .int16(let v): return Int64(v)
        case .uint16(let v): return Int64(v)
        case .int32(let v): return Int64(v)
        case .uint32(let v): return Int64(v)
        case .int64(let v): return v
        case .timestamp(let v): return Int64(exactly: v)
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }
}

extension FieldValue {
    // Floats compare by bit pattern, not by IEEE equality: a value read off the wire must
    // equal itself (NaN included) and keep its sign of zero, or a message carrying a NaN
    // header would never equal its own round trip.
    public static func == (lhs: FieldValue, rhs: FieldValue) -> Bool {
        switch (lhs, rhs) {
        case (.bool(let a), .bool(let b)): return a == b
        case (.int8(let a), .int8(let b)): return a == b
        case (.uint8(let a), .uint8(let b)): return a == b
        case (.int16(let a), .int16(let b)): return a == b
        case (.uint16(let a), .uint16(let b)): return a == b
        case (.int32(let a), .int32(let b)): return a == b
        case (.uint32(let a), .uint32(let b)): return a == b
        case (.int64(let a), .int64(let b)): return a == b
        case (.float(let a), .float(let b)): return a.bitPattern == b.bitPattern
        case (.double(let a), .double(let b)): return a.bitPattern == b.bitPattern
        case (.decimal(let a), .decimal(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.timestamp(let a), .timestamp(let b)): return a == b
        case (.table(let a), .table(let b)): return a == b
        case (.void, .void): return true
        case (.bytes(let a), .bytes(let b)): return a == b
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .bool(let v): hasher.combine(0 as UInt8); hasher.combine(v)
        case .int8(let v): hasher.combine(1 as UInt8); hasher.combine(v)
        case .uint8(let v): hasher.combine(2 as UInt8); hasher.combine(v)
        case .int16(let v): hasher.combine(3 as UInt8); hasher.combine(v)
        case .uint16(let v): hasher.combine(4 as UInt8); hasher.combine(v)
        case .int32(let v): hasher.combine(5 as UInt8); hasher.combine(v)
        case .uint32(let v): hasher.combine(6 as UInt8); hasher.combine(v)
        case .int64(let v): hasher.combine(7 as UInt8); hasher.combine(v)
        case .float(let v): hasher.combine(8 as UInt8); hasher.combine(v.bitPattern)
        case .double(let v): hasher.combine(9 as UInt8); hasher.combine(v.bitPattern)
        case .decimal(let v): hasher.combine(10 as UInt8); hasher.combine(v)
        case .string(let v): hasher.combine(11 as UInt8); hasher.combine(v)
        case .array(let v): hasher.combine(12 as UInt8); hasher.combine(v)
        case .timestamp(let v): hasher.combine(13 as UInt8); hasher.combine(v)
        case .table(let v): hasher.combine(14 as UInt8); hasher.combine(v)
        case .void: hasher.combine(15 as UInt8)
        case .bytes(let v): hasher.combine(16 as UInt8); hasher.combine(v)
        }
    }
}

/// An AMQP field table: string keys (short strings) to typed values.
public struct FieldTable: Sendable, Hashable, ExpressibleByDictionaryLiteral, Sequence {
    /// Tables and arrays nest at most this deep; deeper input is refused rather than
    /// recursed into, so a hostile frame cannot exhaust the stack.
    public static let maximumDepth = 64

    public var storage: [String: FieldValue]

    public init(_ storage: [String: FieldValue] = [:]) {
        self.storage = storage
    }

    public init(dictionaryLiteral elements: (String, FieldValue)...) {
        self.storage = Dictionary(elements, uniquingKeysWith: { _, last in last })
    }

    public subscript(key: String) -> FieldValue? {
        get { self.storage[key] }
        set { self.storage[key] = newValue }
    }

    public var isEmpty: Bool { self.storage.isEmpty }
    public var count: Int { self.storage.count }
    public var keys: Dictionary<String, FieldValue>.Keys { self.storage.keys }

    public func makeIterator() -> Dictionary<String, FieldValue>.Iterator {
        self.storage.makeIterator()
    }
}

extension ByteBuffer {
    /// Reads a field table: a 32-bit byte length, then (short-string key, tagged value) pairs.
    @inlinable
    public mutating func readAMQPFieldTable() throws(ProtocolError) -> FieldTable {
        try self.readAMQPFieldTable(depth: 0)
    }

    @usableFromInline
    mutating func readAMQPFieldTable(depth: Int) throws(ProtocolError) -> FieldTable {
        var slice = try self.readAMQPLengthPrefixedSlice("field table")
        return try slice.readFieldTableBody(depth: depth)
    }

    /// Reads the pairs of a table from a buffer holding exactly them (AMQPLAIN responses
    /// carry a table without its length prefix).
    public mutating func readFieldTableBody(depth: Int = 0) throws(ProtocolError) -> FieldTable {
        guard depth < FieldTable.maximumDepth else {
            throw ProtocolError(.nestingTooDeep, "field tables nested deeper than \(FieldTable.maximumDepth)")
        }
        var table: [String: FieldValue] = [:]
        while self.readableBytes > 0 {
            let key = try self.readAMQPShortString()
            table[key] = try self.readFieldValue(depth: depth + 1)
        }
        return FieldTable(table)
    }

    mutating func readFieldValue(depth: Int) throws(ProtocolError) -> FieldValue {
        let tag = try self.readAMQPOctet()
        switch tag {
        case UInt8(ascii: "t"): return .bool(try self.readAMQPOctet() != 0)
        case UInt8(ascii: "b"): return .int8(Int8(bitPattern: try self.readAMQPOctet()))
        case UInt8(ascii: "B"): return .uint8(try self.readAMQPOctet())
        case UInt8(ascii: "s"): return .int16(Int16(bitPattern: try self.readAMQPShort()))
        case UInt8(ascii: "u"): return .uint16(try self.readAMQPShort())
        case UInt8(ascii: "I"): return .int32(Int32(bitPattern: try self.readAMQPLong()))
        case UInt8(ascii: "i"): return .uint32(try self.readAMQPLong())
        case UInt8(ascii: "l"): return .int64(Int64(bitPattern: try self.readAMQPLongLong()))
        case UInt8(ascii: "f"): return .float(Float(bitPattern: try self.readAMQPLong()))
        case UInt8(ascii: "d"): return .double(Double(bitPattern: try self.readAMQPLongLong()))
        case UInt8(ascii: "D"):
            let scale = try self.readAMQPOctet()
            return .decimal(AMQPDecimal(scale: scale, value: Int32(bitPattern: try self.readAMQPLong())))
        case UInt8(ascii: "S"):
            let bytes = try self.readAMQPLongBytes()
            if let string = String(validating: bytes, as: UTF8.self) { return .string(string) }
            return .bytes(bytes)
        case UInt8(ascii: "x"): return .bytes(try self.readAMQPLongBytes())
        case UInt8(ascii: "A"):
            guard depth < FieldTable.maximumDepth else {
                throw ProtocolError(.nestingTooDeep, "field arrays nested deeper than \(FieldTable.maximumDepth)")
            }
            var slice = try self.readAMQPLengthPrefixedSlice("field array")
            var values: [FieldValue] = []
            while slice.readableBytes > 0 {
                values.append(try slice.readFieldValue(depth: depth + 1))
            }
            return .array(values)
        case UInt8(ascii: "T"): return .timestamp(try self.readAMQPLongLong())
        case UInt8(ascii: "F"): return .table(try self.readAMQPFieldTable(depth: depth))
        case UInt8(ascii: "V"): return .void
        default:
            throw ProtocolError(.invalidFieldValue, "unknown field value type 0x\(String(tag, radix: 16))")
        }
    }

    /// Writes a field table with its 32-bit length prefix.
    @inlinable
    public mutating func writeAMQPFieldTable(_ table: FieldTable) throws(ProtocolError) {
        if table.isEmpty {
            self.writeInteger(0 as UInt32)
            return
        }
        try self.writeLengthPrefixed { (buffer: inout ByteBuffer) throws(ProtocolError) in
            try buffer.writeFieldTableBody(table)
        }
    }

    /// Writes the pairs of a table without a length prefix.
    public mutating func writeFieldTableBody(_ table: FieldTable) throws(ProtocolError) {
        for (key, value) in table.storage {
            try self.writeAMQPShortString(key)
            try self.writeFieldValue(value)
        }
    }

    @usableFromInline
    mutating func writeLengthPrefixed(
        _ body: (inout ByteBuffer) throws(ProtocolError) -> Void
    ) throws(ProtocolError) {
        let lengthIndex = self.writerIndex
        self.writeInteger(0 as UInt32)
        try body(&self)
        let length = self.writerIndex - lengthIndex - 4
        self.setInteger(UInt32(truncatingIfNeeded: length), at: lengthIndex)
    }

    mutating func writeFieldValue(_ value: FieldValue) throws(ProtocolError) {
        func tag(_ character: Unicode.Scalar) -> UInt8 { UInt8(ascii: character) }
        switch value {
        case .bool(let v): self.writeInteger(tag("t")); self.writeInteger(v ? 1 : 0 as UInt8)
        case .int8(let v): self.writeInteger(tag("b")); self.writeInteger(v)
        case .uint8(let v): self.writeInteger(tag("B")); self.writeInteger(v)
        case .int16(let v): self.writeInteger(tag("s")); self.writeInteger(v)
        case .uint16(let v): self.writeInteger(tag("u")); self.writeInteger(v)
        case .int32(let v): self.writeInteger(tag("I")); self.writeInteger(v)
        case .uint32(let v): self.writeInteger(tag("i")); self.writeInteger(v)
        case .int64(let v): self.writeInteger(tag("l")); self.writeInteger(v)
        case .float(let v): self.writeInteger(tag("f")); self.writeInteger(v.bitPattern)
        case .double(let v): self.writeInteger(tag("d")); self.writeInteger(v.bitPattern)
        case .decimal(let v): self.writeInteger(tag("D")); self.writeInteger(v.scale); self.writeInteger(v.value)
        case .string(let v):
            self.writeInteger(tag("S"))
            self.writeInteger(UInt32(truncatingIfNeeded: v.utf8.count))
            self.writeString(v)
        case .array(let values):
            self.writeInteger(tag("A"))
            try self.writeLengthPrefixed { (buffer: inout ByteBuffer) throws(ProtocolError) in
                for element in values { try buffer.writeFieldValue(element) }
            }
        case .timestamp(let v): self.writeInteger(tag("T")); self.writeInteger(v)
        case .table(let t): self.writeInteger(tag("F")); try self.writeAMQPFieldTable(t)
        case .void: self.writeInteger(tag("V"))
        case .bytes(let v): self.writeInteger(tag("x")); self.writeAMQPLongBytes(v)
        }
    }
}
