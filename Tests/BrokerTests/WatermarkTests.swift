import AMQPClient
import AMQPProtocol
import NIOCore
import Synchronization
import Testing

@testable import Broker

/// Memory and disk alarms block publishers with connection.blocked and release them with
/// connection.unblocked; a consumer that does not read cannot make the broker buffer
/// without bound. Real loopback sockets; the resource samples come from a probe the test
/// controls (the real one reads /proc and statvfs, checked at the end).
@Suite(.timeLimit(.minutes(1)))
struct WatermarkTests {
    /// Memory use and free disk the broker's monitor sees.
    final class FakeResources: Sendable {
        let memory = Atomic<Int>(1_000)
        let disk = Atomic<Int>(1 << 40)

        var watermarks: Watermarks {
            Watermarks(
                memoryHighWatermark: .absolute(10_000), diskFreeLimit: .absolute(1 << 30), diskPath: "/",
                checkIntervalMilliseconds: 20,
                probe: ResourceProbe(
                    memoryUsed: { self.memory.load(ordering: .relaxed) },
                    totalMemory: { 1 << 34 },
                    diskFree: { _ in self.disk.load(ordering: .relaxed) }
                )
            )
        }
    }

    /// A raw client that announces `connection.blocked`.
    static func blockAwareClient(_ port: Int) async throws -> TestFrameClient {
        let client = try await TestFrameClient.connect(port: port)
        try await client.write(AMQP.protocolHeader)
        guard case .connectionStart = try await client.nextMethod() else { throw TestFrameClient.Closed() }
        try await client.send(.connectionStartOk(.init(
            clientProperties: ["capabilities": .table(["connection.blocked": .bool(true)])], mechanism: "PLAIN",
            response: Array("\0guest\0guest".utf8), locale: "en_US")))
        guard case .connectionTune(let tune) = try await client.nextMethod() else { throw TestFrameClient.Closed() }
        try await client.send(.connectionTuneOk(.init(channelMax: tune.channelMax, frameMax: tune.frameMax, heartbeat: 0)))
        try await client.send(.connectionOpen(.init(virtualHost: "/")))
        guard case .connectionOpenOk = try await client.nextMethod() else { throw TestFrameClient.Closed() }
        try await client.openChannel(1)
        return client
    }

    /// Waits (bounded) until the passive declare of `queue` reports `count` messages.
    static func waitForCount(_ observer: TestFrameClient, _ queue: String, _ count: UInt32) async throws -> UInt32? {
        var seen: UInt32?
        for _ in 0..<200 {
            seen = try await FlowControlTests.declarePassive(observer, queue)
            if seen == count { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        return seen
    }

    /// Publishes one message while `alarm` is raised by `raise`, expects connection.blocked
    /// with `reason` and the message held back, then `lower` and expects connection.unblocked
    /// and the message delivered.
    static func checkAlarm(reason: String, raise: @Sendable (FakeResources) -> Void, lower: @Sendable (FakeResources) -> Void) async throws {
        let resources = FakeResources()
        var configuration = BrokerConfiguration()
        configuration.watermarks = resources.watermarks
        try await EndToEndTests.withBroker(configuration) { port in
            let publisher = try await Self.blockAwareClient(port)
            let observer = try await EndToEndTests.client(port)
            try await publisher.send(.queueDeclare(.init(queue: "alarmed")), channel: 1)
            guard case .queueDeclareOk = try await publisher.nextMethod() else { Issue.record("no declare-ok"); return }
            try await publisher.publish(channel: 1, routingKey: "alarmed", body: "before")
            #expect(try await Self.waitForCount(observer, "alarmed", 1) == 1)

            raise(resources)
            try await Task.sleep(for: .milliseconds(100))  // several samples
            // The publish that meets the alarm is taken; the connection is then blocked.
            try await publisher.publish(channel: 1, routingKey: "alarmed", body: "during")
            #expect(try await publisher.nextMethod() == .connectionBlocked(.init(reason: reason)))
            try await publisher.publish(channel: 1, routingKey: "alarmed", body: "held")
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await FlowControlTests.declarePassive(observer, "alarmed") == 2, "a blocked publisher must not be read")

            lower(resources)
            #expect(try await publisher.nextMethod() == .connectionUnblocked(.init()))
            #expect(try await Self.waitForCount(observer, "alarmed", 3) == 3)
            await publisher.close()
            await observer.close()
        }
    }

    @Test func memoryAlarmBlocksAndUnblocksPublishers() async throws {
        try await Self.checkAlarm(
            reason: "low on memory",
            raise: { $0.memory.store(20_000, ordering: .relaxed) },
            lower: { $0.memory.store(5_000, ordering: .relaxed) }
        )
    }

    @Test func diskAlarmBlocksAndUnblocksPublishers() async throws {
        try await Self.checkAlarm(
            reason: "low on disk",
            raise: { $0.disk.store(1 << 20, ordering: .relaxed) },
            lower: { $0.disk.store(1 << 40, ordering: .relaxed) }
        )
    }

    @Test func noDiskAlarmWithoutADataDirectory() async throws {
        let resources = FakeResources()
        resources.disk.store(0, ordering: .relaxed)
        var configuration = BrokerConfiguration()
        configuration.watermarks = resources.watermarks
        configuration.watermarks.diskPath = nil  // and no data directory: nothing to watch
        try await EndToEndTests.withBroker(configuration) { port in
            let publisher = try await Self.blockAwareClient(port)
            try await publisher.send(.queueDeclare(.init(queue: "in-memory")), channel: 1)
            guard case .queueDeclareOk = try await publisher.nextMethod() else { Issue.record("no declare-ok"); return }
            try await Task.sleep(for: .milliseconds(100))  // several samples of a full disk
            for index in 0..<3 { try await publisher.publish(channel: 1, routingKey: "in-memory", body: "\(index)") }
            // Answered at once: the publisher was never blocked (no connection.blocked first).
            #expect(try await FlowControlTests.declarePassive(publisher, "in-memory") == 3)
            await publisher.close()
        }
    }

    @Test func heldBodyBytesBlockWithNotificationUntilDrained() async throws {
        // 20 bodies of 10 bytes hold 200 bytes > 100; unblocked at 50 bytes.
        let configuration = BrokerConfiguration(flowLimits: .init(queueMaxReady: 0, queueResumeReady: 0, maxBytes: 100, resumeBytes: 50))
        try await EndToEndTests.withBroker(configuration) { port in
            let publisher = try await Self.blockAwareClient(port)
            let observer = try await EndToEndTests.client(port)
            try await publisher.send(.queueDeclare(.init(queue: "backlog")), channel: 1)
            guard case .queueDeclareOk = try await publisher.nextMethod() else { Issue.record("no declare-ok"); return }
            try await FlowControlTests.publishBatch(publisher, count: 20, body: "0123456789")
            #expect(try await publisher.nextMethod() == .connectionBlocked(.init(reason: "low on memory")))
            #expect(try await Self.waitForCount(observer, "backlog", 20) == 20)
            for _ in 0..<15 {
                try await observer.send(.basicGet(.init(queue: "backlog", noAck: true)), channel: 1)
                guard case .basicGetOk = try await observer.nextContent().0 else { Issue.record("no get-ok"); return }
            }
            #expect(try await publisher.nextMethod() == .connectionUnblocked(.init()))
            await publisher.close()
            await observer.close()
        }
    }

    @Test func clientLibrarySurfacesBlockedAndUnblocked() async throws {
        let resources = FakeResources()
        var configuration = BrokerConfiguration()
        configuration.watermarks = resources.watermarks
        try await EndToEndTests.withBroker(configuration) { port in
            let connection = try await AMQPConnection.connect(url: "amqp://guest:guest@127.0.0.1:\(port)/%2F")
            let channel = try await connection.openChannel()
            var updates = connection.blockedUpdates.makeAsyncIterator()
            _ = try await channel.queueDeclare(name: "client-alarm")
            resources.memory.store(50_000, ordering: .relaxed)
            try await Task.sleep(for: .milliseconds(100))
            _ = try channel.publish("x", routingKey: "client-alarm")
            let blocked = await updates.next()
            #expect(blocked == .some("low on memory"))
            resources.memory.store(100, ordering: .relaxed)
            let unblocked = await updates.next()
            #expect(unblocked == .some(nil))
            try await connection.close()
        }
    }

    @Test func systemProbeReadsThisProcess() {
        let probe = ResourceProbe.system
        let memory = probe.memoryUsed() ?? 0
        let total = probe.totalMemory() ?? 0
        #expect(memory > 1 << 20, "a Swift test process has more than 1 MiB resident")
        #expect(total > memory)
        #expect((probe.diskFree("/") ?? -1) >= 0)
        // A directory not made yet counts on its nearest existing parent's file system.
        #expect(probe.diskFree("/tmp/no/such/directory") != nil)
        #expect(probe.diskFree("relative/missing") == nil)
        #expect(ResourceAmount(parsing: "0.4") == .relative(0.4))
        #expect(ResourceAmount(parsing: "50MB") == .absolute(50_000_000))
        #expect(ResourceAmount(parsing: "512MiB") == .absolute(512 << 20))
        #expect(ResourceAmount(parsing: "lots") == nil)
        #expect(ResourceAmount(parsing: "-1") == nil)
    }

    /// A consumer that stops reading: deliveries stop at the bounded buffers, the rest
    /// stays ready in the queue, and everything arrives once it reads again. (Fails with
    /// 0 still queued when `BrokerConnection.canDeliver` always says yes.)
    @Test func consumerThatDoesNotReadCannotGrowBrokerBuffers() async throws {
        let count = 6_000
        let size = 4096
        let body = String(repeating: "b", count: size)
        // These clients live 45 s (not the usual 10): on a loaded 2-core machine the 24 MiB
        // take a while; the suite's time limit still bounds the test.
        func client(_ port: Int) async throws -> TestFrameClient {
            let client = try await TestFrameClient.connect(port: port, lifetime: .seconds(45))
            try await client.handshake()
            try await client.openChannel(1)
            return client
        }
        try await EndToEndTests.withBroker { port in
            let publisher = try await client(port)
            let observer = try await client(port)
            try await publisher.send(.queueDeclare(.init(queue: "slow")), channel: 1)
            guard case .queueDeclareOk = try await publisher.nextMethod() else { Issue.record("no declare-ok"); return }
            let consumer = try await client(port)
            // A small receive buffer (no autotuning to 32 MiB), then no more reading.
            try await consumer.channel.setOption(.socketOption(.so_rcvbuf), value: 16 * 1024).get()
            try await consumer.send(.basicConsume(.init(queue: "slow", consumerTag: "slow", noAck: true)), channel: 1)
            #expect(try await consumer.nextMethod() == .basicConsumeOk(.init(consumerTag: "slow")))
            try await consumer.channel.setOption(.autoRead, value: false).get()

            var batch = ByteBuffer()
            for index in 0..<count {
                try batch.writeContent(
                    channel: 1, method: .basicPublish(.init(routingKey: "slow")), properties: BasicProperties(),
                    body: ByteBuffer(string: body), frameMax: 131_072)
                if index % 250 == 249 {
                    try await publisher.channel.writeAndFlush(batch)
                    batch.clear()
                }
            }
            // Everything published is in the broker once the publisher's declare is answered.
            try await publisher.send(.queueDeclare(.init(queue: "slow", passive: true)), channel: 1)
            guard case .queueDeclareOk = try await publisher.nextMethod() else { Issue.record("no declare-ok"); return }
            try await Task.sleep(for: .milliseconds(300))
            let ready = try await FlowControlTests.declarePassive(observer, "slow") ?? 0
            // Socket buffers (send buffer up to 4 MiB here) and the broker's 1 MiB + 1 MiB
            // take some 1,500 of these 24 MiB; without backpressure all would leave the queue.
            #expect(ready >= UInt32(count / 2), "only \(ready) of \(count) still queued: the broker buffered the rest")
            #expect(ready < UInt32(count), "some were delivered")

            // Reading again drains everything (counted by frames, not decoded).
            try await consumer.channel.setOption(.autoRead, value: true).get()
            consumer.channel.read()
            var deliveries = 0, bodyBytes = 0
            while bodyBytes < count * size {
                switch try await consumer.nextFrame() {
                case .method(_, .basicDeliver): deliveries += 1
                case .body(_, let part): bodyBytes += part.readableBytes
                case .header: break
                case let other: Issue.record("unexpected \(other)"); return
                }
            }
            #expect(deliveries == count)
            #expect(bodyBytes == count * size)
            #expect(try await FlowControlTests.declarePassive(observer, "slow") == 0)
            await consumer.close()
            await publisher.close()
            await observer.close()
        }
    }
}
