import AMQPClient
import AMQPProtocol
import Broker
import Foundation
import Logging
import NIOCore
import TestSupport
import Testing

/// Queue arguments and exchange features, each scenario a function of a broker URL run
/// against our broker and, when `CONDUCTOR_RABBITMQ_URL` is set, RabbitMQ 3.10: what
/// RabbitMQ does is the specification.
enum QueueFeatureScenarios {
    static func unique(_ prefix: String) -> String { "\(prefix)-\(UInt32.random(in: 0...UInt32.max))" }

    static func connect(_ url: String) async throws -> AMQPConnection {
        var configuration = try AMQPConnectionConfiguration(url: url)
        configuration.connectTimeout = .seconds(5)
        configuration.recovery = .disabled
        return try await AMQPConnection.connect(configuration)
    }

    /// Polls `basic.get` until a message arrives (bounded).
    static func getEventually(_ channel: AMQPChannel, _ queue: String, seconds: Double = 5) async throws -> AMQPMessage? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let message = try await channel.get(queue: queue, noAck: true) { return message }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        return nil
    }

    static func drain(_ channel: AMQPChannel, _ queue: String) async throws -> [String] {
        var bodies: [String] = []
        for _ in 0..<1000 {
            guard let message = try await channel.get(queue: queue, noAck: true) else { break }
            bodies.append(message.bodyString)
        }
        return bodies
    }

    /// A fanout dead-letter exchange with one queue bound, both deleted by `cleanup`.
    static func deadLetterTarget(_ channel: AMQPChannel) async throws -> (exchange: String, queue: String) {
        let exchange = unique("qf.dlx")
        let queue = unique("qf.dead")
        try await channel.exchangeDeclare(name: exchange, type: "fanout")
        try await channel.queueDeclare(name: queue)
        try await channel.queueBind(queue: queue, exchange: exchange)
        return (exchange, queue)
    }

    static func death(_ message: AMQPMessage) -> FieldTable? {
        guard case .array(let deaths)? = message.properties.headers?["x-death"], case .table(let first)? = deaths.first else { return nil }
        return first
    }

    static func messageTTLDeadLetters(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let dead = try await deadLetterTarget(channel)
        let queue = unique("qf.ttl")
        try await channel.queueDeclare(name: queue, arguments: ["x-message-ttl": .int32(100), "x-dead-letter-exchange": .string(dead.exchange)])
        try channel.publish("short-lived", routingKey: queue)
        let message = try #require(try await getEventually(channel, dead.queue))
        #expect(message.bodyString == "short-lived")
        let death = try #require(Self.death(message))
        #expect(death["reason"]?.stringValue == "expired")
        #expect(death["queue"]?.stringValue == queue)
        #expect(death["exchange"]?.stringValue == "")
        #expect(death["count"]?.integerValue == 1)
        #expect(death["routing-keys"] == .array([.string(queue)]))
        #expect(message.properties.headers?["x-first-death-reason"]?.stringValue == "expired")
        #expect(message.properties.headers?["x-first-death-queue"]?.stringValue == queue)
        #expect(try await channel.queueDeclare(name: queue, passive: true).messageCount == 0)
        for name in [queue, dead.queue] { try await channel.queueDelete(name: name) }
        try await channel.exchangeDelete(name: dead.exchange)
        try await connection.close()
    }

    static func perMessageExpiration(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let target = unique("qf.expired")
        try await channel.queueDeclare(name: target)
        let queue = unique("qf.expiration")
        // Dead letters through the default exchange, to the queue named by the routing key.
        try await channel.queueDeclare(name: queue, arguments: ["x-dead-letter-exchange": .string(""), "x-dead-letter-routing-key": .string(target)])
        try channel.publish("later", routingKey: queue)
        try channel.publish("soon", routingKey: queue, properties: BasicProperties(expiration: "0"))
        // Not at the head: the expired one waits behind "later" (expiry happens at the head).
        let first = try #require(try await channel.get(queue: queue, noAck: true))
        #expect(first.bodyString == "later")
        let message = try #require(try await getEventually(channel, target))
        #expect(message.bodyString == "soon")
        #expect(message.properties.expiration == nil)
        #expect(message.routingKey == target)
        let death = try #require(Self.death(message))
        #expect(death["original-expiration"]?.stringValue == "0")
        #expect(death["reason"]?.stringValue == "expired")
        for name in [queue, target] { try await channel.queueDelete(name: name) }
        try await connection.close()
    }

    static func maxLengthDropsHead(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let dead = try await deadLetterTarget(channel)
        let queue = unique("qf.maxlen")
        try await channel.queueDeclare(name: queue, arguments: ["x-max-length": .int32(2), "x-dead-letter-exchange": .string(dead.exchange)])
        try await channel.confirmSelect()
        for index in 1...5 { try channel.publish("m\(index)", routingKey: queue) }
        #expect(try await channel.waitForConfirms() == [])
        #expect(try await drain(channel, queue) == ["m4", "m5"])
        var dropped: [String] = []
        for _ in 0..<3 {
            guard let message = try await getEventually(channel, dead.queue) else { break }
            dropped.append(message.bodyString)
            #expect(death(message)?["reason"]?.stringValue == "maxlen")
        }
        #expect(dropped == ["m1", "m2", "m3"])
        for name in [queue, dead.queue] { try await channel.queueDelete(name: name) }
        try await channel.exchangeDelete(name: dead.exchange)
        try await connection.close()
    }

    static func maxLengthBytesDropsHead(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let queue = unique("qf.maxbytes")
        try await channel.queueDeclare(name: queue, arguments: ["x-max-length-bytes": .int32(10)])
        try await channel.confirmSelect()
        for body in ["aaaaa", "bbbbb", "ccccc"] { try channel.publish(body, routingKey: queue) }
        #expect(try await channel.waitForConfirms() == [])
        #expect(try await drain(channel, queue) == ["bbbbb", "ccccc"])
        try await channel.queueDelete(name: queue)
        try await connection.close()
    }

    static func rejectPublishNacks(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let queue = unique("qf.reject")
        try await channel.queueDeclare(name: queue, arguments: ["x-max-length": .int32(2), "x-overflow": .string("reject-publish")])
        try await channel.confirmSelect()
        for index in 1...4 { try channel.publish("m\(index)", routingKey: queue) }
        #expect(try await channel.waitForConfirms() == [3, 4])
        #expect(try await drain(channel, queue) == ["m1", "m2"])
        // Room again: accepted and acked.
        try channel.publish("m5", routingKey: queue)
        #expect(try await channel.waitForConfirms() == [])
        try await channel.queueDelete(name: queue)
        try await connection.close()
    }

    /// reject-publish-dlx: the refused publish is nacked to the confirming publisher and
    /// dead-lettered (reason `maxlen`), as RabbitMQ 3.10's classic queues do.
    static func rejectPublishDLXNacksAndDeadLetters(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let dead = try await deadLetterTarget(channel)
        let queue = unique("qf.reject-dlx")
        try await channel.queueDeclare(name: queue, arguments: [
            "x-max-length": .int32(1), "x-overflow": .string("reject-publish-dlx"), "x-dead-letter-exchange": .string(dead.exchange),
        ])
        try await channel.confirmSelect()
        for index in 1...3 { try channel.publish("m\(index)", routingKey: queue) }
        #expect(try await channel.waitForConfirms() == [2, 3])
        var refused: [String] = []
        for _ in 0..<2 {
            guard let message = try await getEventually(channel, dead.queue) else { break }
            refused.append(message.bodyString)
            let entry = try #require(Self.death(message))
            #expect(entry["reason"]?.stringValue == "maxlen")
            #expect(entry["queue"]?.stringValue == queue)
            #expect(entry["count"]?.integerValue == 1)
            #expect(entry["routing-keys"] == .array([.string(queue)]))
        }
        #expect(refused == ["m2", "m3"])
        #expect(try await drain(channel, queue) == ["m1"])
        // Without confirms the refused message is still dead-lettered.
        try await channel.close()
        let plain = try await connection.openChannel()
        try plain.publish("p1", routingKey: queue)
        try plain.publish("p2", routingKey: queue)
        #expect(try await getEventually(plain, dead.queue)?.bodyString == "p2")
        #expect(try await drain(plain, queue) == ["p1"])
        for name in [queue, dead.queue] { try await plain.queueDelete(name: name) }
        try await plain.exchangeDelete(name: dead.exchange)
        try await connection.close()
    }

    static func rejectedMessagesDeadLetter(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let dead = try await deadLetterTarget(channel)
        let queue = unique("qf.rejected")
        try await channel.queueDeclare(name: queue, arguments: ["x-dead-letter-exchange": .string(dead.exchange)])
        try channel.publish("no thanks", routingKey: queue, properties: BasicProperties(headers: ["app": .string("kept")]))
        let delivered = try #require(try await getEventuallyAcked(channel, queue))
        try delivered.reject(requeue: false)
        let message = try #require(try await getEventually(channel, dead.queue))
        #expect(message.bodyString == "no thanks")
        #expect(message.properties.headers?["app"]?.stringValue == "kept")
        #expect(death(message)?["reason"]?.stringValue == "rejected")
        for name in [queue, dead.queue] { try await channel.queueDelete(name: name) }
        try await channel.exchangeDelete(name: dead.exchange)
        try await connection.close()
    }

    static func getEventuallyAcked(_ channel: AMQPChannel, _ queue: String) async throws -> AMQPMessage? {
        for _ in 0..<250 {
            if let message = try await channel.get(queue: queue, noAck: false) { return message }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        return nil
    }

    static func priorities(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let queue = unique("qf.priority")
        try await channel.queueDeclare(name: queue, arguments: ["x-max-priority": .int32(10)])
        try await channel.confirmSelect()
        for (body, priority) in [("p1", 1), ("p5", 5), ("p9", 9), ("p0", 0), ("p5b", 5), ("p20", 20)] {
            try channel.publish(body, routingKey: queue, properties: BasicProperties(priority: UInt8(priority)))
        }
        try channel.publish("none", routingKey: queue)
        #expect(try await channel.waitForConfirms() == [])
        // Above the maximum counts as the maximum; no priority as 0; FIFO within a level.
        #expect(try await drain(channel, queue) == ["p20", "p9", "p5", "p5b", "p1", "p0", "none"])
        try await channel.queueDelete(name: queue)
        try await connection.close()
    }

    static func alternateExchange(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let alternate = unique("qf.ae")
        let unrouted = unique("qf.unrouted")
        let exchange = unique("qf.main")
        let routed = unique("qf.routed")
        try await channel.exchangeDeclare(name: alternate, type: "fanout")
        try await channel.queueDeclare(name: unrouted)
        try await channel.queueBind(queue: unrouted, exchange: alternate)
        try await channel.exchangeDeclare(name: exchange, type: "direct", arguments: ["alternate-exchange": .string(alternate)])
        try await channel.queueDeclare(name: routed)
        try await channel.queueBind(queue: routed, exchange: exchange, routingKey: "known")
        try await channel.confirmSelect()
        try channel.publish("to known", exchange: exchange, routingKey: "known", mandatory: true)
        try channel.publish("to nowhere", exchange: exchange, routingKey: "unknown", mandatory: true)
        #expect(try await channel.waitForConfirms() == [])
        #expect(try await drain(channel, routed) == ["to known"])
        let message = try #require(try await getEventually(channel, unrouted))
        #expect(message.bodyString == "to nowhere")
        #expect(message.exchange == exchange)
        #expect(message.routingKey == "unknown")
        for name in [routed, unrouted] { try await channel.queueDelete(name: name) }
        for name in [exchange, alternate] { try await channel.exchangeDelete(name: name) }
        try await connection.close()
    }

    static func singleActiveConsumer(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let queue = unique("qf.sac")
        try await channel.queueDeclare(name: queue, arguments: ["x-single-active-consumer": .bool(true)])
        let first = try await channel.consume(queue: queue, consumerTag: "first")
        let second = try await channel.consume(queue: queue, consumerTag: "second")
        var firstIterator = first.makeAsyncIterator()
        var secondIterator = second.makeAsyncIterator()
        for index in 1...4 { try channel.publish("m\(index)", routingKey: queue) }
        for index in 1...4 {
            let message = try await next(&firstIterator)
            #expect(message.bodyString == "m\(index)")
            try message.ack()
        }
        try await first.cancel()
        try channel.publish("m5", routingKey: queue)
        let message = try await next(&secondIterator)
        #expect(message.bodyString == "m5")
        #expect(message.consumerTag == "second")
        try message.ack()
        try await second.cancel()
        try await channel.queueDelete(name: queue)
        try await connection.close()
    }

    static func unusedQueueExpires(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let queue = unique("qf.expires")
        try await channel.queueDeclare(name: queue, arguments: ["x-expires": .int32(300)])
        // Any declare (passive too) counts as use, so look only once, well after 300 ms.
        try await Task.sleep(nanoseconds: 2_000_000_000)
        var gone = false
        do {
            try await channel.queueDeclare(name: queue, passive: true)
        } catch let error as AMQPError {
            #expect(error.replyCode == 404)
            gone = true
        }
        #expect(gone)
        try await connection.close()
    }

    static func invalidArgumentsAreRefused(_ url: String) async throws {
        let connection = try await connect(url)
        for arguments: FieldTable in [["x-max-length": .string("ten")], ["x-message-ttl": .int32(-1)], ["x-overflow": .string("sideways")]] {
            let channel = try await connection.openChannel()
            do {
                try await channel.queueDeclare(name: unique("qf.invalid"), arguments: arguments)
                Issue.record("queue.declare with \(arguments) was accepted")
            } catch let error as AMQPError {
                #expect(error.replyCode == 406)
            }
        }
        // Declaring again with another limit: 406 inequivalent arg.
        let channel = try await connection.openChannel()
        let queue = unique("qf.equivalent")
        try await channel.queueDeclare(name: queue, arguments: ["x-max-length": .int32(5)])
        try await channel.queueDeclare(name: queue, arguments: ["x-max-length": .int64(5)])
        let other = try await connection.openChannel()
        do {
            try await other.queueDeclare(name: queue, arguments: ["x-max-length": .int32(6)])
            Issue.record("a different x-max-length was accepted")
        } catch let error as AMQPError {
            #expect(error.replyCode == 406)
        }
        try await channel.queueDelete(name: queue)
        try await connection.close()
    }

}

@Suite("Queue features on our broker", .timeLimit(.minutes(2)))
struct QueueFeatureTests {
    @Test func messageTTLDeadLetters() async throws { try await withBroker { try await QueueFeatureScenarios.messageTTLDeadLetters($0.url) } }
    @Test func perMessageExpiration() async throws { try await withBroker { try await QueueFeatureScenarios.perMessageExpiration($0.url) } }
    @Test func maxLengthDropsHead() async throws { try await withBroker { try await QueueFeatureScenarios.maxLengthDropsHead($0.url) } }
    @Test func maxLengthBytesDropsHead() async throws { try await withBroker { try await QueueFeatureScenarios.maxLengthBytesDropsHead($0.url) } }
    @Test func rejectPublishNacks() async throws { try await withBroker { try await QueueFeatureScenarios.rejectPublishNacks($0.url) } }
    @Test func rejectPublishDLXNacksAndDeadLetters() async throws { try await withBroker { try await QueueFeatureScenarios.rejectPublishDLXNacksAndDeadLetters($0.url) } }
    @Test func rejectedMessagesDeadLetter() async throws { try await withBroker { try await QueueFeatureScenarios.rejectedMessagesDeadLetter($0.url) } }
    @Test func priorities() async throws { try await withBroker { try await QueueFeatureScenarios.priorities($0.url) } }
    @Test func alternateExchange() async throws { try await withBroker { try await QueueFeatureScenarios.alternateExchange($0.url) } }
    @Test func singleActiveConsumer() async throws { try await withBroker { try await QueueFeatureScenarios.singleActiveConsumer($0.url) } }
    @Test func unusedQueueExpires() async throws { try await withBroker { try await QueueFeatureScenarios.unusedQueueExpires($0.url) } }
    @Test func invalidArgumentsAreRefused() async throws { try await withBroker { try await QueueFeatureScenarios.invalidArgumentsAreRefused($0.url) } }
}

@Suite("Queue features on RabbitMQ", .enabled(if: RabbitMQEnvironment.url != nil), .timeLimit(.minutes(2)))
struct QueueFeatureRabbitMQTests {
    let url = RabbitMQEnvironment.url ?? ""

    @Test func messageTTLDeadLetters() async throws { try await QueueFeatureScenarios.messageTTLDeadLetters(self.url) }
    @Test func perMessageExpiration() async throws { try await QueueFeatureScenarios.perMessageExpiration(self.url) }
    @Test func maxLengthDropsHead() async throws { try await QueueFeatureScenarios.maxLengthDropsHead(self.url) }
    @Test func maxLengthBytesDropsHead() async throws { try await QueueFeatureScenarios.maxLengthBytesDropsHead(self.url) }
    @Test func rejectPublishNacks() async throws { try await QueueFeatureScenarios.rejectPublishNacks(self.url) }
    @Test func rejectPublishDLXNacksAndDeadLetters() async throws { try await QueueFeatureScenarios.rejectPublishDLXNacksAndDeadLetters(self.url) }
    @Test func rejectedMessagesDeadLetter() async throws { try await QueueFeatureScenarios.rejectedMessagesDeadLetter(self.url) }
    @Test func priorities() async throws { try await QueueFeatureScenarios.priorities(self.url) }
    @Test func alternateExchange() async throws { try await QueueFeatureScenarios.alternateExchange(self.url) }
    @Test func singleActiveConsumer() async throws { try await QueueFeatureScenarios.singleActiveConsumer(self.url) }
    @Test func unusedQueueExpires() async throws { try await QueueFeatureScenarios.unusedQueueExpires(self.url) }
    @Test func invalidArgumentsAreRefused() async throws { try await QueueFeatureScenarios.invalidArgumentsAreRefused(self.url) }
}
