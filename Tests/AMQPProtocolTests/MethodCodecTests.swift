import AMQPProtocol
import NIOCore
import Testing

@Suite("Generated methods")
struct MethodCodecTests {
    @Test("every method survives encode → decode as a frame", arguments: SampleMethods.all)
    func roundTrip(_ method: AMQP.Method) throws {
        var wire = ByteBuffer()
        try wire.writeMethodFrame(channel: 7, method)
        let decoded = try decodeOneFrame(wire)
        #expect(decoded == .method(channel: 7, method))
    }

    @Test("methods with all-default fields survive a round trip")
    func roundTripDefaults() throws {
        // Empty strings, empty tables and zero integers are all legal on the wire.
        let defaults: [AMQP.Method] = [
            AMQP.Connection.Start().asMethod, AMQP.Connection.StartOk().asMethod, AMQP.Connection.Close().asMethod,
            AMQP.Exchange.Declare().asMethod, AMQP.Queue.Declare().asMethod, AMQP.Queue.Bind().asMethod,
            AMQP.Basic.Consume().asMethod, AMQP.Basic.Publish().asMethod, AMQP.Basic.Deliver().asMethod,
            AMQP.Basic.GetOk().asMethod, AMQP.Confirm.Select().asMethod,
        ]
        for method in defaults {
            var payload = ByteBuffer()
            try method.encode(into: &payload)
            #expect(try AMQP.Method(from: &payload) == method)
            #expect(payload.readableBytes == 0)
        }
    }

    @Test("the samples cover every method of the extended spec exactly once")
    func samplesCoverAllMethods() throws {
        let sampleIDs = SampleMethods.all.map { [$0.classID, $0.methodID] }
        #expect(Set(sampleIDs).count == 64)
        #expect(Set(SampleMethods.all.map(\.name)).count == 64)
        #expect(Set(sampleIDs) == Set(Self.known))
    }

    static let known = knownMethodIDs()

    /// Every (class, method) id pair the decoder recognises: anything that does not fail
    /// with `.unknownMethod` on an empty argument list.
    static func knownMethodIDs() -> [[UInt16]] {
        var known: [[UInt16]] = []
        for classID in UInt16(0)...255 {
            for methodID in UInt16(0)...255 {
                var payload = ByteBuffer()
                payload.writeInteger(classID)
                payload.writeInteger(methodID)
                do {
                    _ = try AMQP.Method(from: &payload)
                    known.append([classID, methodID])
                } catch {
                    if error.code != .unknownMethod { known.append([classID, methodID]) }
                }
            }
        }
        return known
    }

    @Test("decoding finds exactly the 64 methods of the extended spec")
    func sixtyFourMethods() {
        let known = Self.known
        #expect(known.count == 64)
        // RabbitMQ's extensions are present.
        #expect(known.contains([85, 10]))  // confirm.select
        #expect(known.contains([60, 120]))  // basic.nack
        #expect(known.contains([40, 30]))  // exchange.bind
        #expect(known.contains([40, 51]))  // exchange.unbind-ok (51, not 41)
        #expect(known.contains([10, 60]))  // connection.blocked
        #expect(known.contains([10, 70]))  // connection.update-secret
    }

    @Test("unknown class and method ids are typed errors with reply code 540")
    func unknownIDs() {
        for (classID, methodID) in [(UInt16(60), UInt16(41)), (99, 10), (0, 0), (65535, 65535)] {
            var payload = ByteBuffer()
            payload.writeInteger(classID)
            payload.writeInteger(methodID)
            let error = protocolError { _ = try AMQP.Method(from: &payload) }
            #expect(error?.code == .unknownMethod)
            #expect(error?.replyCode == ReplyCode.notImplemented)
        }
    }

    // MARK: Bits

    @Test("queue.declare packs its five bits into one octet, alone and combined")
    func queueDeclareBits() throws {
        for mask in UInt8(0)..<32 {
            let declare = AMQP.Queue.Declare(
                queue: "q",
                passive: mask & 1 != 0, durable: mask & 2 != 0, exclusive: mask & 4 != 0,
                autoDelete: mask & 8 != 0, noWait: mask & 16 != 0
            )
            // reserved short, "q", bits, empty table
            #expect(try argumentBytes(declare.asMethod) == [0, 0, 1, 0x71, mask, 0, 0, 0, 0])
            var payload = ByteBuffer()
            try declare.asMethod.encode(into: &payload)
            #expect(try AMQP.Method(from: &payload) == declare.asMethod)
        }
    }

    @Test("exchange.declare packs passive, durable, auto-delete, internal, no-wait in order")
    func exchangeDeclareBits() throws {
        for mask in UInt8(0)..<32 {
            let declare = AMQP.Exchange.Declare(
                exchange: "e", type: "fanout",
                passive: mask & 1 != 0, durable: mask & 2 != 0, autoDelete: mask & 4 != 0,
                internal: mask & 8 != 0, noWait: mask & 16 != 0
            )
            #expect(try argumentBytes(declare.asMethod) == [0, 0, 1, 0x65, 6] + Array("fanout".utf8) + [mask, 0, 0, 0, 0])
            var payload = ByteBuffer()
            try declare.asMethod.encode(into: &payload)
            #expect(try AMQP.Method(from: &payload) == declare.asMethod)
        }
    }

    @Test("basic.consume and basic.nack bits")
    func otherBits() throws {
        for mask in UInt8(0)..<16 {
            let consume = AMQP.Basic.Consume(
                queue: "", consumerTag: "",
                noLocal: mask & 1 != 0, noAck: mask & 2 != 0, exclusive: mask & 4 != 0, noWait: mask & 8 != 0
            )
            #expect(try argumentBytes(consume.asMethod) == [0, 0, 0, 0, mask, 0, 0, 0, 0])
        }
        #expect(try argumentBytes(AMQP.Basic.Nack(deliveryTag: 1, multiple: false, requeue: true).asMethod)
            == [0, 0, 0, 0, 0, 0, 0, 1, 2])
        #expect(try argumentBytes(AMQP.Basic.Nack(deliveryTag: 1, multiple: true, requeue: false).asMethod)
            == [0, 0, 0, 0, 0, 0, 0, 1, 1])
        #expect(try argumentBytes(AMQP.Queue.Delete(queue: "", ifUnused: false, ifEmpty: true, noWait: true).asMethod)
            == [0, 0, 0, 6])
        // Bits that follow a non-bit field start a new octet.
        #expect(try argumentBytes(AMQP.Basic.Deliver(consumerTag: "c", deliveryTag: 2, redelivered: true).asMethod)
            == [1, 0x63, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0])
    }

    @Test("undefined bits in a received octet are ignored, not misread")
    func extraBitsIgnored() throws {
        // basic.ack with every bit set: only `multiple` (bit 0) is defined.
        var payload = hexBuffer("003c 0050 0000000000000005 ff")
        #expect(try AMQP.Method(from: &payload) == AMQP.Basic.Ack(deliveryTag: 5, multiple: true).asMethod)
    }

    // MARK: Known wire bytes (from pika 1.4 `pika.frame.Method(...).marshal()`)

    @Test("basic.publish matches pika's frame byte for byte")
    func publishMatchesPika() throws {
        let expected = bytes("01 0001 0000000b 003c 0028 0000 01 78 01 6b 01 ce")
        var wire = ByteBuffer()
        try wire.writeMethodFrame(channel: 1, AMQP.Basic.Publish(exchange: "x", routingKey: "k", mandatory: true).asMethod)
        #expect(Array(wire.readableBytesView) == expected)
        #expect(try decodeOneFrame(ByteBuffer(bytes: expected))
            == .method(channel: 1, AMQP.Basic.Publish(exchange: "x", routingKey: "k", mandatory: true).asMethod))
    }

    @Test("connection.tune matches pika's frame byte for byte")
    func tuneMatchesPika() throws {
        let expected = bytes("01 0000 0000000c 000a 001e 07ff 00020000 003c ce")
        let tune = AMQP.Connection.Tune(channelMax: 2047, frameMax: 131_072, heartbeat: 60).asMethod
        #expect(Array(try encodeFrame(.method(channel: 0, tune)).readableBytesView) == expected)
        #expect(try decodeOneFrame(ByteBuffer(bytes: expected)) == .method(channel: 0, tune))
    }

    @Test("queue.declare (durable, auto-delete) matches pika's frame byte for byte")
    func queueDeclareMatchesPika() throws {
        let expected = bytes("01 0003 0000000d 0032 000a 0000 01 71 0a 00000000 ce")
        let declare = AMQP.Queue.Declare(queue: "q", durable: true, autoDelete: true).asMethod
        #expect(Array(try encodeFrame(.method(channel: 3, declare)).readableBytesView) == expected)
        #expect(try decodeOneFrame(ByteBuffer(bytes: expected)) == .method(channel: 3, declare))
    }

    @Test("connection.close written by hand from the spec")
    func closeByHand() throws {
        // class 10, method 50, reply-code 200, reply-text "OK", class-id 0, method-id 0
        let expected = bytes("01 0000 0000000d 000a 0032 00c8 02 4f4b 0000 0000 ce")
        let close = AMQP.Connection.Close(replyCode: 200, replyText: "OK").asMethod
        #expect(Array(try encodeFrame(.method(channel: 0, close)).readableBytesView) == expected)
    }

    // MARK: Metadata

    @Test("generated metadata follows the spec")
    func metadata() {
        #expect(AMQP.Basic.Publish.hasContent)
        #expect(AMQP.Basic.Deliver.hasContent && AMQP.Basic.Return.hasContent && AMQP.Basic.GetOk.hasContent)
        #expect(!AMQP.Basic.Get.hasContent && !AMQP.Basic.Ack.hasContent)
        #expect(SampleMethods.all.filter(\.hasContent).map(\.name).sorted()
            == ["basic.deliver", "basic.get-ok", "basic.publish", "basic.return"])

        #expect(!AMQP.Basic.Ack.isSynchronous && !AMQP.Basic.Nack.isSynchronous && !AMQP.Basic.Publish.isSynchronous)
        #expect(AMQP.Queue.Declare.isSynchronous && AMQP.Queue.Declare.responses == ["queue.declare-ok"])
        #expect(AMQP.Basic.Get.responses == ["basic.get-ok", "basic.get-empty"])
        // The XML omits it, but basic.recover is answered by recover-ok (RabbitMQ, pika, rabbitmq-c agree).
        #expect(AMQP.Basic.Recover.isSynchronous && AMQP.Basic.Recover.responses == ["basic.recover-ok"])
        #expect(!AMQP.Basic.RecoverAsync.isSynchronous)
        #expect(!AMQP.Connection.Blocked.isSynchronous)

        #expect(AMQP.Connection.Start.sentToClient && !AMQP.Connection.Start.sentToServer)
        #expect(AMQP.Connection.StartOk.sentToServer && !AMQP.Connection.StartOk.sentToClient)
        #expect(AMQP.Basic.Publish.sentToServer && !AMQP.Basic.Publish.sentToClient)
        #expect(AMQP.Basic.Deliver.sentToClient && !AMQP.Basic.Deliver.sentToServer)
        // Publisher confirms: the broker sends ack and nack too.
        #expect(AMQP.Basic.Ack.sentToClient && AMQP.Basic.Nack.sentToClient)
        #expect(AMQP.Channel.Close.sentToClient && AMQP.Channel.Close.sentToServer)
        // RabbitMQ's update-secret goes from client to broker (the XML's chassis is inverted).
        #expect(AMQP.Connection.UpdateSecret.sentToServer && AMQP.Connection.UpdateSecretOk.sentToClient)

        // Every method either goes somewhere or is answered by something that does.
        for method in SampleMethods.all {
            #expect(method.sentToServer || method.sentToClient, "\(method.name)")
        }
        #expect(AMQP.Method.basicPublish(.init()).name == "basic.publish")
        #expect(AMQP.Exchange.UnbindOk.methodID == 51)
    }

    @Test("every synchronous request names responses that exist")
    func responsesExist() {
        let names = Set(SampleMethods.all.map(\.name))
        let withResponses: [[String]] = [
            AMQP.Connection.Start.responses, AMQP.Connection.Secure.responses, AMQP.Connection.Tune.responses,
            AMQP.Connection.Open.responses, AMQP.Connection.Close.responses, AMQP.Connection.UpdateSecret.responses,
            AMQP.Channel.Open.responses, AMQP.Channel.Flow.responses, AMQP.Channel.Close.responses,
            AMQP.Exchange.Declare.responses, AMQP.Exchange.Delete.responses, AMQP.Exchange.Bind.responses,
            AMQP.Exchange.Unbind.responses, AMQP.Queue.Declare.responses, AMQP.Queue.Bind.responses,
            AMQP.Queue.Unbind.responses, AMQP.Queue.Purge.responses, AMQP.Queue.Delete.responses,
            AMQP.Basic.Qos.responses, AMQP.Basic.Consume.responses, AMQP.Basic.Cancel.responses,
            AMQP.Basic.Get.responses, AMQP.Basic.Recover.responses, AMQP.Tx.Select.responses,
            AMQP.Tx.Commit.responses, AMQP.Tx.Rollback.responses, AMQP.Confirm.Select.responses,
        ]
        for responses in withResponses {
            #expect(!responses.isEmpty)
            for response in responses { #expect(names.contains(response), "\(response)") }
        }
    }

    // MARK: Malformed arguments

    @Test("truncated arguments of every method with fields are typed errors", arguments: SampleMethods.all)
    func truncatedArguments(_ method: AMQP.Method) throws {
        var full = ByteBuffer()
        try method.encode(into: &full)
        // Every strict prefix that still has the ids must fail (or, for methods without
        // arguments, there is nothing to cut).
        guard full.readableBytes > 4 else { return }
        for length in 4..<full.readableBytes {
            var prefix = full.getSlice(at: full.readerIndex, length: length)!
            let error = protocolError { _ = try AMQP.Method(from: &prefix) }
            #expect(error?.code == .truncated, "\(method.name) cut at \(length)")
            #expect(error?.replyCode == ReplyCode.syntaxError)
        }
    }

    @Test("a short string longer than 255 bytes is refused when encoding")
    func longShortString() {
        let method = AMQP.Queue.Declare(queue: String(repeating: "q", count: 256)).asMethod
        var buffer = ByteBuffer()
        let error = protocolError { try buffer.writeMethodFrame(channel: 1, method) }
        #expect(error?.code == .stringTooLong)
        // 255 is fine.
        var ok = ByteBuffer()
        #expect(throws: Never.self) {
            try ok.writeMethodFrame(channel: 1, AMQP.Queue.Declare(queue: String(repeating: "q", count: 255)).asMethod)
        }
        // Multi-byte characters count in bytes, not characters: 128 × "é" is 256 bytes.
        let error2 = protocolError { try buffer.writeAMQPShortString(String(repeating: "é", count: 128)) }
        #expect(error2?.code == .stringTooLong)
    }
}
