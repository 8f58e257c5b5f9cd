import AMQPProtocol
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@Suite("Frame decoder")
struct FrameDecoderTests {
    static let publish = AMQP.Basic.Publish(exchange: "amq.direct", routingKey: "rk", mandatory: true).asMethod

    /// A realistic inbound stream: handshake methods, a content in three frames, heartbeat.
    static func sampleFrames() -> [Frame] {
        var body = ByteBuffer()
        body.writeString("hello, world")
        return [
            .method(channel: 0, AMQP.Connection.Tune(channelMax: 2047, frameMax: 4096, heartbeat: 60).asMethod),
            .method(channel: 1, Self.publish),
            .header(channel: 1, ContentHeader(bodySize: 12, properties: BasicProperties(contentType: "text/plain", deliveryMode: 2))),
            .body(channel: 1, body),
            .heartbeat,
            .method(channel: 2, AMQP.Basic.Ack(deliveryTag: 3, multiple: true).asMethod),
        ]
    }

    @Test("ByteToMessageDecoderVerifier: whole, byte by byte, and with reentrancy")
    func verifier() throws {
        var pairs: [(ByteBuffer, [Frame])] = []
        for frame in Self.sampleFrames() {
            pairs.append((try encodeFrame(frame), [frame]))
        }
        // Several frames in one read.
        var all = ByteBuffer()
        for frame in Self.sampleFrames() { try frame.encode(into: &all) }
        pairs.append((all, Self.sampleFrames()))
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { FrameDecoder() }
    }

    @Test("every sample method decodes through the verifier")
    func verifierAllMethods() throws {
        let pairs = try SampleMethods.all.map { method in
            (try encodeFrame(.method(channel: 5, method)), [Frame.method(channel: 5, method)])
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { FrameDecoder() }
    }

    @Test("feeding one byte at a time yields each frame exactly when its last byte arrives")
    func byteByByte() throws {
        var stream = ByteBuffer()
        var ends: [Int] = []
        for frame in Self.sampleFrames() {
            try frame.encode(into: &stream)
            ends.append(stream.readableBytes)
        }
        let decoder = FrameDecoder()
        var pending = ByteBuffer()
        var decoded: [Frame] = []
        var decodedAt: [Int] = []
        for (index, byte) in stream.readableBytesView.enumerated() {
            pending.writeInteger(byte)
            while let frame = try decoder.decodeFrame(buffer: &pending) {
                decoded.append(frame)
                decodedAt.append(index + 1)
            }
        }
        #expect(decoded == Self.sampleFrames())
        #expect(decodedAt == ends)
        #expect(pending.readableBytes == 0)
    }

    @Test("a frame larger than frame_max is refused from its 7-byte header, before the payload")
    func tooLargeBeforePayload() {
        // Claims 4 GiB - 1: the decoder must not wait for (or allocate) it.
        var header = hexBuffer("01 0001 ffffffff")
        let decoder = FrameDecoder(maximumFrameSize: 131_072)
        let error = protocolError { _ = try decoder.decodeFrame(buffer: &header) }
        #expect(error?.code == .frameTooLarge)
        #expect(error?.replyCode == ReplyCode.frameError)

        // Exactly at the limit is fine (payload + 8 == frame_max); one byte more is not.
        let limit: UInt32 = 4096
        var atLimit = ByteBuffer()
        atLimit.writeBytes([3, 0, 1])
        atLimit.writeInteger(limit - 8)
        atLimit.writeRepeatingByte(0x61, count: Int(limit) - 8)
        atLimit.writeInteger(UInt8(0xCE))
        #expect(throws: Never.self) { _ = try FrameDecoder(maximumFrameSize: limit).decodeFrame(buffer: &atLimit) }
        var overLimit = hexBuffer("03 0001")
        overLimit.writeInteger(limit - 7)
        #expect(protocolError { _ = try FrameDecoder(maximumFrameSize: limit).decodeFrame(buffer: &overLimit) }?.code == .frameTooLarge)
    }

    @Test("the pipeline handler closes on an oversized frame header")
    func tooLargeThroughHandler() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maximumFrameSize: 4096)))
        let error = #expect(throws: ProtocolError.self) {
            try channel.writeInbound(hexBuffer("03 0001 00100000"))
        }
        #expect(error?.code == .frameTooLarge)
        _ = try? channel.finish()
    }

    @Test("frame_max 0 means no limit")
    func noLimit() throws {
        var body = ByteBuffer()
        body.writeRepeatingByte(7, count: 200_000)
        let frame = Frame.body(channel: 1, body)
        #expect(try decodeOneFrame(try encodeFrame(frame), maximumFrameSize: 0) == frame)
        // A partial huge frame simply waits.
        var header = hexBuffer("03 0001 ffffffff 00")
        #expect(try FrameDecoder(maximumFrameSize: 0).decodeFrame(buffer: &header) == nil)
    }

    @Test("fewer than 7 bytes, or a payload not yet complete, waits without consuming")
    func needsMoreData() throws {
        let whole = try encodeFrame(.method(channel: 1, Self.publish))
        for length in 0..<whole.readableBytes {
            var prefix = whole.getSlice(at: 0, length: length)!
            #expect(try FrameDecoder().decodeFrame(buffer: &prefix) == nil)
            #expect(prefix.readableBytes == length)
        }
    }

    @Test("a frame not ending in 0xCE is refused")
    func badFrameEnd() throws {
        var wire = try encodeFrame(.heartbeat)
        wire.setInteger(UInt8(0xCD), at: wire.writerIndex - 1)
        let error = protocolError { _ = try decodeOneFrame(wire) }
        #expect(error?.code == .badFrameEnd)
        #expect(error?.replyCode == ReplyCode.frameError)
    }

    @Test("unknown frame types are refused", arguments: [UInt8(0), 4, 5, 7, 9, 65, 255])
    func unknownFrameType(_ type: UInt8) {
        var wire = ByteBuffer()
        wire.writeInteger(type)
        wire.writeBytes([0, 0, 0, 0, 0, 0, 0xCE])
        let error = protocolError { _ = try decodeOneFrame(wire) }
        #expect(error?.code == .unknownFrameType)
        #expect(error?.replyCode == ReplyCode.frameError)
    }

    @Test("\"AMQP\" sent after the header is an unknown frame type, not a hang")
    func protocolHeaderAsFrame() {
        // 'A' = 65: an unknown type; the size bytes are 'MQP' 0 → 0x4D515000, far above frame_max.
        var wire = ByteBuffer(bytes: AMQP.protocolHeader)
        let error = protocolError { _ = try FrameDecoder().decodeFrame(buffer: &wire) }
        #expect(error?.code == .frameTooLarge || error?.code == .unknownFrameType)
    }

    @Test("a heartbeat on a channel other than 0 is refused")
    func heartbeatOnChannel() throws {
        let error = protocolError { _ = try decodeOneFrame(hexBuffer("08 0003 00000000 ce")) }
        #expect(error?.code == .malformedFrame)
        #expect(error?.replyCode == ReplyCode.frameError)
        #expect(try decodeOneFrame(hexBuffer("08 0000 00000000 ce")) == .heartbeat)
    }

    @Test("a heartbeat with a payload is refused")
    func heartbeatWithPayload() {
        #expect(protocolError { _ = try decodeOneFrame(hexBuffer("08 0000 00000001 00 ce")) }?.code == .malformedFrame)
    }

    @Test("bytes left over after a method's arguments are refused")
    func leftoverBytes() {
        // basic.ack (8-byte tag, bits) plus one stray byte.
        let error = protocolError { _ = try decodeOneFrame(hexBuffer("01 0001 0000000e 003c 0050 0000000000000001 00 ff ce")) }
        #expect(error?.code == .malformedFrame)
        // Same in a content header.
        #expect(protocolError { _ = try decodeOneFrame(hexBuffer("02 0001 0000000f 003c 0000 0000000000000000 0000 00 ce")) }?.code == .malformedFrame)
    }

    @Test("truncated method arguments inside a complete frame are refused")
    func truncatedArguments() {
        // basic.ack with only 4 of the 8 delivery-tag bytes.
        let error = protocolError { _ = try decodeOneFrame(hexBuffer("01 0001 00000008 003c 0050 00000001 ce")) }
        #expect(error?.code == .truncated)
        // A method frame too short even for the ids.
        #expect(protocolError { _ = try decodeOneFrame(hexBuffer("01 0001 00000002 003c ce")) }?.code == .truncated)
        // An empty content header.
        #expect(protocolError { _ = try decodeOneFrame(hexBuffer("02 0001 00000000 ce")) }?.code == .truncated)
    }

    @Test("unknown class and method ids in a frame are refused with 540")
    func unknownMethodFrame() {
        let error = protocolError { _ = try decodeOneFrame(hexBuffer("01 0001 00000004 00ff 0001 ce")) }
        #expect(error?.code == .unknownMethod)
        #expect(error?.replyCode == ReplyCode.notImplemented)
    }

    @Test("a field table longer than its frame's payload is refused")
    func tableLongerThanPayload() {
        // queue.declare "q", bits, then a table claiming 0x7fffffff bytes.
        let error = protocolError { _ = try decodeOneFrame(hexBuffer("01 0001 0000000d 0032 000a 0000 01 71 00 7fffffff ce")) }
        #expect(error?.code == .truncated)
    }

    @Test("a short string longer than the payload is refused")
    func shortStringBeyondPayload() {
        let error = protocolError { _ = try decodeOneFrame(hexBuffer("01 0001 00000006 0014 000a ff 61 ce")) }  // channel.open reserved shortstr
        #expect(error?.code == .truncated)
    }

    @Test("deeply nested tables in a method frame throw nestingTooDeep, not crash")
    func deepTablesInFrame() throws {
        var arguments = FieldTableTests.nestedTables(levels: 5000)
        var wire = ByteBuffer()
        // queue.declare with the nested table as its arguments
        wire.writeBytes([1, 0, 1])
        let sizeIndex = wire.writerIndex
        wire.writeInteger(UInt32(0))
        wire.writeBytes([0, 50, 0, 10, 0, 0, 1, 0x71, 0])
        wire.writeBuffer(&arguments)
        wire.setInteger(UInt32(wire.writerIndex - sizeIndex - 4), at: sizeIndex)
        wire.writeInteger(UInt8(0xCE))
        let error = protocolError { _ = try decodeOneFrame(wire, maximumFrameSize: 0) }
        #expect(error?.code == .nestingTooDeep)
    }

    @Test("frames round-trip through encode and decode")
    func frameRoundTrip() throws {
        for frame in Self.sampleFrames() {
            #expect(try decodeOneFrame(try encodeFrame(frame)) == frame)
            #expect(frame.channel == (frame == .heartbeat ? 0 : frame.channel))
        }
        var empty = ByteBuffer()
        empty.writeString("")
        #expect(try decodeOneFrame(try encodeFrame(.body(channel: 9, empty))) == .body(channel: 9, empty))
    }
}

@Suite("Protocol header")
struct ProtocolHeaderTests {
    @Test("AMQP 0 0 9 1 is accepted and consumed")
    func accepted() {
        var buffer = ByteBuffer(bytes: AMQP.protocolHeader + [1, 2])
        #expect(buffer.readAMQPProtocolHeader() == .accepted)
        #expect(Array(buffer.readableBytesView) == [1, 2])
    }

    @Test("a partial header asks for more data and consumes nothing")
    func partial() {
        for length in 0..<8 {
            var buffer = ByteBuffer(bytes: AMQP.protocolHeader.prefix(length))
            #expect(buffer.readAMQPProtocolHeader() == .needMoreData)
            #expect(buffer.readableBytes == length)
        }
    }

    @Test("other versions and other protocols are rejected", arguments: [
        [0x41, 0x4D, 0x51, 0x50, 0, 0, 10, 0] as [UInt8],  // AMQP 1.0
        [0x41, 0x4D, 0x51, 0x50, 1, 1, 0, 9],  // AMQP 0-9 (old style)
        Array("GET / HTTP/1.1\r\n".utf8),
    ])
    func rejected(_ input: [UInt8]) {
        var buffer = ByteBuffer(bytes: input)
        #expect(buffer.readAMQPProtocolHeader() == .rejected)
        #expect(buffer.readableBytes == input.count)
    }

    @Test("a wrong first byte is rejected without waiting for eight")
    func earlyReject() {
        var buffer = ByteBuffer(bytes: Array("GE".utf8))
        #expect(buffer.readAMQPProtocolHeader() == .rejected)
    }
}
