import AMQPProtocol
import Foundation
import NIOCore
import Testing

@testable import Broker

/// What a restart brings back beyond the messages themselves: bodies past the page-out
/// threshold stay on disk, TTLs keep counting from arrival, and data directories written
/// before arrival times were kept are still read.
@Suite("Persistence: recovery", .timeLimit(.minutes(2)))
struct PersistenceRecoveryTests {
    @Test func recoveredBodiesPastTheThresholdStayOnDisk() async throws {
        let directory = StoreHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let threshold = 64 * 1024
        let count = 400
        let first = try await StoreHarness.open(directory, segmentBytes: 128 * 1024, pageOutBytes: threshold)
        try await first.run { core in
            let deep = try core.declareDurableQueue("deep")
            for index in 0..<count { core.publishPersistent(patternBody("deep-\(index)", size: 1024), to: [deep]) }
        }
        try await first.waitDurable()
        try await first.close(clean: true)

        let second = try await StoreHarness.open(directory, segmentBytes: 128 * 1024, pageOutBytes: threshold)
        let (ready, inMemory) = try await second.run { core in
            let deep = core.queue("deep")!
            return (deep.messages.count, deep.readyBytes - deep.pagedBytes)
        }
        #expect(ready == count)
        // 400 KiB of bodies, of which no more than the threshold is held in memory.
        #expect(inMemory <= threshold, "\(inMemory) bytes of recovered bodies held in memory")
        #expect(inMemory >= threshold - 1024)
        let bodies = try await second.run { core in core.drain("deep") }
        #expect(bodies.map { String($0.body.prefix { $0 != ":" }) } == (0..<count).map { "deep-\($0)" })
        #expect(bodies.allSatisfy { ByteBuffer(string: $0.body) == patternBody(String($0.body.prefix { $0 != ":" }), size: 1024) })
        #expect(try await second.run { $0.store!.pagedIn } >= count - threshold / 1024)
        try await second.close(clean: true)
    }

    @Test func ttlsCountFromArrivalAcrossARestart() async throws {
        let directory = StoreHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try await StoreHarness.open(directory, segmentBytes: 64 * 1024)
        let published = Date()
        try await first.run { core in
            _ = try core.declareDurableQueue("dead")
            let timed = try core.declareDurableQueue(
                "timed", arguments: ["x-dead-letter-exchange": .string(""), "x-dead-letter-routing-key": .string("dead")]
            )
            // Expiry happens at the head (as RabbitMQ), so the short one goes first.
            core.publishPersistent(ByteBuffer(string: "short"), to: [timed], expiration: "1000")
            core.publishPersistent(ByteBuffer(string: "long"), to: [timed], expiration: "10000")
        }
        try await first.waitDurable()
        // Both still there when the broker stops, so "short" expires while it is down.
        #expect(try await first.run { $0.queue("timed")!.messages.count } == 2)
        try await first.close(clean: true)
        // Down until two seconds after the publish: "long" has about 8 s left (not 10).
        let down = 2.0 - Date().timeIntervalSince(published)
        if down > 0 { try await Task.sleep(nanoseconds: UInt64(down * 1e9)) }

        let second = try await StoreHarness.open(directory, segmentBytes: 64 * 1024)
        let (timed, remaining, dead, reason) = try await second.run { core -> ([String], Int64, [String], String?) in
            let timed = core.queue("timed")!
            var bodies: [String] = []
            timed.messages.forEach { bodies.append(String(buffer: $0.message.body)) }
            let remaining = (timed.messages.first?.expiresAt ?? 0) - BrokerClock.milliseconds()
            var dead: [String] = []
            var reason: String?
            core.queue("dead")!.messages.forEach { queued in
                dead.append(String(buffer: queued.message.body))
                if case .array(let deaths)? = queued.message.properties.headers?["x-death"], case .table(let death)? = deaths.first {
                    reason = death["reason"]?.stringValue
                }
            }
            return (bodies, remaining, dead, reason)
        }
        #expect(timed == ["long"])
        #expect(remaining > 0 && remaining <= 9000, "\(remaining) ms left of a 10 s TTL published 2 s ago")
        #expect(dead == ["short"])
        #expect(reason == "expired")
        try await second.close(clean: true)

        // The expiry was recorded: "short" is in "dead" once and no longer in "timed".
        let third = try await StoreHarness.open(directory, segmentBytes: 64 * 1024)
        let (timedAgain, deadAgain) = try await third.run { core in (core.drain("timed"), core.drain("dead")) }
        #expect(timedAgain.map(\.body) == ["long"])
        #expect(deadAgain.map(\.body) == ["short"])
        try await third.close(clean: true)
    }

    @Test func anOldFormatSegmentIsStillRead() async throws {
        let directory = StoreHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/segments", withIntermediateDirectories: true)
        var meta = ByteBuffer()
        MetaRecord.queue(StoredQueue(vhost: "/", name: "old", id: 1, autoDelete: false, arguments: [:])).encode(into: &meta)
        RecordFraming.sealRecords(in: &meta)
        try Data(meta.readableBytesView).write(to: URL(fileURLWithPath: directory + "/meta.log"))
        var segment = ByteBuffer()
        for (id, body) in [(UInt64(1), "first"), (2, "second")] {
            var record = Self.kindOnePublish(id: id, queue: 1, body: body)
            segment.writeBuffer(&record)
        }
        try Data(segment.readableBytesView).write(to: URL(fileURLWithPath: directory + "/segments/00000001.log"))

        let harness = try await StoreHarness.open(directory, segmentBytes: 64 * 1024)
        let (bodies, remaining) = try await harness.run { core -> ([String], Int64) in
            let queue = core.queue("old")!
            let remaining = (queue.messages.first?.expiresAt ?? 0) - BrokerClock.milliseconds()
            return (core.drain("old").map(\.body), remaining)
        }
        #expect(bodies == ["first", "second"])
        // No arrival time on record: the 60 s TTL counts from the restart.
        #expect(remaining > 50_000 && remaining <= 60_000)
        try await harness.close(clean: true)
    }

    /// A publish record as brokers wrote it before arrival times (kind 1), byte by byte.
    static func kindOnePublish(id: UInt64, queue: UInt64, body: String) -> ByteBuffer {
        var record = ByteBuffer()
        RecordFraming.append(to: &record) { fields in
            fields.writeInteger(1 as UInt8)
            fields.writeInteger(id)
            fields.writeInteger(1 as UInt16)
            fields.writeInteger(queue)
            for text in ["", "old"] {
                fields.writeInteger(UInt32(text.utf8.count))
                fields.writeString(text)
            }
            var properties = ByteBuffer()
            try? BasicProperties(deliveryMode: 2, expiration: "60000").encode(into: &properties)
            fields.writeInteger(UInt32(properties.readableBytes))
            fields.writeBuffer(&properties)
            fields.writeInteger(UInt32(body.utf8.count))
            fields.writeString(body)
        }
        RecordFraming.sealRecords(in: &record)
        return record
    }

    @Test func kindOneRecordsDecodeWithoutAnArrival() {
        let (payloads, _) = RecordFraming.records(in: Self.kindOnePublish(id: 9, queue: 4, body: "old body"))
        guard case .publish(let stored)? = payloads.first.flatMap({ LogRecord(payload: $0) }) else {
            Issue.record("a kind 1 record did not decode")
            return
        }
        #expect(stored.id == 9 && stored.queues == [4] && stored.routingKey == "old" && stored.arrival == 0)
        #expect(stored.body == ByteBuffer(string: "old body"))
        // What is written now carries the arrival and reads back the same.
        var timed = stored
        timed.arrival = 1_790_000_000_123
        var buffer = ByteBuffer()
        LogRecord.publish(timed).encode(into: &buffer)
        RecordFraming.sealRecords(in: &buffer)
        #expect(RecordFraming.records(in: buffer).payloads.compactMap { LogRecord(payload: $0) } == [.publish(timed)])
    }

    @Test func recoveredExpiryCountsFromArrival() {
        let wall: Int64 = 1_790_000_000_000
        let clock: Int64 = 5_000
        #expect(RecoveredExpiry.expiresAt(arrival: wall - 1000, ttl: nil, wallNow: wall, clockNow: clock) == 0)
        #expect(RecoveredExpiry.expiresAt(arrival: wall - 1000, ttl: 3000, wallNow: wall, clockNow: clock) == clock + 2000)
        // Expired while down: due now.
        #expect(RecoveredExpiry.expiresAt(arrival: wall - 9000, ttl: 3000, wallNow: wall, clockNow: clock) == clock)
        // Unknown arrival (old records): from now.
        #expect(RecoveredExpiry.expiresAt(arrival: 0, ttl: 3000, wallNow: wall, clockNow: clock) == clock + 3000)
        // A wall clock set back does not stretch the TTL.
        #expect(RecoveredExpiry.expiresAt(arrival: wall + 60_000, ttl: 3000, wallNow: wall, clockNow: clock) == clock + 3000)
    }

    @Test func residentMessagesAreTheFirstOfEachQueueUpToTheLimit() {
        let meta: [MetaRecord] = [
            .queue(StoredQueue(vhost: "/", name: "a", id: 1, autoDelete: false, arguments: [:])),
            .queue(StoredQueue(vhost: "/", name: "b", id: 2, autoDelete: false, arguments: [:])),
        ]
        let body = String(repeating: "x", count: 100)
        let records: [LogRecord] = (1...6).map { .publish(PersistenceStoreTests.message(UInt64($0), queues: $0 <= 4 ? [1] : [2], body: body)) }
        let state = RecoveredState(meta: meta, segments: [(1, records)])
        #expect(state.residentMessages(limit: 250) == [1, 2, 5, 6])
        #expect(state.residentMessages(limit: 0) == [1, 2, 3, 4, 5, 6])
        // Offsets point at the bodies as they lie in the file.
        var file = ByteBuffer()
        for record in records { record.encode(into: &file) }
        let message = state.messages[1]![2]
        #expect(file.getString(at: message.bodyOffset, length: message.bodySize) == body)
    }
}
