import AMQPClient
import AMQPProtocol
import Broker
import NIOCore
import TestSupport
import Testing

/// Several broker URLs (a cluster's nodes) and `basic.cancel` from the broker, on embedded
/// brokers standing in for a cluster's nodes: each is a separate broker, so what a client
/// finds on the next one is what its recovery declared there.
@Suite("AMQPClient failover and consumer cancel", .timeLimit(.minutes(2)))
struct FailoverTests {
    static func configuration(_ urls: [String], waitTimeout: TimeAmount = .seconds(20), resumes: Bool = true) throws -> AMQPConnectionConfiguration {
        var configuration = try AMQPConnectionConfiguration(urls: urls)
        configuration.connectTimeout = .seconds(5)
        configuration.recovery = .init(enabled: true, initialBackoff: .milliseconds(50), maximumBackoff: .milliseconds(500), resumesCancelledConsumers: resumes)
        configuration.recoveryWaitTimeout = waitTimeout
        return configuration
    }

    // MARK: - URLs

    @Test func aCommaSeparatedListNamesTheNodesOfOneCluster() throws {
        let configuration = try AMQPConnectionConfiguration(url: "amqp://u:p@node1:5701/prod, amqp://node2:5702,amqp://u:p@node3/prod")
        #expect(configuration.host == "node1" && configuration.port == 5701)
        #expect(configuration.username == "u" && configuration.password == "p" && configuration.virtualHost == "prod")
        #expect(configuration.alternateEndpoints == [.init(host: "node2", port: 5702), .init(host: "node3", port: 5672)])
        #expect(configuration.endpoints.count == 3)
        #expect(configuration.redactedURL == "amqp://u@node1:5701/prod,amqp://u@node2:5702/prod,amqp://u@node3:5672/prod")
        // Repeated URLs (`--broker` given twice) read the same.
        #expect(try AMQPConnectionConfiguration(urls: ["amqp://u:p@node1:5701/prod", "amqp://node2:5702,amqp://u:p@node3/prod"]) == configuration)
        // One URL reads as it always did.
        let single = try AMQPConnectionConfiguration(url: "amqp://u:p@node1:5701/prod")
        #expect(single.alternateEndpoints.isEmpty)
        #expect(single.redactedURL == "amqp://u@node1:5701/prod")
        #expect(single.pointed(at: .init(host: "node9", port: 1)).redactedURL == "amqp://u@node9:1/prod")
    }

    @Test func theNodesOfAClusterShareOneLoginVhostAndScheme() {
        for bad in [
            "amqp://u:p@a/%2F,amqp://v:p@b/%2F",  // another user
            "amqp://u:p@a/%2F,amqp://u:q@b/%2F",  // another password
            "amqp://u:p@a/prod,amqp://b/test",  // another vhost
            "amqp://u:p@a/%2F,amqps://b/%2F",  // another scheme
            "amqp://u:p@a/%2F,,amqp://b/%2F",  // an empty URL
            "amqp://u:p@a/%2F,http://b/",  // not AMQP
        ] {
            #expect(throws: AMQPError.self, "\(bad)") { try AMQPConnectionConfiguration(url: bad) }
        }
    }

    // MARK: - Connecting and failing over

    /// The first node is down: the first connect goes on to the next, instead of failing.
    @Test func theFirstConnectSkipsANodeThatIsDown() async throws {
        let gone = try await TestBroker.start()
        let deadPort = gone.port
        try await gone.stop()
        try await withBroker { live in
            let connection = try await AMQPConnection.connect(try Self.configuration(["amqp://guest:guest@127.0.0.1:\(deadPort)/%2F", live.url]))
            #expect(connection.connectedEndpoint == .init(host: "127.0.0.1", port: live.port))
            let channel = try await connection.openChannel()
            try await channel.queueDeclare(name: "", exclusive: true)
            try await connection.close()
        }
    }

    /// Every node down: one error naming each.
    @Test func noNodeAnsweringIsOneErrorNamingEach() async throws {
        let first = try await TestBroker.start()
        let second = try await TestBroker.start()
        let ports = [first.port, second.port]
        try await first.stop()
        try await second.stop()
        let error = await #expect(throws: AMQPError.self) {
            try await AMQPConnection.connect(try Self.configuration(ports.map { "amqp://guest:guest@127.0.0.1:\($0)/%2F" }))
        }
        #expect(error?.code == .connectionRefused)
        for port in ports { #expect(error?.message.contains("127.0.0.1:\(port)") == true, "\(error?.message ?? "")") }
    }

    /// The node the client is on goes away: it reconnects to the next one, declares there
    /// what it had declared (exchange, queue, binding), consumes again, and the same
    /// consumer sequence goes on; a publish lands on the new node.
    @Test func losingItsNodeMovesTheClientToTheNextWithItsTopologyAndConsumers() async throws {
        let first = try await TestBroker.start()
        try await withBroker { second in
            let connection = try await AMQPConnection.connect(try Self.configuration([first.url, second.url]))
            #expect(connection.connectedEndpoint?.port == first.port)
            var recoveries = connection.recoveryEvents().makeAsyncIterator()
            let channel = try await connection.openChannel()
            try await channel.basicQos(prefetchCount: 5)
            try await channel.exchangeDeclare(name: "failover.fanout", type: "fanout", durable: true)
            try await channel.queueDeclare(name: "failover.inbox", durable: true)
            try await channel.queueBind(queue: "failover.inbox", exchange: "failover.fanout")
            let consumer = try await channel.consume(queue: "failover.inbox")
            var deliveries = consumer.makeAsyncIterator()
            try channel.publish("on the first node", exchange: "failover.fanout", routingKey: "")
            let before = try await next(&deliveries)
            #expect(before.bodyString == "on the first node")
            try before.ack()

            try await first.stop()
            #expect(await recoveries.next() == 1)
            #expect(connection.recoveryCount == 1)
            #expect(connection.connectedEndpoint?.port == second.port)

            try channel.publish("on the second node", exchange: "failover.fanout", routingKey: "")
            let after = try await next(&deliveries, seconds: 10)
            #expect(after.bodyString == "on the second node")
            try after.ack()
            let declared = try await channel.queueDeclare(name: "failover.inbox", passive: true)
            #expect(declared.consumerCount == 1)
            try await channel.queueDelete(name: "failover.inbox")
            try await channel.exchangeDelete(name: "failover.fanout")
            try await connection.close()
        }
    }

    // MARK: - basic.cancel

    /// The queue a consumer reads is deleted, then declared again (as a quorum queue comes
    /// back on another node): the consumer is registered again and its sequence goes on.
    @Test func aConsumerTheBrokerCancelledResumesWhenItsQueueIsBack() async throws {
        try await withBroker { broker in
            let connection = try await AMQPConnection.connect(try Self.configuration([broker.url]))
            let channel = try await connection.openChannel()
            try await channel.queueDeclare(name: "cancel.resume", durable: true)
            let consumer = try await channel.consume(queue: "cancel.resume", noAck: true)
            var deliveries = consumer.makeAsyncIterator()

            let other = try await AMQPConnection.connect(try Self.configuration([broker.url]))
            let admin = try await other.openChannel()
            try await admin.queueDelete(name: "cancel.resume")
            try await admin.queueDeclare(name: "cancel.resume", durable: true)
            // Bounded: the consumer is back once the queue counts it.
            var consumers: UInt32 = 0
            for _ in 0..<200 {
                consumers = try await admin.queueDeclare(name: "cancel.resume", passive: true).consumerCount
                if consumers == 1 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(consumers == 1)
            try admin.publish("after the cancel", routingKey: "cancel.resume")
            let message = try await next(&deliveries, seconds: 10)
            #expect(message.bodyString == "after the cancel")
            try await admin.queueDelete(name: "cancel.resume")
            try await other.close()
            try await connection.close()
        }
    }

    /// Without resumption, a cancel from the broker ends the sequence with an error that
    /// says so, not as if the application had cancelled.
    @Test func aCancelledConsumerThatIsNotResumedEndsWithAnError() async throws {
        try await withBroker { broker in
            let connection = try await AMQPConnection.connect(try Self.configuration([broker.url], resumes: false))
            let channel = try await connection.openChannel()
            try await channel.queueDeclare(name: "cancel.final")
            let consumer = try await channel.consume(queue: "cancel.final", noAck: true)
            var deliveries = consumer.makeAsyncIterator()
            let other = try await AMQPConnection.connect(try Self.configuration([broker.url]))
            try await other.openChannel().queueDelete(name: "cancel.final")
            let error = await #expect(throws: AMQPError.self) { _ = try await next(&deliveries, seconds: 10) }
            #expect(error?.code == .consumerCancelled)
            #expect(error?.message.contains("cancel.final") == true)
            // The channel itself is still usable.
            try await channel.queueDeclare(name: "", exclusive: true)
            try await other.close()
            try await connection.close()
        }
    }

    /// The queue never comes back: after `recoveryWaitTimeout` the sequence ends with an error.
    @Test func aCancelledConsumerWhoseQueueNeverComesBackEndsWithAnError() async throws {
        try await withBroker { broker in
            let connection = try await AMQPConnection.connect(try Self.configuration([broker.url], waitTimeout: .seconds(1)))
            let channel = try await connection.openChannel()
            try await channel.queueDeclare(name: "cancel.gone")
            let consumer = try await channel.consume(queue: "cancel.gone", noAck: true)
            var deliveries = consumer.makeAsyncIterator()
            let other = try await AMQPConnection.connect(try Self.configuration([broker.url]))
            try await other.openChannel().queueDelete(name: "cancel.gone")
            let error = await #expect(throws: AMQPError.self) { _ = try await next(&deliveries, seconds: 30) }
            #expect(error?.code == .consumerCancelled)
            #expect(error?.message.contains("did not come back") == true)
            try await other.close()
            try await connection.close()
        }
    }

    /// The application deletes, on its own connection, a queue it consumes: its consumer's
    /// sequence ends as it always did, nothing waits for the queue to come back.
    @Test func deletingItsOwnQueueEndsItsConsumerAtOnce() async throws {
        try await withBroker { broker in
            let connection = try await AMQPConnection.connect(try Self.configuration([broker.url]))
            let channel = try await connection.openChannel()
            try await channel.queueDeclare(name: "cancel.own")
            let consumer = try await channel.consume(queue: "cancel.own", noAck: true)
            let other = try await connection.openChannel()
            try await other.queueDelete(name: "cancel.own")
            let end = try await Scenarios.within(seconds: 10) { () async throws -> Bool in
                var iterator = consumer.makeAsyncIterator()
                return try await iterator.next() == nil
            }
            #expect(end == true)
            try await connection.close()
        }
    }

    /// The application cancels a consumer that was waiting to be resumed: its sequence ends
    /// normally, nothing waits for an answer the broker will not send.
    @Test func cancellingAConsumerWaitingToBeResumedEndsItsSequence() async throws {
        try await withBroker { broker in
            let connection = try await AMQPConnection.connect(try Self.configuration([broker.url]))
            let channel = try await connection.openChannel()
            try await channel.queueDeclare(name: "cancel.waiting")
            let consumer = try await channel.consume(queue: "cancel.waiting", noAck: true)
            let other = try await AMQPConnection.connect(try Self.configuration([broker.url]))
            try await other.openChannel().queueDelete(name: "cancel.waiting")
            // Bounded wait until the channel's probe has looked for the queue at least once
            // is not observable; cancelling at any point must end the sequence either way.
            try await Task.sleep(for: .milliseconds(200))
            try await consumer.cancel()
            let end = try await Scenarios.within(seconds: 10) { () async throws -> Bool in
                var iterator = consumer.makeAsyncIterator()
                return try await iterator.next() == nil
            }
            #expect(end == true)
            try await other.close()
            try await connection.close()
        }
    }
}
