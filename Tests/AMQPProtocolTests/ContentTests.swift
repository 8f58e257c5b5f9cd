import AMQPProtocol
import NIOCore
import Testing

@Suite("Content splitting and reassembly")
struct ContentTests {
    static let publish = AMQP.Basic.Publish(exchange: "", routingKey: "q").asMethod

    static func body(_ count: Int) -> ByteBuffer {
        var body = ByteBuffer()
        for index in 0..<count { body.writeInteger(UInt8(truncatingIfNeeded: index &* 31)) }
        return body
    }

    /// Decodes every frame of a stream.
    static func frames(_ wire: ByteBuffer, maximumFrameSize: UInt32) throws -> [Frame] {
        var wire = wire
        let decoder = FrameDecoder(maximumFrameSize: maximumFrameSize)
        var frames: [Frame] = []
        while let frame = try decoder.decodeFrame(buffer: &wire) { frames.append(frame) }
        #expect(wire.readableBytes == 0)
        return frames
    }

    @Test("writeContent splits a 1 MiB body by frame_max", arguments: [UInt32(4096), 131_072, 1_048_576])
    func splitsByFrameMax(_ frameMax: UInt32) throws {
        let size = 1 << 20
        var wire = ByteBuffer()
        try wire.writeContent(channel: 4, method: Self.publish, properties: BasicProperties(deliveryMode: 2),
                              body: Self.body(size), frameMax: frameMax)
        let frames = try Self.frames(wire, maximumFrameSize: frameMax)
        #expect(frames.first == .method(channel: 4, Self.publish))
        #expect(frames.dropFirst().first == .header(channel: 4, ContentHeader(bodySize: UInt64(size), properties: BasicProperties(deliveryMode: 2))))

        let chunk = Int(frameMax) - 8
        let expectedCount = (size + chunk - 1) / chunk
        var sizes: [Int] = []
        var reassembled = ByteBuffer()
        for frame in frames.dropFirst(2) {
            guard case .body(let channel, var piece) = frame else {
                Issue.record("expected a body frame, got \(frame)")
                continue
            }
            #expect(channel == 4)
            sizes.append(piece.readableBytes)
            reassembled.writeBuffer(&piece)
        }
        #expect(sizes.count == expectedCount)
        #expect(sizes.dropLast().allSatisfy { $0 == chunk })
        #expect(sizes.last == size - chunk * (expectedCount - 1))
        #expect(reassembled == Self.body(size))
    }

    @Test("an empty body produces a header and no body frame")
    func emptyBody() throws {
        var wire = ByteBuffer()
        try wire.writeContent(channel: 1, method: Self.publish, properties: BasicProperties(), body: ByteBuffer(), frameMax: 4096)
        let frames = try Self.frames(wire, maximumFrameSize: 4096)
        #expect(frames == [.method(channel: 1, Self.publish), .header(channel: 1, ContentHeader(bodySize: 0))])
    }

    @Test("frame_max 0 writes the body in one frame")
    func unlimitedFrameMax() throws {
        var wire = ByteBuffer()
        wire.writeBodyFrames(channel: 1, body: Self.body(300_000), frameMax: 0)
        #expect(try Self.frames(wire, maximumFrameSize: 0) == [.body(channel: 1, Self.body(300_000))])
    }

    @Test("a frame_max below the spec's minimum still makes progress (frames of 4096)", arguments: [UInt32(1), 8, 9, 100])
    func tinyFrameMax(_ frameMax: UInt32) throws {
        // A peer may not negotiate below frame-min-size; a bad value must not hang or trap us.
        var wire = ByteBuffer()
        wire.writeBodyFrames(channel: 1, body: Self.body(10_000), frameMax: frameMax)
        let frames = try Self.frames(wire, maximumFrameSize: AMQP.frameMinSize)
        #expect(frames.count == 3)
    }

    // MARK: Assembler

    @Test("a single-frame body is reassembled")
    func singleFrame() throws {
        var assembler = ContentAssembler<AMQP.Method>()
        try assembler.methodReceived(Self.publish)
        #expect(assembler.isAssembling)
        #expect(try assembler.headerReceived(ContentHeader(bodySize: 5, properties: BasicProperties(appId: "a"))) == nil)
        var body = ByteBuffer()
        body.writeString("hello")
        let content = try assembler.bodyReceived(body)
        #expect(content == Content(method: Self.publish, properties: BasicProperties(appId: "a"), body: body))
        #expect(!assembler.isAssembling)
    }

    @Test("a multi-frame body is reassembled in order")
    func multiFrame() throws {
        let whole = Self.body(10_000)
        var wire = ByteBuffer()
        try wire.writeContent(channel: 1, method: Self.publish, properties: BasicProperties(), body: whole, frameMax: 4096)
        var assembler = ContentAssembler<AMQP.Method>()
        var completed: [Content<AMQP.Method>] = []
        for frame in try Self.frames(wire, maximumFrameSize: 4096) {
            switch frame {
            case .method(_, let method): try assembler.methodReceived(method)
            case .header(_, let header): if let c = try assembler.headerReceived(header) { completed.append(c) }
            case .body(_, let body): if let c = try assembler.bodyReceived(body) { completed.append(c) }
            case .heartbeat: break
            }
        }
        #expect(completed.count == 1)
        #expect(completed.first?.body == whole)
        #expect(!assembler.isAssembling)
    }

    @Test("an empty body completes at the header; the assembler is ready for the next message")
    func emptyContent() throws {
        var assembler = ContentAssembler<AMQP.Method>()
        for _ in 0..<3 {
            try assembler.methodReceived(Self.publish)
            let content = try assembler.headerReceived(ContentHeader(bodySize: 0))
            #expect(content?.body.readableBytes == 0)
        }
    }

    @Test("a body or header without what precedes it is an unexpected frame (505)")
    func outOfOrder() {
        var assembler = ContentAssembler<AMQP.Method>()
        let body = protocolError { _ = try assembler.bodyReceived(Self.body(3)) }
        #expect(body?.code == .unexpectedFrame)
        #expect(body?.replyCode == ReplyCode.unexpectedFrame)
        #expect(protocolError { _ = try assembler.headerReceived(ContentHeader(bodySize: 1)) }?.code == .unexpectedFrame)
        // Body while the header is still awaited.
        #expect(throws: Never.self) { try assembler.methodReceived(Self.publish) }
        #expect(protocolError { _ = try assembler.bodyReceived(Self.body(3)) }?.code == .unexpectedFrame)
    }

    @Test("a method while assembling is an unexpected frame")
    func methodWhileAssembling() throws {
        var assembler = ContentAssembler<AMQP.Method>()
        try assembler.methodReceived(Self.publish)
        #expect(protocolError { try assembler.methodReceived(Self.publish) }?.code == .unexpectedFrame)

        var second = ContentAssembler<AMQP.Method>()
        try second.methodReceived(Self.publish)
        _ = try second.headerReceived(ContentHeader(bodySize: 10))
        _ = try second.bodyReceived(Self.body(4))
        #expect(protocolError { try second.methodReceived(Self.publish) }?.code == .unexpectedFrame)
        second.reset()
        #expect(!second.isAssembling)
        #expect(throws: Never.self) { try second.methodReceived(Self.publish) }
    }

    @Test("a body larger than the limit is refused at the header (406)")
    func tooLarge() throws {
        var assembler = ContentAssembler<AMQP.Method>(maximumBodySize: 1000)
        try assembler.methodReceived(Self.publish)
        let error = protocolError { _ = try assembler.headerReceived(ContentHeader(bodySize: 1001)) }
        #expect(error?.code == .messageTooLarge)
        #expect(error?.replyCode == ReplyCode.preconditionFailed)
        #expect(!assembler.isAssembling)
        // A header announcing 2^64-1 bytes with the default limit.
        var unlimited = ContentAssembler<AMQP.Method>()
        try unlimited.methodReceived(Self.publish)
        #expect(protocolError { _ = try unlimited.headerReceived(ContentHeader(bodySize: .max)) }?.code == .messageTooLarge)
        // Exactly at the limit is fine.
        var atLimit = ContentAssembler<AMQP.Method>(maximumBodySize: 1000)
        try atLimit.methodReceived(Self.publish)
        _ = try atLimit.headerReceived(ContentHeader(bodySize: 1000))
        #expect(try atLimit.bodyReceived(Self.body(1000))?.body.readableBytes == 1000)
    }

    @Test("body bytes beyond the announced size are refused")
    func excessBody() throws {
        var assembler = ContentAssembler<AMQP.Method>()
        try assembler.methodReceived(Self.publish)
        _ = try assembler.headerReceived(ContentHeader(bodySize: 10))
        #expect(try assembler.bodyReceived(Self.body(6)) == nil)
        let error = protocolError { _ = try assembler.bodyReceived(Self.body(5)) }
        #expect(error?.code == .malformedFrame)
        #expect(!assembler.isAssembling)
        // In a single frame too.
        var single = ContentAssembler<AMQP.Method>()
        try single.methodReceived(Self.publish)
        _ = try single.headerReceived(ContentHeader(bodySize: 2))
        #expect(protocolError { _ = try single.bodyReceived(Self.body(3)) }?.code == .malformedFrame)
    }

    @Test("empty body frames in the middle are tolerated")
    func emptyBodyFrames() throws {
        var assembler = ContentAssembler<AMQP.Method>()
        try assembler.methodReceived(Self.publish)
        _ = try assembler.headerReceived(ContentHeader(bodySize: 4))
        #expect(try assembler.bodyReceived(ByteBuffer()) == nil)
        #expect(try assembler.bodyReceived(Self.body(2)) == nil)
        #expect(try assembler.bodyReceived(ByteBuffer()) == nil)
        var rest = Self.body(4)
        rest.moveReaderIndex(forwardBy: 2)
        #expect(try assembler.bodyReceived(rest)?.body == Self.body(4))
    }
}
