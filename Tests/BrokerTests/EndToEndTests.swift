import AMQPProtocol
import Logging
import NIOCore
import TestSupport
import Testing

@testable import Broker

/// Real loopback sockets, raw frames: what a standard client sees.
@Suite struct EndToEndTests {
    static func withBroker(
        _ configuration: BrokerConfiguration = BrokerConfiguration(port: 0),
        _ body: (Int) async throws -> Void
    ) async throws {
        try await TestSupport.withBroker(configuration) { try await body($0.port) }
    }

    static func client(_ port: Int, channel: UInt16? = 1) async throws -> TestFrameClient {
        let client = try await TestFrameClient.connect(port: port)
        try await client.handshake()
        if let channel { try await client.openChannel(channel) }
        return client
    }

    @Test func wrongProtocolHeaderGetsOursAndClose() async throws {
        try await Self.withBroker { port in
            let client = try await TestFrameClient.connect(port: port)
            try await client.write(Array("HTTP/1.1".utf8))
            // The decoder cannot parse "AMQP\0\0\9\1" as a frame; reaching end of stream is the point.
            var closed = false
            do { _ = try await client.nextFrame() } catch { closed = true }
            #expect(closed)
        }
    }

    @Test func wrongPasswordIsRefused() async throws {
        try await Self.withBroker { port in
            let client = try await TestFrameClient.connect(port: port)
            try await client.write(AMQP.protocolHeader)
            _ = try await client.nextMethod()
            try await client.send(.connectionStartOk(.init(mechanism: "PLAIN", response: [0] + Array("guest".utf8) + [0] + Array("bad".utf8))))
            #expect(try await client.nextCloseCode() == 403)
        }
    }

    @Test func declareBindPublishConsumeAck() async throws {
        try await Self.withBroker { port in
            let client = try await Self.client(port)
            try await client.send(.exchangeDeclare(.init(exchange: "logs", type: "topic")), channel: 1)
            #expect(try await client.nextMethod() == .exchangeDeclareOk(.init()))
            try await client.send(.queueDeclare(.init(queue: "")), channel: 1)
            guard case .queueDeclareOk(let declared) = try await client.nextMethod() else { Issue.record("no declare-ok"); return }
            #expect(declared.queue.hasPrefix("amq.gen-"))
            try await client.send(.queueBind(.init(queue: declared.queue, exchange: "logs", routingKey: "app.*.error")), channel: 1)
            #expect(try await client.nextMethod() == .queueBindOk(.init()))
            try await client.send(.basicConsume(.init(queue: declared.queue, consumerTag: "c1")), channel: 1)
            #expect(try await client.nextMethod() == .basicConsumeOk(.init(consumerTag: "c1")))
            try await client.publish(channel: 1, exchange: "logs", routingKey: "app.web.info", body: "skip")
            try await client.publish(channel: 1, exchange: "logs", routingKey: "app.web.error", body: "hello")
            let (method, body) = try await client.nextContent()
            #expect(method == .basicDeliver(.init(consumerTag: "c1", deliveryTag: 1, exchange: "logs", routingKey: "app.web.error")))
            #expect(body == "hello")
            try await client.send(.basicAck(.init(deliveryTag: 1)), channel: 1)
            // Acking again is an unknown tag: channel closed with 406.
            try await client.send(.basicAck(.init(deliveryTag: 1)), channel: 1)
            #expect(try await client.nextCloseCode() == 406)
            await client.close()
        }
    }

    @Test func nackRequeueRedeliversFirstWithFlag() async throws {
        try await Self.withBroker { port in
            let client = try await Self.client(port)
            try await client.send(.queueDeclare(.init(queue: "work")), channel: 1)
            _ = try await client.nextMethod()
            for text in ["one", "two"] { try await client.publish(channel: 1, routingKey: "work", body: text) }
            try await client.send(.basicGet(.init(queue: "work")), channel: 1)
            let (got, body) = try await client.nextContent()
            #expect(got == .basicGetOk(.init(deliveryTag: 1, exchange: "", routingKey: "work", messageCount: 1)))
            #expect(body == "one")
            try await client.send(.basicNack(.init(deliveryTag: 1, multiple: false, requeue: true)), channel: 1)
            try await client.send(.basicGet(.init(queue: "work", noAck: true)), channel: 1)
            let (again, body2) = try await client.nextContent()
            #expect(again == .basicGetOk(.init(deliveryTag: 2, redelivered: true, exchange: "", routingKey: "work", messageCount: 1)))
            #expect(body2 == "one")
            await client.close()
        }
    }

    @Test func mandatoryUnroutableIsReturnedAndConfirmed() async throws {
        try await Self.withBroker { port in
            let client = try await Self.client(port)
            try await client.send(.confirmSelect(.init()), channel: 1)
            #expect(try await client.nextMethod() == .confirmSelectOk(.init()))
            try await client.publish(channel: 1, exchange: "amq.direct", routingKey: "nowhere", body: "x", mandatory: true)
            let (returned, _) = try await client.nextContent()
            #expect(returned == .basicReturn(.init(replyCode: 312, replyText: "NO_ROUTE", exchange: "amq.direct", routingKey: "nowhere")))
            #expect(try await client.nextMethod() == .basicAck(.init(deliveryTag: 1, multiple: true)))
            try await client.send(.txSelect(.init()), channel: 1)
            #expect(try await client.nextCloseCode() == 406)
            await client.close()
        }
    }

    @Test func channelErrorsCarryTheirCodes() async throws {
        try await Self.withBroker { port in
            let client = try await Self.client(port)
            try await client.send(.queueDeclare(.init(queue: "missing", passive: true)), channel: 1)
            #expect(try await client.nextCloseCode() == 404)
            // Everything but close-ok is ignored on the closing channel.
            try await client.send(.queueDeclare(.init(queue: "q")), channel: 1)
            try await client.send(.channelCloseOk(.init()), channel: 1)
            try await client.openChannel(1)
            try await client.send(.exchangeDeclare(.init(exchange: "amq.custom", type: "direct")), channel: 1)
            #expect(try await client.nextCloseCode() == 403)
            try await client.send(.channelCloseOk(.init()), channel: 1)
            try await client.openChannel(2)
            try await client.send(.exchangeDeclare(.init(exchange: "ex", type: "direct")), channel: 2)
            _ = try await client.nextMethod()
            try await client.send(.exchangeDeclare(.init(exchange: "ex", type: "fanout")), channel: 2)
            #expect(try await client.nextCloseCode() == 406)
            try await client.send(.channelCloseOk(.init()), channel: 2)
            try await client.openChannel(3)
            try await client.publish(channel: 3, exchange: "nope", routingKey: "", body: "x")
            #expect(try await client.nextCloseCode() == 404)
            await client.close()
        }
    }

    @Test func exclusiveQueueIsLockedToItsConnection() async throws {
        try await Self.withBroker { port in
            let owner = try await Self.client(port)
            try await owner.send(.queueDeclare(.init(queue: "mine", exclusive: true)), channel: 1)
            _ = try await owner.nextMethod()
            let other = try await Self.client(port)
            try await other.send(.basicConsume(.init(queue: "mine")), channel: 1)
            #expect(try await other.nextCloseCode() == 405)
            await owner.close()
            // Gone with its connection.
            try await other.send(.channelCloseOk(.init()), channel: 1)
            try await other.openChannel(2)
            var deleted = false
            for _ in 0..<50 where !deleted {
                try await other.send(.queueDeclare(.init(queue: "mine", passive: true)), channel: 2)
                if case .channelClose(let close) = try await other.nextMethod() {
                    deleted = close.replyCode == 404
                    try await other.send(.channelCloseOk(.init()), channel: 2)
                    try await other.openChannel(2)
                } else {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            #expect(deleted)
            await other.close()
        }
    }

    @Test func connectionErrors() async throws {
        try await Self.withBroker { port in
            let client = try await Self.client(port, channel: nil)
            try await client.send(.basicQos(.init(prefetchCount: 1)), channel: 5)
            #expect(try await client.nextCloseCode() == 504)
            let second = try await Self.client(port)
            try await second.send(.exchangeDeclare(.init(exchange: "e", type: "weird")), channel: 1)
            #expect(try await second.nextCloseCode() == 503)
            try await second.send(.connectionCloseOk(.init()))
            let third = try await Self.client(port)
            try await third.write([1, 0, 1, 0, 0, 0, 1, 0, 0])  // frame without 0xCE
            #expect(try await third.nextCloseCode() == 501)
            await client.close()
        }
    }

    @Test func prefetchLimitsDeliveriesUntilAck() async throws {
        try await Self.withBroker { port in
            let client = try await Self.client(port)
            try await client.send(.queueDeclare(.init(queue: "q")), channel: 1)
            _ = try await client.nextMethod()
            try await client.send(.basicQos(.init(prefetchCount: 1)), channel: 1)
            #expect(try await client.nextMethod() == .basicQosOk(.init()))
            for text in ["a", "b"] { try await client.publish(channel: 1, routingKey: "q", body: text) }
            try await client.send(.basicConsume(.init(queue: "q", consumerTag: "t")), channel: 1)
            _ = try await client.nextMethod()
            let (_, first) = try await client.nextContent()
            #expect(first == "a")
            // Only after the ack does the second one come.
            try await client.send(.queueDeclare(.init(queue: "q", passive: true)), channel: 1)
            #expect(try await client.nextMethod() == .queueDeclareOk(.init(queue: "q", messageCount: 1, consumerCount: 1)))
            try await client.send(.basicAck(.init(deliveryTag: 1)), channel: 1)
            let (_, second) = try await client.nextContent()
            #expect(second == "b")
            await client.close()
        }
    }

    @Test func userIDMustMatch() async throws {
        try await Self.withBroker { port in
            let client = try await Self.client(port)
            try await client.publish(channel: 1, routingKey: "x", body: "x", properties: BasicProperties(userId: "mallory"))
            #expect(try await client.nextCloseCode() == 406)
            await client.close()
        }
    }

    @Test func permissionsAreEnforced() async throws {
        let configuration = BrokerConfiguration(
            users: [BrokerUser(name: "guest", password: "guest")],
            permissions: [BrokerPermission(user: "guest", vhost: "/", configure: "^app\\.", write: "^app\\.", read: ".*")]
        )
        try await Self.withBroker(configuration) { port in
            let client = try await Self.client(port)
            try await client.send(.queueDeclare(.init(queue: "app.jobs")), channel: 1)
            guard case .queueDeclareOk = try await client.nextMethod() else { Issue.record("declare refused"); return }
            try await client.send(.queueDeclare(.init(queue: "other")), channel: 1)
            #expect(try await client.nextCloseCode() == 403)
            try await client.send(.channelCloseOk(.init()), channel: 1)
            try await client.openChannel(1)
            try await client.publish(channel: 1, routingKey: "app.jobs", body: "x")  // write on amq.default: refused
            #expect(try await client.nextCloseCode() == 403)
            await client.close()
        }
    }
}

/// Publisher flow control and frames split across reads, over real sockets.
@Suite struct FlowControlTests {
    static func declarePassive(_ client: TestFrameClient, _ queue: String) async throws -> UInt32? {
        try await client.send(.queueDeclare(.init(queue: queue, passive: true)), channel: 1)
        guard case .queueDeclareOk(let ok) = try await client.nextMethod() else { return nil }
        return ok.messageCount
    }

    /// `count` publishes in one write (under 2 KiB, so one read for the broker: flow
    /// control takes effect between reads).
    static func publishBatch(_ client: TestFrameClient, count: Int, body: String, then method: AMQP.Method? = nil) async throws {
        var buffer = ByteBuffer()
        for _ in 0..<count {
            try buffer.writeContent(
                channel: 1, method: .basicPublish(.init(routingKey: "backlog")), properties: BasicProperties(),
                body: ByteBuffer(string: body), frameMax: 131_072
            )
        }
        if let method { try buffer.writeMethodFrame(channel: 1, method) }
        #expect(buffer.readableBytes < 2048)
        try await client.channel.writeAndFlush(buffer)
    }

    /// Publishes 20 messages, which pass the limit, then 10 more, which the broker must
    /// not read until another connection drains the queue down to the low watermark.
    static func checkPublisherPausesAndResumes(_ limits: BrokerConfiguration.FlowLimits, body: String, drainTo: UInt32) async throws {
        try await EndToEndTests.withBroker(BrokerConfiguration(flowLimits: limits)) { port in
            let publisher = try await EndToEndTests.client(port)
            let observer = try await EndToEndTests.client(port)
            try await publisher.send(.queueDeclare(.init(queue: "backlog")), channel: 1)
            guard case .queueDeclareOk = try await publisher.nextMethod() else { Issue.record("no declare-ok"); return }
            // The declare is in the same read as the publishes, so it is still answered.
            try await Self.publishBatch(publisher, count: 20, body: body, then: .queueDeclare(.init(queue: "backlog", passive: true)))
            #expect(try await publisher.nextMethod() == .queueDeclareOk(.init(queue: "backlog", messageCount: 20)))

            try await Self.publishBatch(publisher, count: 10, body: body)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await Self.declarePassive(observer, "backlog") == 20, "a blocked publisher must not be read")

            var remaining: UInt32 = 20
            while remaining > drainTo {
                try await observer.send(.basicGet(.init(queue: "backlog", noAck: true)), channel: 1)
                guard case .basicGetOk = try await observer.nextContent().0 else { Issue.record("no get-ok"); return }
                remaining -= 1
            }
            // Resumed: the 10 held publishes arrive (bounded wait).
            var count: UInt32? = 0
            for _ in 0..<100 {
                count = try await Self.declarePassive(observer, "backlog")
                if count == drainTo + 10 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(count == drainTo + 10)
            // That passed the limit again; a purge resumes the publisher, whose own
            // connection is then read again.
            try await observer.send(.queuePurge(.init(queue: "backlog")), channel: 1)
            #expect(try await observer.nextMethod() == .queuePurgeOk(.init(messageCount: drainTo + 10)))
            #expect(try await Self.declarePassive(publisher, "backlog") == 0)
            await publisher.close()
            await observer.close()
        }
    }

    @Test func queueBacklogPausesPublisherUntilDrained() async throws {
        try await Self.checkPublisherPausesAndResumes(
            .init(queueMaxReady: 10, queueResumeReady: 5, maxBytes: 0, resumeBytes: 0), body: "x", drainTo: 5
        )
    }

    @Test func heldBytesPausePublisherUntilDrained() async throws {
        // 20 bodies of 10 bytes hold 200 bytes > 100; resume at 50 bytes = 5 messages.
        try await Self.checkPublisherPausesAndResumes(
            .init(queueMaxReady: 0, queueResumeReady: 0, maxBytes: 100, resumeBytes: 50), body: "0123456789", drainTo: 5
        )
    }

    @Test func consumingConnectionIsNeverPaused() async throws {
        let limits = BrokerConfiguration.FlowLimits(queueMaxReady: 2, queueResumeReady: 1, maxBytes: 0, resumeBytes: 0)
        try await EndToEndTests.withBroker(BrokerConfiguration(flowLimits: limits)) { port in
            let client = try await EndToEndTests.client(port)
            try await client.send(.queueDeclare(.init(queue: "own")), channel: 1)
            guard case .queueDeclareOk = try await client.nextMethod() else { Issue.record("no declare-ok"); return }
            try await client.send(.basicQos(.init(prefetchCount: 1)), channel: 1)
            #expect(try await client.nextMethod() == .basicQosOk(.init()))
            try await client.send(.basicConsume(.init(queue: "own", consumerTag: "c")), channel: 1)
            #expect(try await client.nextMethod() == .basicConsumeOk(.init(consumerTag: "c")))
            for index in 0..<10 { try await client.publish(channel: 1, routingKey: "own", body: "\(index)") }
            let (deliver, body) = try await client.nextContent()
            guard case .basicDeliver(let delivery) = deliver else { Issue.record("expected a delivery"); return }
            #expect(body == "0")
            // Its ack is what drains the queue, so its input keeps being read.
            try await Task.sleep(for: .milliseconds(100))
            try await client.send(.basicAck(.init(deliveryTag: delivery.deliveryTag)), channel: 1)
            let (_, next) = try await client.nextContent()
            #expect(next == "1")
            await client.close()
        }
    }

    @Test func framesSplitAcrossReadsAreReassembled() async throws {
        try await EndToEndTests.withBroker { port in
            let client = try await EndToEndTests.client(port)
            try await client.send(.queueDeclare(.init(queue: "split")), channel: 1)
            guard case .queueDeclareOk = try await client.nextMethod() else { Issue.record("no declare-ok"); return }
            let bodies = [String(repeating: "a", count: 50), String((0..<3000).map { Character(UnicodeScalar(UInt8(65 + $0 % 26))) })]
            var wire = ByteBuffer()
            for body in bodies {
                try wire.writeContent(
                    channel: 1, method: .basicPublish(.init(routingKey: "split")), properties: BasicProperties(contentType: "text/plain"),
                    body: ByteBuffer(string: body), frameMax: 131_072
                )
            }
            // Pieces of every size around the 7-byte frame header, each its own write.
            let sizes = [1, 2, 3, 6, 1, 7, 8, 13, 40, 999, 5]
            var index = 0
            while wire.readableBytes > 0 {
                let piece = wire.readBytes(length: Swift.min(sizes[index % sizes.count], wire.readableBytes))!
                try await client.write(piece)
                index += 1
                if index % 4 == 0 { try await Task.sleep(for: .milliseconds(2)) }
            }
            for body in bodies {
                try await client.send(.basicGet(.init(queue: "split", noAck: true)), channel: 1)
                let (method, received) = try await client.nextContent()
                guard case .basicGetOk = method else { Issue.record("expected get-ok, got \(method)"); return }
                #expect(received == body)
            }
            await client.close()
        }
    }
}
