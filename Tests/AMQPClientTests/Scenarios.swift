import AMQPClient
import AMQPProtocol
import Foundation
import NIOCore
import TestSupport
import Testing

/// End-to-end scenarios, each a function of the broker URL, run against both RabbitMQ
/// (`CONDUCTOR_RABBITMQ_URL`) and the embedded broker.
enum Scenarios {
    static func unique(_ prefix: String) -> String {
        "\(prefix)-\(UInt32.random(in: 0...UInt32.max))"
    }

    static func connect(_ url: String, recovery: Bool = false) async throws -> AMQPConnection {
        var configuration = try AMQPConnectionConfiguration(url: url)
        configuration.connectTimeout = .seconds(5)
        configuration.recovery = recovery ? .init(enabled: true, initialBackoff: .milliseconds(50), maximumBackoff: .milliseconds(500)) : .disabled
        configuration.recoveryWaitTimeout = .seconds(15)
        return try await AMQPConnection.connect(configuration)
    }

    static func declareBindPublishConsumeAck(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let exchange = unique("client.topic")
        try await channel.exchangeDeclare(name: exchange, type: "topic", autoDelete: true)
        let queue = try await channel.queueDeclare(name: "", exclusive: true)
        #expect(queue.name.count > 0)
        try await channel.queueBind(queue: queue.name, exchange: exchange, routingKey: "agent.*.facts")
        let consumer = try await channel.consume(queue: queue.name)
        var iterator = consumer.makeAsyncIterator()
        let properties = BasicProperties(contentType: "application/json", headers: ["qmf.opcode": .string("_data_indication")], correlationId: "c-1")
        for index in 0..<10 {
            try channel.publish("message \(index)", exchange: exchange, routingKey: "agent.\(index).facts", properties: properties)
        }
        try channel.publish("not routed", exchange: exchange, routingKey: "agent.x.other")
        for index in 0..<10 {
            let message = try await next(&iterator)
            #expect(message.bodyString == "message \(index)")
            #expect(message.routingKey == "agent.\(index).facts")
            #expect(message.exchange == exchange)
            #expect(message.properties.correlationId == "c-1")
            #expect(message.properties.headers?["qmf.opcode"] == .string("_data_indication"))
            #expect(message.consumerTag == consumer.consumerTag)
            try message.ack()
        }
        try await consumer.cancel()
        #expect(try await iterator.next() == nil)
        let declared = try await channel.queueDeclare(name: queue.name, passive: true)
        #expect(declared.messageCount == 0)
        try await connection.close()
    }

    static func nackRequeueAndReject(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let queue = try await channel.queueDeclare(name: "", exclusive: true).name
        try channel.publish("first", routingKey: queue)
        let consumer = try await channel.consume(queue: queue)
        var iterator = consumer.makeAsyncIterator()
        let first = try await next(&iterator)
        #expect(!first.redelivered)
        try first.nack(requeue: true)
        let again = try await next(&iterator)
        #expect(again.bodyString == "first")
        #expect(again.redelivered)
        try again.reject(requeue: false)
        try await consumer.cancel()
        // Rejected without requeue: gone.
        #expect(try await channel.get(queue: queue) == nil)
        try await connection.close()
    }

    static func qosLimitsInFlight(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        try await channel.basicQos(prefetchCount: 3)
        let queue = try await channel.queueDeclare(name: "", exclusive: true).name
        for index in 0..<10 { try channel.publish("\(index)", routingKey: queue) }
        let consumer = try await channel.consume(queue: queue)
        var iterator = consumer.makeAsyncIterator()
        var received: [AMQPMessage] = []
        for _ in 0..<3 { received.append(try await next(&iterator)) }
        // No fourth delivery while three are unacknowledged: seven stay ready in the queue.
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(try await channel.queueDeclare(name: queue, passive: true).messageCount == 7)
        try received.last!.ack(multiple: true)
        for _ in 0..<3 { received.append(try await next(&iterator)) }
        #expect(received.map(\.bodyString) == ["0", "1", "2", "3", "4", "5"])
        try await connection.close()
    }

    static func getAndGetEmpty(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let queue = try await channel.queueDeclare(name: "", exclusive: true).name
        #expect(try await channel.get(queue: queue) == nil)
        try channel.publish("a", routingKey: queue)
        try channel.publish("b", routingKey: queue)
        try await Task.sleep(nanoseconds: 100_000_000)
        let message = try #require(try await channel.get(queue: queue, noAck: true))
        #expect(message.bodyString == "a")
        #expect(message.messageCount == 1)
        #expect(try await channel.queuePurge(name: queue) == 1)
        #expect(try await channel.get(queue: queue) == nil)
        #expect(try await channel.queueDelete(name: queue) == 0)
        try await connection.close()
    }

    static func mandatoryReturn(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        var returns = channel.returns.makeAsyncIterator()
        try channel.publish("lost", exchange: "amq.direct", routingKey: unique("nobody"), mandatory: true)
        let returned = try #require(await returns.next())
        #expect(returned.replyCode == 312)
        #expect(returned.replyText == "NO_ROUTE")
        #expect(String(buffer: returned.body) == "lost")
        try await connection.close()
    }

    static func confirms(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        let queue = try await channel.queueDeclare(name: "", exclusive: true).name
        try await channel.publishConfirmed("one", routingKey: queue)
        var sequences: [UInt64] = []
        for index in 0..<500 {
            sequences.append(try #require(try channel.publish("batch \(index)", routingKey: queue)))
        }
        #expect(sequences.first == 2)
        #expect(sequences.last == 501)
        #expect(try await channel.waitForConfirms() == [])
        #expect(try await channel.queueDeclare(name: queue, passive: true).messageCount == 501)
        try await connection.close()
    }

    /// A channel that fetches and acks (basic.get + basic.ack from us) still gets its
    /// publisher confirms: only publishes take confirm sequence numbers, not our acks.
    static func confirmsAfterGetAndAck(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        let queue = try await channel.queueDeclare(name: "", exclusive: true).name
        try await channel.publishConfirmed("first", routingKey: queue)
        let fetched = try #require(try await channel.get(queue: queue))
        try fetched.ack()
        var sequences: [UInt64?] = []
        for index in 0..<10 { sequences.append(try channel.publish("after \(index)", routingKey: queue)) }
        #expect(sequences == (2...11).map { $0 }, "the ack took a sequence number")
        let confirmed = try await within(seconds: 10) { try await channel.waitForConfirms() }
        #expect(confirmed == [], "waitForConfirms did not return within 10 s")
        #expect(try await channel.queueDeclare(name: queue, passive: true).messageCount == 10)
        try await connection.close()
    }

    /// `body`'s result, or nil when it takes longer than `seconds` (it is then left
    /// running: a wait that ignores cancellation must not hang the test run).
    static func within<T: Sendable>(seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        let (stream, continuation) = AsyncStream.makeStream(of: Result<T, any Error>?.self)
        let work = Task {
            do { continuation.yield(.success(try await body())) } catch { continuation.yield(.failure(error)) }
        }
        let timer = Task {
            try? await Task.sleep(for: .seconds(seconds))
            continuation.yield(nil)
        }
        defer {
            work.cancel()
            timer.cancel()
            continuation.finish()
        }
        for await first in stream { return try first?.get() }
        return nil
    }

    static func transactions(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let queue = try await channel.queueDeclare(name: "", exclusive: true).name
        try await channel.txSelect()
        try channel.publish("rolled back", routingKey: queue)
        try await channel.txRollback()
        try channel.publish("committed", routingKey: queue)
        try await channel.txCommit()
        let message = try #require(try await channel.get(queue: queue))
        #expect(message.bodyString == "committed")
        try message.ack()
        try await channel.txCommit()
        #expect(try await channel.get(queue: queue) == nil)
        try await connection.close()
    }

    static func exclusiveQueueLocked(_ url: String) async throws {
        let owner = try await connect(url)
        let queue = try await owner.openChannel().queueDeclare(name: unique("client.exclusive"), exclusive: true).name
        let other = try await connect(url)
        let channel = try await other.openChannel()
        let error = await #expect(throws: AMQPError.self) {
            try await channel.queueDeclare(name: queue, exclusive: false)
        }
        #expect(error?.code == .channelClosed)
        #expect(error?.replyCode == 405)
        #expect(error?.classID == 50)
        // The channel stays closed with that error.
        let later = await #expect(throws: AMQPError.self) { try await channel.get(queue: queue) }
        #expect(later?.replyCode == 405)
        // The connection is fine.
        _ = try await other.openChannel().queueDeclare(name: "", exclusive: true)
        try await other.close()
        try await owner.close()
    }

    static func passiveDeclareMissing(_ url: String) async throws {
        let connection = try await connect(url)
        let channel = try await connection.openChannel()
        let error = await #expect(throws: AMQPError.self) {
            try await channel.queueDeclare(name: unique("client.missing"), passive: true)
        }
        #expect(error?.replyCode == 404)
        #expect(error?.code == .channelClosed)
        try await connection.close()
    }

    static func wrongPassword(_ url: String) async throws {
        var configuration = try AMQPConnectionConfiguration(url: url)
        configuration.password = "definitely-wrong"
        configuration.connectTimeout = .seconds(5)
        let error = await #expect(throws: AMQPError.self) {
            try await AMQPConnection.connect(configuration)
        }
        #expect(error?.code == .authenticationFailed, "\(String(describing: error))")
        #expect(error?.replyCode == 403)
    }

    static func largeMessage(_ url: String) async throws {
        let connection = try await connect(url)
        #expect(connection.negotiatedFrameMax > 0)
        #expect(connection.negotiatedFrameMax < 1 << 20)
        let channel = try await connection.openChannel()
        let queue = try await channel.queueDeclare(name: "", exclusive: true).name
        let body = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try channel.publish(body, routingKey: queue)
        let consumer = try await channel.consume(queue: queue, noAck: true)
        var iterator = consumer.makeAsyncIterator()
        let message = try await next(&iterator, seconds: 10)
        #expect(message.body.readableBytes == 1 << 20)
        #expect(Array(message.body.readableBytesView) == body)
        try await connection.close()
    }

    /// Recovery: the connection drops (`breakConnection`), the client reconnects,
    /// re-declares the exchange, the server-named queue and its binding, and the same
    /// consumer sequence keeps yielding.
    static func recovery(_ url: String, breakConnection: () async throws -> Void) async throws {
        let connection = try await connect(url, recovery: true)
        let channel = try await connection.openChannel()
        try await channel.basicQos(prefetchCount: 10)
        let exchange = unique("client.recovery")
        try await channel.exchangeDeclare(name: exchange, type: "fanout", autoDelete: false)
        let originalQueue = try await channel.queueDeclare(name: "", exclusive: true).name
        try await channel.queueBind(queue: originalQueue, exchange: exchange)
        let consumer = try await channel.consume(queue: originalQueue)
        var iterator = consumer.makeAsyncIterator()
        try channel.publish("before", exchange: exchange, routingKey: "")
        let before = try await next(&iterator)
        #expect(before.bodyString == "before")
        try before.ack()

        var recoveries = connection.recoveries.makeAsyncIterator()
        try await breakConnection()
        let attempts = await recoveries.next()
        #expect(attempts != nil)
        #expect(connection.isConnected)

        // The exchange and binding are back: a publish through the exchange reaches the
        // re-declared queue and the old consumer sequence.
        try channel.publish("after", exchange: exchange, routingKey: "")
        let after = try await next(&iterator, seconds: 10)
        #expect(after.bodyString == "after")
        try after.ack()
        // The old name still works for queue operations (mapped to the new one).
        let declared = try await channel.queueDeclare(name: originalQueue, passive: true)
        #expect(declared.consumerCount == 1)
        try await channel.exchangeDelete(name: exchange)
        try await connection.close()
    }
}
