import AMQPProtocol
import NIOCore
import Testing

@Suite("Basic properties and content headers")
struct BasicPropertiesTests {
    static let everything = BasicProperties(
        contentType: "text/plain", contentEncoding: "gzip", headers: ["a": .int32(1)], deliveryMode: 2,
        priority: 5, correlationId: "c", replyTo: "r", expiration: "60000", messageId: "m",
        timestamp: 1_700_000_000, type: "t", userId: "guest", appId: "app", reserved: "cl"
    )

    /// Each property alone, with the flag bit the spec gives it (bit 15 first).
    static let single: [(BasicProperties, UInt16)] = [
        (BasicProperties(contentType: "application/json"), 0x8000),
        (BasicProperties(contentEncoding: "utf-8"), 0x4000),
        (BasicProperties(headers: ["k": .string("v")]), 0x2000),
        (BasicProperties(deliveryMode: 2), 0x1000),
        (BasicProperties(priority: 9), 0x0800),
        (BasicProperties(correlationId: "corr"), 0x0400),
        (BasicProperties(replyTo: "amq.rabbitmq.reply-to"), 0x0200),
        (BasicProperties(expiration: "1000"), 0x0100),
        (BasicProperties(messageId: "id-1"), 0x0080),
        (BasicProperties(timestamp: 0xDEAD_BEEF), 0x0040),
        (BasicProperties(type: "event"), 0x0020),
        (BasicProperties(userId: "guest"), 0x0010),
        (BasicProperties(appId: "conductor"), 0x0008),
        (BasicProperties(reserved: "cluster"), 0x0004),
    ]

    @Test("all 14 properties match pika's content header frame byte for byte")
    func allPropertiesMatchPika() throws {
        // pika.frame.Header(1, 5, BasicProperties(... all 14 ...)).marshal()
        let expected = bytes("""
            02 0001 0000004e 003c 0000 0000000000000005 fffc
            0a 746578742f706c61696e 04 677a6970 00000007 01 61 49 00000001 02 05 01 63 01 72
            05 3630303030 01 6d 000000006553f100 01 74 05 6775657374 03 617070 02 636c ce
            """)
        let frame = Frame.header(channel: 1, ContentHeader(bodySize: 5, properties: Self.everything))
        #expect(Array(try encodeFrame(frame).readableBytesView) == expected)
        #expect(try decodeOneFrame(ByteBuffer(bytes: expected)) == frame)
    }

    @Test("no properties: a zero flags word and nothing else")
    func noProperties() throws {
        let expected = bytes("02 0001 0000000e 003c 0000 0000000000000000 0000 ce")
        let frame = Frame.header(channel: 1, ContentHeader(bodySize: 0))
        #expect(Array(try encodeFrame(frame).readableBytesView) == expected)
        #expect(try decodeOneFrame(ByteBuffer(bytes: expected)) == frame)
        #expect(BasicProperties().isEmpty)
        #expect(!Self.everything.isEmpty)
    }

    @Test("each property alone sets exactly its flag bit and survives a round trip")
    func eachPropertyAlone() throws {
        for (properties, flag) in Self.single {
            var buffer = ByteBuffer()
            try properties.encode(into: &buffer)
            #expect(buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == flag)
            #expect(try BasicProperties(from: &buffer) == properties)
            #expect(buffer.readableBytes == 0)
            #expect(!properties.isEmpty)
        }
        // The 14 bits are distinct and together make 0xFFFC.
        #expect(Self.single.reduce(0) { $0 | $1.1 } == 0xFFFC)
    }

    @Test("a continuation flags word carrying unknown properties is refused")
    func unknownPropertyFlags() throws {
        // bit 0 set: another word follows; it announces a 15th property.
        var buffer = hexBuffer("0001 8000")
        #expect(protocolError { _ = try BasicProperties(from: &buffer) }?.code == .malformedFrame)
        // An empty continuation word is harmless.
        var empty = hexBuffer("8001 0000 01 61")
        #expect(try BasicProperties(from: &empty) == BasicProperties(contentType: "a"))
    }

    @Test("a content header for a class other than basic is refused")
    func headerForWrongClass() {
        let bytes = hexBuffer("02 0001 0000000e 0032 0000 0000000000000000 0000 ce")
        #expect(protocolError { _ = try decodeOneFrame(bytes) }?.code == .malformedFrame)
    }

    @Test("a property announced by the flags but missing from the payload is truncated")
    func truncatedProperty() {
        var buffer = hexBuffer("8000 05 6162")  // content-type of 5 bytes, 2 present
        #expect(protocolError { _ = try BasicProperties(from: &buffer) }?.code == .truncated)
        var timestamp = hexBuffer("0040 00000000")  // timestamp needs 8 bytes
        #expect(protocolError { _ = try BasicProperties(from: &timestamp) }?.code == .truncated)
    }
}
