import AMQPClient
import AMQPProtocol
import Foundation
import Logging
import TestSupport
import Testing

@testable import Broker

/// Dead-letter cycles: a message that would be dead-lettered into a queue it already died
/// in is dropped there when no death on the way was a rejection (RabbitMQ 3.10's rule);
/// a cycle with a `basic.reject` in it is the client's choice and keeps going. Each
/// scenario runs against our broker and, with `CONDUCTOR_RABBITMQ_URL`, against RabbitMQ.
enum DeadLetterScenarios {
    typealias Q = QueueFeatureScenarios

    static func messageCount(_ channel: AMQPChannel, _ queue: String) async throws -> UInt32 {
        try await channel.queueDeclare(name: queue, passive: true).messageCount
    }

    /// Polls the ready count of `queue` until it is `expected` (bounded); returns the last count.
    @discardableResult
    static func awaitCount(_ channel: AMQPChannel, _ queue: String, _ expected: UInt32, seconds: Double = 5) async throws -> UInt32 {
        let deadline = Date().addingTimeInterval(seconds)
        var count = try await messageCount(channel, queue)
        while count != expected, Date() < deadline {
            try await Task.sleep(nanoseconds: 20_000_000)
            count = try await messageCount(channel, queue)
        }
        return count
    }

    static func deaths(_ message: AMQPMessage) -> [(queue: String, reason: String, count: Int64)] {
        guard case .array(let deaths)? = message.properties.headers?["x-death"] else { return [] }
        return deaths.compactMap { value in
            guard case .table(let table) = value else { return nil }
            return (table["queue"]?.stringValue ?? "", table["reason"]?.stringValue ?? "", table["count"]?.integerValue ?? 0)
        }
    }

    /// The classic self-cycle: TTL, dead-lettered to the default exchange under the
    /// message's own routing key, i.e. back into the same queue. It dies once and is gone.
    static func expiredSelfCycleIsDropped(_ url: String) async throws {
        let connection = try await Q.connect(url)
        let channel = try await connection.openChannel()
        let queue = Q.unique("dl.self")
        try await channel.queueDeclare(name: queue, arguments: ["x-message-ttl": .int32(100), "x-dead-letter-exchange": .string("")])
        try await channel.confirmSelect()
        try channel.publish("round and round", routingKey: queue)
        #expect(try await channel.waitForConfirms() == [])
        #expect(try await awaitCount(channel, queue, 0) == 0)
        // Circulating, it would be back in the queue at once after every expiry.
        for _ in 0..<5 {
            try await Task.sleep(nanoseconds: 100_000_000)
            #expect(try await messageCount(channel, queue) == 0)
        }
        #expect(try await channel.get(queue: queue, noAck: true) == nil)
        try await channel.queueDelete(name: queue)
        try await connection.close()
    }

    /// A → B → A, both by expiry, each hop also copied to a witness queue (fanout dead-letter
    /// exchanges): B gets it once, and on the way back A is refused while A's witness, never
    /// part of the cycle, still gets its copy. Nothing more arrives afterwards.
    static func expiredTwoQueueCycleIsDropped(_ url: String) async throws {
        let connection = try await Q.connect(url)
        let channel = try await connection.openChannel()
        let (queueA, queueB) = (Q.unique("dl.a"), Q.unique("dl.b"))
        let (toA, toB) = (Q.unique("dl.to-a"), Q.unique("dl.to-b"))
        let (witnessA, witnessB) = (Q.unique("dl.witness-a"), Q.unique("dl.witness-b"))
        for exchange in [toA, toB] { try await channel.exchangeDeclare(name: exchange, type: "fanout") }
        try await channel.queueDeclare(name: queueA, arguments: ["x-message-ttl": .int32(100), "x-dead-letter-exchange": .string(toB)])
        try await channel.queueDeclare(name: queueB, arguments: ["x-message-ttl": .int32(100), "x-dead-letter-exchange": .string(toA)])
        for name in [witnessA, witnessB] { try await channel.queueDeclare(name: name) }
        for (queue, exchange) in [(queueA, toA), (witnessA, toA), (queueB, toB), (witnessB, toB)] {
            try await channel.queueBind(queue: queue, exchange: exchange)
        }
        try await channel.confirmSelect()
        try channel.publish("there and back", routingKey: queueA)
        #expect(try await channel.waitForConfirms() == [])

        #expect(try await awaitCount(channel, witnessA, 1) == 1)
        for _ in 0..<5 {
            try await Task.sleep(nanoseconds: 100_000_000)
            for queue in [queueA, queueB] { #expect(try await messageCount(channel, queue) == 0) }
        }
        for queue in [witnessA, witnessB] { #expect(try await messageCount(channel, queue) == 1) }
        let afterA = try #require(try await channel.get(queue: witnessB, noAck: true))
        #expect(deaths(afterA).map(\.queue) == [queueA])
        let afterB = try #require(try await channel.get(queue: witnessA, noAck: true))
        #expect(deaths(afterB).map(\.queue) == [queueB, queueA])
        #expect(deaths(afterB).allSatisfy { $0.reason == "expired" && $0.count == 1 })

        for name in [queueA, queueB, witnessA, witnessB] { try await channel.queueDelete(name: name) }
        for exchange in [toA, toB] { try await channel.exchangeDelete(name: exchange) }
        try await connection.close()
    }

    /// The same self-cycle, driven by `basic.reject(requeue: false)`: the client chose it, so
    /// the message comes back every time with its `rejected` count one higher.
    static func rejectedSelfCycleKeepsGoing(_ url: String) async throws {
        let connection = try await Q.connect(url)
        let channel = try await connection.openChannel()
        let queue = Q.unique("dl.reject")
        try await channel.queueDeclare(name: queue, arguments: ["x-dead-letter-exchange": .string("")])
        try channel.publish("again", routingKey: queue)
        for round in 0..<4 {
            let message = try #require(try await Q.getEventuallyAcked(channel, queue), "round \(round)")
            #expect(message.bodyString == "again")
            if round == 0 {
                #expect(deaths(message).isEmpty)
            } else {
                let deaths = deaths(message)
                #expect(deaths.count == 1)
                #expect(deaths.first?.queue == queue)
                #expect(deaths.first?.reason == "rejected")
                #expect(deaths.first?.count == Int64(round))
            }
            if round < 3 { try message.reject(requeue: false) } else { try message.ack() }
        }
        #expect(try await awaitCount(channel, queue, 0) == 0)
        try await channel.queueDelete(name: queue)
        try await connection.close()
    }
}

@Suite("Dead-letter cycles on our broker", .timeLimit(.minutes(1)))
struct DeadLetterTests {
    @Test func expiredSelfCycleIsDropped() async throws { try await withBroker { try await DeadLetterScenarios.expiredSelfCycleIsDropped($0.url) } }
    @Test func expiredTwoQueueCycleIsDropped() async throws { try await withBroker { try await DeadLetterScenarios.expiredTwoQueueCycleIsDropped($0.url) } }
    @Test func rejectedSelfCycleKeepsGoing() async throws { try await withBroker { try await DeadLetterScenarios.rejectedSelfCycleKeepsGoing($0.url) } }

    static func death(_ queue: String, _ reason: String) -> FieldValue {
        .table(["queue": .string(queue), "reason": .string(reason), "count": .int64(1)])
    }

    static func headers(_ deaths: FieldValue...) -> FieldTable { ["x-death": .array(deaths)] }

    @Test func cycleRule() {
        // Back into the queue it just expired in.
        #expect(DeadLetter.closesCycle(deaths: Self.headers(Self.death("a", "expired")), reason: "expired", into: "a"))
        // A rejection now is never a cycle, nor is a queue the message never died in.
        #expect(!DeadLetter.closesCycle(deaths: Self.headers(Self.death("a", "rejected")), reason: "rejected", into: "a"))
        #expect(!DeadLetter.closesCycle(deaths: Self.headers(Self.death("a", "expired")), reason: "expired", into: "b"))
        // b expired, then a (maxlen): back to a is a cycle; a rejection in between is not.
        #expect(DeadLetter.closesCycle(deaths: Self.headers(Self.death("b", "expired"), Self.death("a", "maxlen")), reason: "expired", into: "a"))
        #expect(!DeadLetter.closesCycle(deaths: Self.headers(Self.death("b", "expired"), Self.death("c", "rejected"), Self.death("a", "expired")), reason: "expired", into: "a"))
        // Only the deaths since the last one in the target count.
        #expect(DeadLetter.closesCycle(deaths: Self.headers(Self.death("a", "expired"), Self.death("b", "rejected")), reason: "expired", into: "a"))
        // Something a client put there: not a fully automatic cycle.
        #expect(!DeadLetter.closesCycle(deaths: ["x-death": .array([.string("a"), Self.death("a", "expired")])], reason: "expired", into: "a"))
        #expect(!DeadLetter.closesCycle(deaths: nil, reason: "expired", into: "a"))
    }
}

@Suite("Dead-letter cycles on RabbitMQ", .enabled(if: RabbitMQEnvironment.url != nil), .timeLimit(.minutes(1)))
struct DeadLetterRabbitMQTests {
    let url = RabbitMQEnvironment.url ?? ""

    @Test func expiredSelfCycleIsDropped() async throws { try await DeadLetterScenarios.expiredSelfCycleIsDropped(self.url) }
    @Test func expiredTwoQueueCycleIsDropped() async throws { try await DeadLetterScenarios.expiredTwoQueueCycleIsDropped(self.url) }
    @Test func rejectedSelfCycleKeepsGoing() async throws { try await DeadLetterScenarios.rejectedSelfCycleKeepsGoing(self.url) }
}
