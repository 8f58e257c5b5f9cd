import AMQPProtocol
import NIOCore
import Testing

@Suite("Field tables")
struct FieldTableTests {
    /// Every value type of RabbitMQ's errata, with its exact encoding (tag then value).
    static let valueEncodings: [(FieldValue, String)] = [
        (.bool(true), "74 01"),
        (.bool(false), "74 00"),
        (.int8(-1), "62 ff"),
        (.uint8(255), "42 ff"),
        (.int16(-2), "73 fffe"),
        (.uint16(65534), "75 fffe"),
        (.int32(-3), "49 fffffffd"),
        (.uint32(4_294_967_293), "69 fffffffd"),
        (.int64(-4), "6c fffffffffffffffc"),
        (.float(1.5), "66 3fc00000"),
        (.double(-1.5), "64 bff8000000000000"),
        (.decimal(AMQPDecimal(scale: 2, value: 314)), "44 02 0000013a"),
        (.string("hé"), "53 00000003 68c3a9"),
        (.array([.int8(1), .void]), "41 00000003 6201 56"),
        (.timestamp(1_700_000_000), "54 000000006553f100"),
        (.table(["n": .bool(true)]), "46 00000004 016e 7401"),
        (.void, "56"),
        (.bytes([0, 0xff]), "78 00000002 00ff"),
    ]

    @Test("each value type encodes to the errata's bytes and decodes back")
    func everyValueType() throws {
        for (value, valueHex) in Self.valueEncodings {
            let valueBytes = bytes(valueHex)
            let entry = [1, UInt8(ascii: "k")] + valueBytes
            let expected = bytes(String(UInt32(entry.count), radix: 16).leftPad8()) + entry
            var buffer = ByteBuffer()
            try buffer.writeAMQPFieldTable(["k": value])
            #expect(Array(buffer.readableBytesView) == expected, "\(value)")
            #expect(try buffer.readAMQPFieldTable() == ["k": value])
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test("a table encoded by pika decodes to the same values")
    func pikaTable() throws {
        // pika.data.encode_table of {'s': 'hello', 'x': b'\x00\xff', 't': True, 'f': False,
        // 'I': -5, 'l': 2**40, 'D': Decimal('3.14'), 'T': datetime(2023,11,14,22,13,20),
        // 'F': {'n': {'deep': [1, 'a', None]}}, 'A': [1, [2, []], {}], 'V': None}
        var wire = hexBuffer("""
            000000890173530000000568656c6c6f0178780000000200ff0174740101667400014949fffffffb016c6c00000100
            00000000014444020000013a015454000000006553f1000146460000001d016e46000000160464656570410000000c
            490000000153000000016156014141000000194900000001410000000a490000000241000000004600000000015656
            """)
        let expected: FieldTable = [
            "s": .string("hello"), "x": .bytes([0, 0xff]), "t": .bool(true), "f": .bool(false),
            "I": .int32(-5), "l": .int64(1 << 40), "D": .decimal(AMQPDecimal(scale: 2, value: 314)),
            "T": .timestamp(1_700_000_000),
            "F": .table(["n": .table(["deep": .array([.int32(1), .string("a"), .void])])]),
            "A": .array([.int32(1), .array([.int32(2), .array([])]), .table([:])]),
            "V": .void,
        ]
        let table = try wire.readAMQPFieldTable()
        #expect(table == expected)
        #expect(wire.readableBytes == 0)
        // And what we encode decodes to the same (key order may differ from pika's).
        var ours = ByteBuffer()
        try ours.writeAMQPFieldTable(expected)
        #expect(ours.readableBytes == 0x89 + 4)
        #expect(try ours.readAMQPFieldTable() == expected)
    }

    @Test("single-entry tables match pika byte for byte")
    func pikaSingleEntries() throws {
        var string = ByteBuffer()
        try string.writeAMQPFieldTable(["k": .string("v")])
        #expect(hex(string) == "00000008016b530000000176")
        var decimal = ByteBuffer()
        try decimal.writeAMQPFieldTable(["D": .decimal(AMQPDecimal(scale: 1, value: -15))])  // Decimal('-1.5')
        #expect(hex(decimal) == "0000000801444401fffffff1")
    }

    @Test("float and double keep their exact bits, NaN and signed zero included")
    func floats() throws {
        let values: [FieldValue] = [
            .float(.nan), .float(-0.0), .float(.infinity), .float(.leastNonzeroMagnitude),
            .double(.nan), .double(-0.0), .double(-.infinity), .double(.pi),
        ]
        for value in values {
            var buffer = ByteBuffer()
            try buffer.writeAMQPFieldTable(["v": value])
            let decoded = try buffer.readAMQPFieldTable()["v"]
            #expect(decoded == value, "\(value)")
            switch (decoded, value) {
            case (.float(let a), .float(let b)): #expect(a.bitPattern == b.bitPattern)
            case (.double(let a), .double(let b)): #expect(a.bitPattern == b.bitPattern)
            default: Issue.record("decoded \(String(describing: decoded)) for \(value)")
            }
        }
        // Equal values hash equally, so tables can be used as dictionary keys and in sets.
        #expect(Set([FieldValue.double(.nan), .double(.nan)]).count == 1)
        #expect(FieldValue.float(0.0) != .float(-0.0))
    }

    @Test("an empty table is four zero bytes")
    func emptyTable() throws {
        var buffer = ByteBuffer()
        try buffer.writeAMQPFieldTable([:])
        #expect(hex(buffer) == "00000000")
        #expect(try buffer.readAMQPFieldTable().isEmpty)
    }

    @Test("long strings that are not UTF-8 come back as bytes")
    func nonUTF8LongString() throws {
        var buffer = hexBuffer("00000009 016b 53 00000002 c328")
        #expect(try buffer.readAMQPFieldTable() == ["k": .bytes([0xC3, 0x28])])
    }

    @Test("value helpers")
    func helpers() {
        #expect(FieldValue.string("a").stringValue == "a")
        #expect(FieldValue.bytes(Array("b".utf8)).stringValue == "b")
        #expect(FieldValue.int32(1).stringValue == nil)
        #expect(FieldValue.uint32(7).integerValue == 7)
        #expect(FieldValue.timestamp(.max).integerValue == nil)
        #expect(FieldValue.bool(true).boolValue == true)
    }

    // MARK: Malformed input

    @Test("a table length larger than what follows is truncated, and nothing is allocated for it")
    func tableLengthBeyondPayload() {
        var short = hexBuffer("00000010 016b 7401")
        #expect(protocolError { _ = try short.readAMQPFieldTable() }?.code == .truncated)
        var huge = hexBuffer("ffffffff 016b 7401")
        #expect(protocolError { _ = try huge.readAMQPFieldTable() }?.code == .truncated)
        var longString = hexBuffer("0000000a 016b 53 ffffffff 41")
        #expect(protocolError { _ = try longString.readAMQPFieldTable() }?.code == .truncated)
        var array = hexBuffer("0000000a 016b 41 7fffffff 56")
        #expect(protocolError { _ = try array.readAMQPFieldTable() }?.code == .truncated)
    }

    @Test("a value cut short inside its table is truncated")
    func valueCutShort() {
        // The table claims 4 bytes: key "k" and tag I, but the int32 needs 4 more.
        var buffer = hexBuffer("00000003 016b 49 00000001")
        #expect(protocolError { _ = try buffer.readAMQPFieldTable() }?.code == .truncated)
        // A key length running past the table.
        var key = hexBuffer("00000002 05 6b")
        #expect(protocolError { _ = try key.readAMQPFieldTable() }?.code == .truncated)
    }

    @Test("unknown value tags are refused", arguments: ["U", "c", "L", "z", "\u{0}"])
    func unknownTags(_ tag: String) {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(4))
        buffer.writeBytes([1, UInt8(ascii: "k"), UInt8(tag.utf8.first!), 0])
        let error = protocolError { _ = try buffer.readAMQPFieldTable() }
        #expect(error?.code == .invalidFieldValue)
        #expect(error?.replyCode == ReplyCode.syntaxError)
    }

    /// A table whose single entry "k" holds a table, `levels` deep.
    static func nestedTables(levels: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        for level in 0..<levels {
            buffer.writeInteger(UInt32(7 * (levels - level)))
            buffer.writeBytes([1, UInt8(ascii: "k"), UInt8(ascii: "F")])
        }
        buffer.writeInteger(UInt32(0))
        return buffer
    }

    /// A table whose entry "k" holds an array holding an array …, `levels` deep.
    static func nestedArrays(levels: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(2 + 5 * levels))
        buffer.writeBytes([1, UInt8(ascii: "k")])
        for level in 0..<levels {
            buffer.writeInteger(UInt8(ascii: "A"))
            buffer.writeInteger(UInt32(5 * (levels - level - 1)))
        }
        return buffer
    }

    @Test("tables nested up to the limit decode; deeper ones are refused, not recursed into")
    func nestingDepth() throws {
        var ok = Self.nestedTables(levels: FieldTable.maximumDepth - 1)
        var table = try ok.readAMQPFieldTable()
        var depth = 0
        while case .table(let inner)? = table["k"] {
            table = inner
            depth += 1
        }
        #expect(depth == FieldTable.maximumDepth - 1)

        for levels in [FieldTable.maximumDepth, FieldTable.maximumDepth + 1, 100_000] {
            var tooDeep = Self.nestedTables(levels: levels)
            let error = protocolError { _ = try tooDeep.readAMQPFieldTable() }
            #expect(error?.code == .nestingTooDeep, "\(levels) levels")
            #expect(error?.replyCode == ReplyCode.syntaxError)
        }
    }

    @Test("arrays nested too deep are refused as well")
    func arrayNestingDepth() throws {
        var ok = Self.nestedArrays(levels: 10)
        #expect(try ok.readAMQPFieldTable()["k"] != nil)
        for levels in [FieldTable.maximumDepth + 1, 100_000] {
            var tooDeep = Self.nestedArrays(levels: levels)
            #expect(protocolError { _ = try tooDeep.readAMQPFieldTable() }?.code == .nestingTooDeep)
        }
    }

    @Test("a key longer than 255 bytes is refused when encoding")
    func longKey() {
        var buffer = ByteBuffer()
        let error = protocolError { try buffer.writeAMQPFieldTable([String(repeating: "k", count: 256): .void]) }
        #expect(error?.code == .stringTooLong)
    }
}

extension String {
    fileprivate func leftPad8() -> String {
        String(repeating: "0", count: Swift.max(0, 8 - self.count)) + self
    }
}
