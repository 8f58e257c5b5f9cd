import AMQPProtocol
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Broker

/// A `BrokerCore` with a data directory on a loop of its own, driven directly (no
/// sockets) so a test can publish and ack thousands of messages in a second and look at
/// the store's counters. `close(clean: false)` is a crash as far as the data directory
/// goes: records the loop encoded but did not hand to the writer are lost.
final class StoreHarness: Sendable {
    let directory: String
    let group: MultiThreadedEventLoopGroup
    let loop: any EventLoop
    let box: NIOLoopBound<BrokerCore>
    let log: MessageLog

    private init(directory: String, group: MultiThreadedEventLoopGroup, box: NIOLoopBound<BrokerCore>, log: MessageLog) {
        self.directory = directory
        self.group = group
        self.loop = group.next()
        self.box = box
        self.log = log
    }

    static func open(_ directory: String, segmentBytes: Int, pageOutBytes: Int = 64 << 20) async throws -> StoreHarness {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        var configuration = BrokerConfiguration(port: 0, flowLimits: .unlimited)
        configuration.storeSegmentBytes = segmentBytes
        configuration.storePageOutBytes = pageOutBytes
        let settings = configuration
        let box = try await loop.submit {
            NIOLoopBound(BrokerCore(configuration: settings, eventLoop: loop, logger: Logger(label: "test.store")), eventLoop: loop)
        }.get()
        let log = try await loop.submit {
            try box.value.openStore(
                directory: directory,
                onDurable: { ticket in loop.execute { box.value.storeDurable(upTo: ticket) } },
                onFailure: { _ in }
            )
        }.get()
        return StoreHarness(directory: directory, group: group, box: box, log: log)
    }

    /// Runs `body` on the broker's loop.
    func run<T: Sendable>(_ body: @escaping @Sendable (BrokerCore) throws -> T) async throws -> T {
        let box = self.box
        return try await self.loop.submit { try body(box.value) }.get()
    }

    /// Waits (bounded: 10 s) until everything encoded so far is on disk.
    func waitDurable() async throws {
        for _ in 0..<1000 {
            if try await self.run({ core in core.store!.handoff(); return core.store!.durableTicket >= core.store!.ticket }) { return }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        Issue.record("the writer did not catch up within 10 s")
    }

    func close(clean: Bool) async throws {
        if clean { try await self.run { $0.store!.shutdown() } }
        await self.log.close()
        try await self.group.shutdownGracefully()
    }

    /// Bytes and count of the segment files on disk.
    var segmentFiles: (count: Int, bytes: Int) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: self.directory + "/segments")) ?? []
        let bytes = names.reduce(0) { total, name in
            total + ((try? FileManager.default.attributesOfItem(atPath: self.directory + "/segments/" + name)[.size] as? Int) ?? 0)
        }
        return (names.count, bytes)
    }

    static func temporaryDirectory() -> String {
        NSTemporaryDirectory() + "conductor-compact-\(UInt32.random(in: 0...UInt32.max))"
    }
}

extension BrokerCore {
    /// A durable queue declared as `queue.declare` does, recorded in meta.log.
    func declareDurableQueue(_ name: String, arguments: FieldTable = [:]) throws -> BrokerQueue {
        let vhost = self.vhosts["/"]!
        let settings = try QueueArguments(arguments, queue: name, vhost: "/")
        let queue = BrokerQueue(name: name, durable: true, exclusiveOwner: nil, autoDelete: false, arguments: arguments, vhost: vhost, settings: settings)
        queue.storeID = self.store!.newQueueID()
        self.store!.record(.queue(StoredQueue(vhost: "/", name: name, id: queue.storeID, autoDelete: false, arguments: arguments)))
        vhost.queues[name] = queue
        return queue
    }

    func queue(_ name: String) -> BrokerQueue? { self.vhosts["/"]!.queues[name] }

    /// A persistent message routed to `queues`, as a publish does.
    @discardableResult
    func publishPersistent(_ body: ByteBuffer, to queues: [BrokerQueue], expiration: String? = nil) -> Message {
        let message = Message(exchange: "", routingKey: queues[0].name, properties: BasicProperties(deliveryMode: 2, expiration: expiration), body: body)
        _ = self.persistIfNeeded(message, queues: queues)
        for queue in queues { queue.enqueue(message) }
        return message
    }

    /// Takes every ready message of `queue` and acks it; returns how many.
    @discardableResult
    func ackAll(_ queue: BrokerQueue) -> Int {
        var count = 0
        while let queued = queue.popFirst() {
            queue.forget(queued.message)
            count += 1
        }
        return count
    }

    /// Bodies of the ready messages of `queue`, head first, with their redelivered flags
    /// (taken off the queue and acked).
    func drain(_ name: String) -> [(body: String, redelivered: Bool)] {
        guard let queue = self.queue(name) else { return [] }
        var bodies: [(body: String, redelivered: Bool)] = []
        while let queued = queue.popFirst() {
            bodies.append((String(buffer: queued.message.body), queued.redelivered))
            queue.forget(queued.message)
        }
        return bodies
    }
}

/// A body that says which message it is and fills `size` bytes with a pattern of it.
func patternBody(_ label: String, size: Int) -> ByteBuffer {
    var body = ByteBuffer(string: label + ":")
    let fill = UInt8(ascii: "a") + UInt8(truncatingIfNeeded: label.utf8.reduce(0) { $0 &+ Int($1) } % 26)
    body.writeRepeatingByte(fill, count: Swift.max(0, size - body.readableBytes))
    return body
}

/// Compaction: a few messages left unacked no longer pin the message log.
@Suite("Persistence: compaction", .timeLimit(.minutes(2)))
struct PersistenceCompactionTests {
    /// One queue with messages never acked (one delivered and not acked, some paged out,
    /// one also routed to the busy queue) while thousands pass through another queue:
    /// the segment files stay few, and after a crash the pinned messages come back once
    /// each, intact and in order, and nothing acked comes back.
    @Test func pinnedMessagesDoNotPinTheLog() async throws {
        let directory = StoreHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let segmentBytes = 32 * 1024
        let harness = try await StoreHarness.open(directory, segmentBytes: segmentBytes, pageOutBytes: 8 * 1024)
        try await harness.run { core in
            let pinned = try core.declareDurableQueue("pinned")
            let bulk = try core.declareDurableQueue("bulk")
            for index in 0..<6 { core.publishPersistent(patternBody("pinned-\(index)", size: 2000), to: [pinned]) }
            core.publishPersistent(patternBody("shared", size: 2000), to: [pinned, bulk])
            // Delivered and never acked: it stays in the store as the unacked one would.
            #expect(String(buffer: pinned.popFirst()!.message.body).hasPrefix("pinned-0:"))
        }
        try await harness.waitDurable()
        // Past 8 KiB of bodies in memory the pinned queue pages the newest out.
        #expect(try await harness.run { $0.store!.pagedOut } > 0)
        // Compaction copies come later; they must keep the original arrival (for TTLs).
        let beforeCopies = RecoveredExpiry.wallClockMilliseconds()
        /// Publishes and acks `chunks` × 150 messages through "bulk"; returns the largest
        /// the segment files got.
        func churn(_ harness: StoreHarness, chunks: Int) async throws -> (count: Int, bytes: Int) {
            var largest = (count: 0, bytes: 0)
            for chunk in 0..<chunks {
                try await harness.run { core in
                    let bulk = core.queue("bulk")!
                    for index in 0..<150 { core.publishPersistent(patternBody("bulk-\(chunk)-\(index)", size: 600), to: [bulk]) }
                    core.ackAll(bulk)
                }
                try await harness.waitDurable()
                let files = harness.segmentFiles
                if files.bytes > largest.bytes { largest = files }
            }
            return largest
        }
        let largest = try await churn(harness, chunks: 40)
        // About 3.6 MB went through 32 KiB segments; without compaction all of it stays.
        let (compacted, stuck) = try await harness.run { ($0.store!.compacted, $0.store!.compactionStuck) }
        #expect(compacted > 0)
        #expect(!stuck, "compaction found live pairs no filed message accounts for")
        #expect(largest.bytes < 16 * segmentBytes, "segment files grew to \(largest.count) files, \(largest.bytes) bytes")
        let final = harness.segmentFiles
        #expect(final.bytes < 8 * segmentBytes, "\(final.count) segment files, \(final.bytes) bytes left")
        try await harness.close(clean: false)

        let restarted = try await StoreHarness.open(directory, segmentBytes: segmentBytes, pageOutBytes: 8 * 1024)
        let arrivals = try await restarted.run { core -> [Int64] in
            var arrivals: [Int64] = []
            core.queue("pinned")!.messages.forEach { arrivals.append($0.message.arrival) }
            return arrivals
        }
        #expect(arrivals.count == 7 && arrivals.allSatisfy { $0 > 0 && $0 <= beforeCopies }, "arrivals \(arrivals), copies began at \(beforeCopies)")
        // Past the 8 KiB threshold some pinned bodies were recovered paged out; more churn
        // compacts them from there (read back from their old segment for the copy), and a
        // crash after that still brings all seven back.
        #expect(try await restarted.run { $0.queue("pinned")!.pagedBytes } > 0)
        let largestAfterRestart = try await churn(restarted, chunks: 20)
        #expect(largestAfterRestart.bytes < 16 * segmentBytes)
        #expect(try await restarted.run { $0.store!.compacted } > 0)
        try await restarted.close(clean: false)

        let again = try await StoreHarness.open(directory, segmentBytes: segmentBytes, pageOutBytes: 8 * 1024)
        let (pinned, bulk) = try await again.run { core in (core.drain("pinned"), core.drain("bulk")) }
        #expect(pinned.map { String($0.body.prefix { $0 != ":" }) } == (0..<6).map { "pinned-\($0)" } + ["shared"])
        #expect(pinned.allSatisfy { $0.redelivered })
        let intact = zip(pinned, (0..<6).map { "pinned-\($0)" } + ["shared"]).allSatisfy { entry, label in
            ByteBuffer(string: entry.body) == patternBody(label, size: 2000)
        }
        #expect(intact, "a pinned body did not come back byte for byte")
        #expect(bulk.isEmpty, "\(bulk.count) acked messages came back")
        try await again.close(clean: true)
    }

    /// A backlog behind one pinned message, then acked in one burst with no publish after
    /// it (its removal records fill less than a segment, so nothing rolls over): the
    /// garbage alone starts compaction.
    @Test func aBurstOfAcksAloneStartsCompaction() async throws {
        let directory = StoreHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let segmentBytes = 64 * 1024
        let harness = try await StoreHarness.open(directory, segmentBytes: segmentBytes)
        try await harness.run { core in
            let pinned = try core.declareDurableQueue("pinned")
            let backlog = try core.declareDurableQueue("backlog")
            core.publishPersistent(patternBody("pinned", size: 500), to: [pinned])
            for index in 0..<300 { core.publishPersistent(patternBody("backlog-\(index)", size: 8000), to: [backlog]) }
        }
        try await harness.waitDurable()
        #expect(harness.segmentFiles.bytes > 2_300_000)
        let (acked, rolled) = try await harness.run { core -> (Int, Bool) in
            let before = core.store!.segment
            let acked = core.ackAll(core.queue("backlog")!)
            return (acked, core.store!.segment != before)
        }
        #expect(acked == 300)
        #expect(!rolled, "the acks rolled a segment over, so this does not test what it means to")
        var files = harness.segmentFiles
        for _ in 0..<200 {
            try await harness.waitDurable()
            files = harness.segmentFiles
            if files.bytes < 4 * segmentBytes { break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        #expect(files.bytes < 4 * segmentBytes, "\(files.count) segment files, \(files.bytes) bytes after the backlog was acked")
        try await harness.close(clean: false)
        let restarted = try await StoreHarness.open(directory, segmentBytes: segmentBytes)
        let (pinned, backlog) = try await restarted.run { core in (core.drain("pinned"), core.drain("backlog")) }
        #expect(pinned.map(\.body) == [String(buffer: patternBody("pinned", size: 500))])
        #expect(backlog.isEmpty)
        try await restarted.close(clean: true)
    }

    /// Slices of one message each, interleaved with acks of the messages being copied
    /// (in queues that share them): what was acked stays acked, the rest survives, for
    /// every queue separately.
    @Test func removalsDuringCompactionStayRight() async throws {
        let directory = StoreHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let segmentBytes = 8 * 1024
        let harness = try await StoreHarness.open(directory, segmentBytes: segmentBytes)
        try await harness.run { core in
            core.store!.compactionSliceBytes = 1
            let left = try core.declareDurableQueue("left")
            let right = try core.declareDurableQueue("right")
            _ = try core.declareDurableQueue("churn")
            for index in 0..<60 { core.publishPersistent(patternBody("both-\(index)", size: 200), to: [left, right]) }
        }
        // Churn until a round of compaction is under way, then ack from both queues while
        // it copies: "left" loses its first 30 messages, "right" every third one.
        var removedWhileCompacting = 0
        var leftAcked = 0
        var rightSeen = 0
        var rightKept: [String] = []
        for _ in 0..<400 where leftAcked < 30 || rightSeen < 60 {
            let compacting = try await harness.run { core -> Bool in
                let churn = core.queue("churn")!
                if !core.store!.isCompacting {
                    for index in 0..<40 { core.publishPersistent(patternBody("churn-\(index)", size: 300), to: [churn]) }
                    core.ackAll(churn)
                }
                return core.store!.isCompacting
            }
            guard compacting else { continue }
            let ackLeft = leftAcked < 30
            let step = try await harness.run { core -> (left: Bool, right: String?) in
                var ackedLeft = false
                if ackLeft, let head = core.queue("left")!.popFirst() {
                    core.queue("left")!.forget(head.message)
                    ackedLeft = true
                }
                guard let queued = core.queue("right")!.popFirst() else { return (ackedLeft, nil) }
                let label = String(String(buffer: queued.message.body).prefix { $0 != ":" })
                // Every third one is acked; the others are left delivered and unacked.
                if Int(label.dropFirst(5))! % 3 == 0 { core.queue("right")!.forget(queued.message) }
                return (ackedLeft, label)
            }
            if step.left { leftAcked += 1 }
            if let label = step.right {
                rightSeen += 1
                if Int(label.dropFirst(5))! % 3 != 0 { rightKept.append(label) }
            }
            if step.left || step.right != nil { removedWhileCompacting += 1 }
        }
        #expect(leftAcked == 30)
        #expect(rightSeen == 60)
        #expect(removedWhileCompacting > 10)
        #expect(try await harness.run { $0.store!.compacted } > 0)
        #expect(try await harness.run { $0.store!.compactionStuck } == false)
        try await harness.waitDurable()
        try await harness.close(clean: false)

        let restarted = try await StoreHarness.open(directory, segmentBytes: segmentBytes)
        let (left, right, churn) = try await restarted.run { core in (core.drain("left"), core.drain("right"), core.drain("churn")) }
        #expect(left.map { String($0.body.prefix { $0 != ":" }) } == (30..<60).map { "both-\($0)" })
        #expect(right.map { String($0.body.prefix { $0 != ":" }) } == rightKept)
        #expect(churn.isEmpty)
        let intact = (left + right).allSatisfy { entry in
            ByteBuffer(string: entry.body) == patternBody(String(entry.body.prefix { $0 != ":" }), size: 200)
        }
        #expect(intact)
        try await restarted.close(clean: true)
    }

    /// The same through AMQP: a message delivered and never acked and one never consumed,
    /// while 4,000 messages are published with confirms and consumed with acks through
    /// 64 KiB segments; then a restart brings back those two, once each.
    @Test func overAMQPTheLogStaysSmallAndThePinnedMessagesComeBack() async throws {
        let directory = StoreHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let segmentBytes = 64 * 1024
        let persistent = BasicProperties(deliveryMode: 2)
        let files = { () -> (count: Int, bytes: Int) in
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/segments")) ?? []
            return (names.count, names.reduce(0) { total, name in
                total + ((try? FileManager.default.attributesOfItem(atPath: directory + "/segments/" + name)[.size] as? Int) ?? 0)
            })
        }
        try await PersistenceRestartTests.withBroker(directory: directory, segmentBytes: segmentBytes) { url in
            let connection = try await QueueFeatureScenarios.connect(url)
            let channel = try await connection.openChannel()
            try await channel.queueDeclare(name: "pinned", durable: true)
            try await channel.queueDeclare(name: "bulk", durable: true)
            try await channel.queueDeclare(name: "markers", durable: true)
            try await channel.confirmSelect()
            try channel.publish("pinned-unacked", routingKey: "pinned", properties: persistent)
            try channel.publish("pinned-ready", routingKey: "pinned", properties: persistent)
            #expect(try await channel.waitForConfirms() == [])
            let holder = try await connection.openChannel()
            let held = try #require(try await holder.get(queue: "pinned"))
            #expect(held.bodyString == "pinned-unacked")
            let consumerChannel = try await connection.openChannel()
            try await consumerChannel.basicQos(prefetchCount: 500)
            var deliveries = try await consumerChannel.consume(queue: "bulk").makeAsyncIterator()
            let body = ByteBuffer(repeating: UInt8(ascii: "b"), count: 1000)
            for _ in 0..<20 {
                for _ in 0..<200 { try channel.publish(body, routingKey: "bulk", properties: persistent) }
                #expect(try await channel.waitForConfirms() == [])
                for _ in 0..<200 {
                    let message = try #require(try await deliveries.next())
                    try message.ack()
                }
            }
            // The last acks and compaction's copies reach the disk with the next writes.
            var final = files()
            for _ in 0..<100 {
                try channel.publish("marker", routingKey: "markers", properties: persistent)
                #expect(try await channel.waitForConfirms() == [])
                final = files()
                if final.bytes < 6 * segmentBytes { break }
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            // About 4 MB went through; without compaction every segment would still be here.
            #expect(final.bytes < 6 * segmentBytes, "\(final.count) segment files, \(final.bytes) bytes")
            try await connection.close()
        }
        try await PersistenceRestartTests.withBroker(directory: directory, segmentBytes: segmentBytes) { url in
            let connection = try await QueueFeatureScenarios.connect(url)
            let channel = try await connection.openChannel()
            #expect(try await channel.queueDeclare(name: "bulk", passive: true).messageCount == 0)
            var pinned: [String] = []
            for _ in 0..<5 {
                guard let message = try await channel.get(queue: "pinned", noAck: true) else { break }
                #expect(message.redelivered)
                pinned.append(message.bodyString)
            }
            #expect(pinned == ["pinned-unacked", "pinned-ready"])
            try await connection.close()
        }
    }

    @Test func storedQueueSetsTrackWhatIsLeft() {
        var set = StoredQueueSet([4, 7, 9])
        #expect(set.count == 3 && set.array == [4, 7, 9])
        let first = set.remove(4)
        let again = set.remove(4)
        #expect(first)
        #expect(!again, "a queue removed twice would write a second removal record")
        #expect(set.array == [7, 9] && set.contains(9) && !set.contains(4))
        let last = set.remove(9) && set.remove(7)
        #expect(last)
        #expect(set.isEmpty && set.count == 0 && set.array.isEmpty)
        #expect(StoredQueueSet().isEmpty && !StoredQueueSet([3]).isEmpty)
    }

    @Test func thePolicyCompactsGarbageNotBacklogs() {
        let segment = 1 << 20
        // One segment on disk besides the current one is never compacted.
        #expect(!CompactionPolicy.shouldCompact(diskBytes: 50 * segment, liveBytes: 0, segmentSize: segment, segmentsBehind: 0))
        // A pinned message among many drained segments: compact.
        #expect(CompactionPolicy.shouldCompact(diskBytes: 10 * segment, liveBytes: 1000, segmentSize: segment, segmentsBehind: 9))
        // A backlog that is all alive: never rewritten.
        #expect(!CompactionPolicy.shouldCompact(diskBytes: 100 * segment, liveBytes: 99 * segment, segmentSize: segment, segmentsBehind: 99))
        // Half garbage: not yet; more garbage than live: yes.
        #expect(!CompactionPolicy.shouldCompact(diskBytes: 20 * segment, liveBytes: 10 * segment, segmentSize: segment, segmentsBehind: 19))
        #expect(CompactionPolicy.shouldCompact(diskBytes: 20 * segment, liveBytes: 9 * segment, segmentSize: segment, segmentsBehind: 19))
        // Little garbage in absolute terms (under two segments): left alone.
        #expect(!CompactionPolicy.shouldCompact(diskBytes: 2 * segment, liveBytes: 100, segmentSize: segment, segmentsBehind: 1))
    }

    @Test func aCompactedCopyReplacesTheOriginalOnReplay() {
        let meta: [MetaRecord] = [
            .queue(StoredQueue(vhost: "/", name: "a", id: 1, autoDelete: false, arguments: [:])),
            .queue(StoredQueue(vhost: "/", name: "b", id: 2, autoDelete: false, arguments: [:])),
        ]
        var copy = PersistenceStoreTests.message(1, queues: [1])
        copy.arrival = 1234
        let segments: [(number: UInt32, records: [LogRecord])] = [
            (1, [.publish(PersistenceStoreTests.message(1, queues: [1, 2])), .publish(PersistenceStoreTests.message(2, queues: [2]))]),
            // Removed from b, then copied forward for a alone.
            (2, [.remove(id: 1, queue: 2), .publish(copy)]),
        ]
        let state = RecoveredState(meta: meta, segments: segments)
        #expect(state.messages[1]?.map(\.segment) == [2])
        #expect(state.messages[1]?.first?.queues == [1])
        #expect(state.messages[1]?.first?.stored.arrival == 1234)
        #expect(state.messages[2]?.map(\.stored.id) == [2])
        #expect(state.live == [1: 1, 2: 1])
        // Once message 2 goes too, segment 1 is obsolete.
        let drained = RecoveredState(meta: meta, segments: segments + [(3, [.remove(id: 2, queue: 2)])])
        #expect(drained.obsoleteSegments == [1])
        #expect(drained.messages[1]?.first?.queues == [1])
    }
}
