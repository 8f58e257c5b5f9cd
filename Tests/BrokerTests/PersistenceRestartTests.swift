import AMQPClient
import AMQPProtocol
import Broker
import Foundation
import Logging
import NIOCore
import TestSupport
import Testing

/// A broker with a data directory, stopped and started again in this process: what is
/// durable comes back, what is not does not, and drained segment files go away.
@Suite("Persistence across a restart", .timeLimit(.minutes(2)))
struct PersistenceRestartTests {
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "conductor-persist-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func withBroker(directory: String, segmentBytes: Int = 16 << 20, _ body: (String) async throws -> Void) async throws {
        var configuration = BrokerConfiguration(port: 0)
        configuration.dataDirectory = directory
        configuration.storeSegmentBytes = segmentBytes
        try await TestSupport.withBroker(configuration) { try await body($0.url) }
    }

    static let persistent = BasicProperties(deliveryMode: 2)

    @Test func durableTopologyAndPersistentMessagesComeBack() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await Self.withBroker(directory: directory) { url in
            let connection = try await QueueFeatureScenarios.connect(url)
            let channel = try await connection.openChannel()
            try await channel.exchangeDeclare(name: "orders", type: "direct", durable: true)
            try await channel.queueDeclare(name: "orders.new", durable: true, arguments: ["x-max-priority": .int32(3)])
            try await channel.queueBind(queue: "orders.new", exchange: "orders", routingKey: "new")
            try await channel.queueDeclare(name: "scratch", durable: false)
            try await channel.confirmSelect()
            for index in 0..<10 { try channel.publish("p\(index)", exchange: "orders", routingKey: "new", properties: Self.persistent) }
            for index in 0..<3 { try channel.publish("t\(index)", exchange: "orders", routingKey: "new") }
            try channel.publish("scratch", routingKey: "scratch", properties: Self.persistent)
            #expect(try await channel.waitForConfirms() == [])
            // Three acked (gone for good), two delivered and left unacked at the stop.
            for index in 0..<5 {
                let message = try #require(try await channel.get(queue: "orders.new"))
                #expect(message.bodyString == "p\(index)")
                if index < 3 { try message.ack() }
            }
            try await connection.close()
        }
        try await Self.withBroker(directory: directory) { url in
            let connection = try await QueueFeatureScenarios.connect(url)
            let channel = try await connection.openChannel()
            let declared = try await channel.queueDeclare(name: "orders.new", passive: true)
            #expect(declared.messageCount == 7)
            await #expect(throws: AMQPError.self) { try await channel.queueDeclare(name: "scratch", passive: true) }
            let next = try await connection.openChannel()
            var bodies: [String] = []
            for _ in 0..<10 {
                guard let message = try await next.get(queue: "orders.new", noAck: true) else { break }
                #expect(message.redelivered)
                #expect(message.properties.deliveryMode == 2)
                bodies.append(message.bodyString)
            }
            #expect(bodies == (3..<10).map { "p\($0)" })
            // The binding came back: a publish through the exchange still arrives.
            try await next.confirmSelect()
            try next.publish("after", exchange: "orders", routingKey: "new", properties: Self.persistent)
            #expect(try await next.waitForConfirms() == [])
            let after = try #require(try await next.get(queue: "orders.new", noAck: false))
            #expect(after.bodyString == "after")
            #expect(!after.redelivered)
            // A redeclare with other arguments is refused: they were kept too.
            do {
                try await next.queueDeclare(name: "orders.new", durable: true)
                Issue.record("redeclare without x-max-priority was accepted")
            } catch let error as AMQPError {
                #expect(error.replyCode == 406)
            }
            try await connection.close()
        }
        // Deleted queues stay deleted.
        try await Self.withBroker(directory: directory) { url in
            let connection = try await QueueFeatureScenarios.connect(url)
            let channel = try await connection.openChannel()
            #expect(try await channel.queueDeclare(name: "orders.new", passive: true).messageCount == 1)
            try await channel.queueDelete(name: "orders.new")
            try await channel.exchangeDelete(name: "orders")
            try await connection.close()
        }
        try await Self.withBroker(directory: directory) { url in
            let connection = try await QueueFeatureScenarios.connect(url)
            let channel = try await connection.openChannel()
            await #expect(throws: AMQPError.self) { try await channel.queueDeclare(name: "orders.new", passive: true) }
            let other = try await connection.openChannel()
            await #expect(throws: AMQPError.self) { try await other.exchangeDeclare(name: "orders", passive: true) }
            try? await connection.close()
        }
    }

    @Test func aSecondBrokerCannotUseTheSameDirectory() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await Self.withBroker(directory: directory) { _ in
            var configuration = BrokerConfiguration(port: 0)
            configuration.dataDirectory = directory
            let second = BrokerServer(configuration: configuration, logger: Logger(label: "test.broker"))
            do {
                _ = try await second.start()
                Issue.record("a second broker started on a locked data directory")
            } catch {
                #expect("\(error)".contains("in use by another broker"))
            }
            try? await second.shutdown()
        }
    }

    @Test func drainedSegmentsAreDeleted() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let body = ByteBuffer(repeating: UInt8(ascii: "x"), count: 1024)
        func segmentBytes() -> Int {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/segments")) ?? []
            return names.reduce(0) { total, name in
                let size = (try? FileManager.default.attributesOfItem(atPath: directory + "/segments/" + name)[.size] as? Int) ?? 0
                return total + size
            }
        }
        try await Self.withBroker(directory: directory, segmentBytes: 64 * 1024) { url in
            let connection = try await QueueFeatureScenarios.connect(url)
            let channel = try await connection.openChannel()
            try await channel.queueDeclare(name: "bulk", durable: true)
            try await channel.confirmSelect()
            // Fetch on a channel of its own: AMQPClient's waitForConfirms hangs on a channel
            // that also did basic.get + ack (against RabbitMQ too).
            let fetcher = try await connection.openChannel()
            for round in 0..<5 {
                for _ in 0..<200 { try channel.publish(body, routingKey: "bulk", properties: Self.persistent) }
                #expect(try await channel.waitForConfirms() == [])
                #expect(segmentBytes() > 150 * 1024, "round \(round)")
                for _ in 0..<200 {
                    let message = try #require(try await fetcher.get(queue: "bulk"))
                    try message.ack()
                }
            }
            // The acks reach the disk with the next write: one more confirmed publish.
            try channel.publish("marker", routingKey: "bulk", properties: Self.persistent)
            #expect(try await channel.waitForConfirms() == [])
            // About 1 MiB went through; only the current segment and the one before stay.
            #expect(segmentBytes() < 3 * 64 * 1024 + 4096)
            try await connection.close()
        }
        try await Self.withBroker(directory: directory) { url in
            let connection = try await QueueFeatureScenarios.connect(url)
            let channel = try await connection.openChannel()
            #expect(try await channel.queueDeclare(name: "bulk", passive: true).messageCount == 1)
            try await connection.close()
        }
    }
}

