import AMQPProtocol
import NIOCore
import Testing

@testable import Broker

/// Connection, channel, frame and message size limits, each refused with RabbitMQ's
/// reply code, over real loopback sockets.
@Suite(.timeLimit(.minutes(1)))
struct LimitsTests {
    /// Handshake up to connection.open; returns what the broker answered to it.
    static func open(_ port: Int) async throws -> (TestFrameClient, AMQP.Method) {
        let client = try await TestFrameClient.connect(port: port)
        try await client.write(AMQP.protocolHeader)
        guard case .connectionStart = try await client.nextMethod() else { throw TestFrameClient.Closed() }
        try await client.send(.connectionStartOk(.init(
            clientProperties: [:], mechanism: "PLAIN", response: Array("\0guest\0guest".utf8), locale: "en_US")))
        guard case .connectionTune(let tune) = try await client.nextMethod() else { throw TestFrameClient.Closed() }
        try await client.send(.connectionTuneOk(.init(channelMax: tune.channelMax, frameMax: tune.frameMax, heartbeat: 0)))
        try await client.send(.connectionOpen(.init(virtualHost: "/")))
        return (client, try await client.nextMethod())
    }

    @Test func connectionsBeyondTheLimitAreRefusedAtOpen() async throws {
        var configuration = BrokerConfiguration()
        configuration.limits.maxConnections = 2
        try await EndToEndTests.withBroker(configuration) { port in
            let (first, firstReply) = try await Self.open(port)
            let (second, secondReply) = try await Self.open(port)
            #expect(firstReply == .connectionOpenOk(.init()))
            #expect(secondReply == .connectionOpenOk(.init()))
            let (third, thirdReply) = try await Self.open(port)
            guard case .connectionClose(let close) = thirdReply else {
                Issue.record("expected connection.close, got \(thirdReply)")
                return
            }
            #expect(close.replyCode == ReplyCode.notAllowed)
            #expect(close.replyText == "NOT_ALLOWED - connection limit (2) is reached")
            #expect(close.classId == AMQP.Connection.classID)
            await third.close()
            // A slot frees when a connection goes.
            try await first.send(.connectionClose(.init(replyCode: 200, replyText: "bye", classId: 0, methodId: 0)))
            #expect(try await first.nextMethod() == .connectionCloseOk(.init()))
            var reply: AMQP.Method?
            for _ in 0..<50 {
                let (fourth, answer) = try await Self.open(port)
                await fourth.close()
                reply = answer
                if answer == .connectionOpenOk(.init()) { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(reply == .connectionOpenOk(.init()))
            await second.close()
        }
    }

    @Test func channelNumbersBeyondChannelMaxAndReopeningAreConnectionErrors() async throws {
        var configuration = BrokerConfiguration()
        configuration.channelMax = 3
        try await EndToEndTests.withBroker(configuration) { port in
            let client = try await EndToEndTests.client(port, channel: 3)
            // 4 > channel_max 3 (negotiated in tune): 530 NOT_ALLOWED, as RabbitMQ.
            try await client.send(.channelOpen(.init()), channel: 4)
            guard case .connectionClose(let close) = try await client.nextMethod() else {
                Issue.record("expected connection.close")
                return
            }
            #expect(close.replyCode == ReplyCode.notAllowed)
            #expect(close.replyText.contains("channel_max 3"))
            await client.close()

            // channel.open on an open channel: 504 CHANNEL_ERROR.
            let again = try await EndToEndTests.client(port, channel: 1)
            try await again.send(.channelOpen(.init()), channel: 1)
            guard case .connectionClose(let reopen) = try await again.nextMethod() else {
                Issue.record("expected connection.close")
                return
            }
            #expect(reopen.replyCode == ReplyCode.channelError)
            await again.close()

            // A client asking for more channels than offered in tune-ok: 530.
            let greedy = try await TestFrameClient.connect(port: port)
            try await greedy.write(AMQP.protocolHeader)
            _ = try await greedy.nextMethod()
            try await greedy.send(.connectionStartOk(.init(
                clientProperties: [:], mechanism: "PLAIN", response: Array("\0guest\0guest".utf8), locale: "en_US")))
            guard case .connectionTune(let tune) = try await greedy.nextMethod() else { throw TestFrameClient.Closed() }
            #expect(tune.channelMax == 3)
            try await greedy.send(.connectionTuneOk(.init(channelMax: 10, frameMax: tune.frameMax, heartbeat: 0)))
            #expect(try await greedy.nextCloseCode() == ReplyCode.notAllowed)
            await greedy.close()
        }
    }

    @Test func framesOverFrameMaxAreFrameErrors() async throws {
        var configuration = BrokerConfiguration()
        configuration.frameMax = 4096
        try await EndToEndTests.withBroker(configuration) { port in
            let client = try await EndToEndTests.client(port)
            // A body frame announcing 5000 bytes (over the negotiated 4096): 501 FRAME_ERROR.
            var frame: [UInt8] = [3, 0, 1]
            withUnsafeBytes(of: UInt32(5000).bigEndian) { frame += $0 }
            frame += [UInt8](repeating: 0x61, count: 5000) + [0xCE]
            try await client.write(frame)
            guard case .connectionClose(let close) = try await client.nextMethod() else {
                Issue.record("expected connection.close")
                return
            }
            #expect(close.replyCode == ReplyCode.frameError)
            await client.close()
        }
    }

    @Test func messagesOverMaxMessageSizeArePreconditionFailed() async throws {
        var configuration = BrokerConfiguration()
        configuration.limits.maxMessageSize = 100
        try await EndToEndTests.withBroker(configuration) { port in
            let client = try await EndToEndTests.client(port)
            try await client.send(.queueDeclare(.init(queue: "sized")), channel: 1)
            guard case .queueDeclareOk = try await client.nextMethod() else { Issue.record("no declare-ok"); return }
            // Exactly the limit passes.
            try await client.publish(channel: 1, routingKey: "sized", body: String(repeating: "x", count: 100))
            #expect(try await FlowControlTests.declarePassive(client, "sized") == 1)
            // One byte more closes the channel with 406, as RabbitMQ's max_message_size.
            try await client.publish(channel: 1, routingKey: "sized", body: String(repeating: "x", count: 101))
            guard case .channelClose(let close) = try await client.nextMethod() else {
                Issue.record("expected channel.close")
                return
            }
            #expect(close.replyCode == ReplyCode.preconditionFailed)
            #expect(close.replyText == "PRECONDITION_FAILED - message size 101 is larger than configured max size 100")
            #expect(close.classId == AMQP.Basic.classID)
            #expect(close.methodId == AMQP.Basic.Publish.methodID)
            try await client.send(.channelCloseOk(.init()), channel: 1)
            // The connection is still good, and the large message went nowhere.
            try await client.openChannel(2)
            try await client.send(.queueDeclare(.init(queue: "sized", passive: true)), channel: 2)
            #expect(try await client.nextMethod() == .queueDeclareOk(.init(queue: "sized", messageCount: 1)))
            await client.close()
        }
    }
}
