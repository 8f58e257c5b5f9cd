import AMQPProtocol
import Logging
import NIOCore
import Testing

@testable import Broker

/// Real loopback sockets, raw frames: what a standard client sees.
@Suite struct EndToEndTests {
    static func withBroker(
        _ configuration: BrokerConfiguration = BrokerConfiguration(port: 0),
        _ body: (Int) async throws -> Void
    ) async throws {
        var configuration = configuration
        configuration.port = 0
        let server = BrokerServer(configuration: configuration, logger: Logger(label: "test.broker"))
        let port = try await server.start()
        do {
            try await body(port)
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
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
