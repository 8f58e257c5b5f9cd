import AMQPProtocol
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Broker

/// The data directory's pure parts: record codec and framing, replay on recovery, and
/// the order publisher confirms go out in.
@Suite struct PersistenceStoreTests {
    static func message(_ id: UInt64, queues: [UInt64], body: String = "body") -> StoredMessage {
        StoredMessage(
            id: id, queues: queues, exchange: "ex", routingKey: "key",
            properties: BasicProperties(headers: ["h": .string("v")], deliveryMode: 2, expiration: "100"), body: ByteBuffer(string: body)
        )
    }

    static func sealed(_ records: [LogRecord]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for record in records { record.encode(into: &buffer) }
        RecordFraming.sealRecords(in: &buffer)
        return buffer
    }

    @Test func logRecordsRoundTrip() {
        let records: [LogRecord] = [.publish(Self.message(7, queues: [1, 2])), .remove(id: 7, queue: 2)]
        let (payloads, valid) = RecordFraming.records(in: Self.sealed(records))
        #expect(valid == Self.sealed(records).readableBytes)
        #expect(payloads.compactMap { LogRecord(payload: $0) } == records)
    }

    @Test func metaRecordsRoundTrip() {
        let binding = StoredBinding(vhost: "/", source: "ex", destinationIsQueue: true, destination: "q", key: "k", arguments: ["x-match": .string("any")])
        let records: [MetaRecord] = [
            .exchange(StoredExchange(vhost: "/", name: "ex", type: "topic", autoDelete: false, isInternal: true, arguments: ["alternate-exchange": .string("ae")])),
            .queue(StoredQueue(vhost: "/", name: "q", id: 3, autoDelete: false, arguments: ["x-max-length": .int32(5)])),
            .binding(binding), .unbinding(binding), .queueDeleted(vhost: "/", name: "q"), .exchangeDeleted(vhost: "/", name: "ex"),
        ]
        var buffer = ByteBuffer()
        for record in records { record.encode(into: &buffer) }
        RecordFraming.sealRecords(in: &buffer)
        #expect(RecordFraming.records(in: buffer).payloads.compactMap { MetaRecord(payload: $0) } == records)
    }

    @Test func aTornOrDamagedRecordEndsTheLog() {
        let records: [LogRecord] = [.remove(id: 1, queue: 1), .remove(id: 2, queue: 1), .publish(Self.message(3, queues: [1]))]
        let whole = Self.sealed(records)
        let firstTwo = Self.sealed(Array(records.prefix(2))).readableBytes
        // Cut inside the third record: a crash in the middle of a write.
        let torn = whole.getSlice(at: 0, length: whole.readableBytes - 3)!
        #expect(RecordFraming.records(in: torn).payloads.count == 2)
        #expect(RecordFraming.records(in: torn).validBytes == firstTwo)
        // A flipped byte in the second record: its CRC no longer matches.
        var damaged = whole
        damaged.setInteger(damaged.getInteger(at: firstTwo - 1, as: UInt8.self)! ^ 0xFF, at: firstTwo - 1)
        #expect(RecordFraming.records(in: damaged).payloads.count == 1)
    }

    @Test func replayKeepsWhatWasNotRemovedInArrivalOrder() {
        let meta: [MetaRecord] = [
            .queue(StoredQueue(vhost: "/", name: "a", id: 1, autoDelete: false, arguments: [:])),
            .queue(StoredQueue(vhost: "/", name: "b", id: 2, autoDelete: false, arguments: [:])),
        ]
        let segments: [(number: UInt32, records: [LogRecord])] = [
            (1, [.publish(Self.message(1, queues: [1])), .publish(Self.message(2, queues: [1, 2])), .publish(Self.message(3, queues: [1]))]),
            (2, [.remove(id: 1, queue: 1), .remove(id: 2, queue: 2), .publish(Self.message(4, queues: [2]))]),
        ]
        let state = RecoveredState(meta: meta, segments: segments)
        #expect(state.messages[1]?.map(\.stored.id) == [2, 3])
        #expect(state.messages[2]?.map(\.stored.id) == [4])
        #expect(state.live == [1: 2, 2: 1])
        #expect(state.nextMessageID == 5)
        #expect(state.nextQueueID == 3)
        #expect(state.obsoleteSegments == [])
    }

    @Test func aDeletedQueueTakesItsMessagesAndBindingsAlong() {
        let binding = StoredBinding(vhost: "/", source: "ex", destinationIsQueue: true, destination: "a", key: "", arguments: [:])
        let meta: [MetaRecord] = [
            .exchange(StoredExchange(vhost: "/", name: "ex", type: "fanout", autoDelete: false, isInternal: false, arguments: [:])),
            .queue(StoredQueue(vhost: "/", name: "a", id: 1, autoDelete: false, arguments: [:])),
            .binding(binding),
            .queueDeleted(vhost: "/", name: "a"),
            // Declared again: a new id, so the old messages do not come back into it.
            .queue(StoredQueue(vhost: "/", name: "a", id: 2, autoDelete: false, arguments: [:])),
        ]
        let state = RecoveredState(meta: meta, segments: [(1, [.publish(Self.message(1, queues: [1]))]), (2, [.publish(Self.message(2, queues: [2]))])])
        #expect(state.queues.map(\.id) == [2])
        #expect(state.bindings.isEmpty)
        #expect(state.messages[2]?.map(\.stored.id) == [2])
        #expect(state.messages[1] == nil)
        // Segment 1 holds nothing alive and is the oldest: it can go; 2 cannot.
        #expect(state.obsoleteSegments == [1])
        #expect(state.snapshot.count == 2)
    }

    @Test func onlyTheOldestDrainedSegmentsAreObsolete() {
        let meta: [MetaRecord] = [.queue(StoredQueue(vhost: "/", name: "a", id: 1, autoDelete: false, arguments: [:]))]
        let segments: [(number: UInt32, records: [LogRecord])] = [
            (1, [.publish(Self.message(1, queues: [1]))]),
            (2, [.publish(Self.message(2, queues: [1])), .remove(id: 2, queue: 1)]),
            (3, [.publish(Self.message(3, queues: [1]))]),
        ]
        // Segment 2 is empty but stays: dropping it is safe only once 1 has drained.
        #expect(RecoveredState(meta: meta, segments: segments).obsoleteSegments == [])
        let drained = segments + [(4, [.remove(id: 1, queue: 1)])]
        #expect(RecoveredState(meta: meta, segments: drained).obsoleteSegments == [1, 2])
    }

    @Test func confirmsWaitForTheDiskInPublishOrder() {
        var confirms = PublisherConfirms()
        confirms.published(ticket: 0, refused: false)
        confirms.published(ticket: 0, refused: false)
        #expect(confirms.confirmable(durable: 0) == [.ack(2, multiple: true)])
        confirms.published(ticket: 5, refused: false)
        confirms.published(ticket: 0, refused: false)
        // 3 waits for ticket 5, and 4 waits behind it.
        #expect(confirms.confirmable(durable: 4) == [])
        #expect(confirms.isWaiting)
        #expect(confirms.confirmable(durable: 5) == [.ack(4, multiple: true)])
        #expect(!confirms.isWaiting)
        #expect(confirms.confirmable(durable: 9) == [])
    }

    @Test func aFailedDiskNacksWhatWaitsForIt() {
        var confirms = PublisherConfirms()
        confirms.published(ticket: 0, refused: false)
        confirms.published(ticket: 4, refused: false)
        confirms.published(ticket: 0, refused: false)
        confirms.published(ticket: 5, refused: false)
        #expect(confirms.confirmable(durable: 3) == [.ack(1, multiple: true)])
        #expect(confirms.diskFailed() == [.nack(2), .ack(3, multiple: true), .nack(4)])
        #expect(!confirms.isWaiting)
    }

    @Test func refusedPublishesAreNackedInTheirTurn() {
        var confirms = PublisherConfirms()
        confirms.published(ticket: 0, refused: false)
        confirms.published(ticket: 3, refused: false)
        confirms.published(ticket: 0, refused: true)
        confirms.published(ticket: 0, refused: false)
        #expect(confirms.confirmable(durable: 2) == [.ack(1, multiple: true)])
        #expect(confirms.confirmable(durable: 3) == [.ack(2, multiple: true), .nack(3), .ack(4, multiple: true)])
        confirms.published(ticket: 0, refused: true)
        #expect(confirms.confirmable(durable: 3) == [.nack(5)])
    }
}

/// Paging: a durable queue past its limit drops bodies whose records are on disk and
/// reads them back at delivery, byte for byte.
@Suite struct PersistencePagingTests {
    @Test func pagedOutBodiesComeBackIntact() async throws {
        let directory = NSTemporaryDirectory() + "conductor-paging-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let harness = try await StoreHarness.open(directory, segmentBytes: 256 * 1024, pageOutBytes: 64 * 1024)
        let count = 600
        try await harness.run { core in
            let vhost = core.vhosts["/"]!
            let queue = BrokerQueue(name: "paged", durable: true, exclusiveOwner: nil, autoDelete: false, arguments: [:], vhost: vhost)
            queue.storeID = core.store!.newQueueID()
            vhost.queues["paged"] = queue
            for index in 0..<count {
                var body = ByteBuffer(string: "message \(index) ")
                body.writeRepeatingByte(UInt8(ascii: "a") + UInt8(index % 26), count: 1000)
                let message = Message(exchange: "", routingKey: "paged", properties: BasicProperties(deliveryMode: 2), body: body)
                _ = core.persistIfNeeded(message, queues: [queue])
                queue.enqueue(message)
            }
        }
        // Wait (bounded) until the writer has everything on disk and paging has run.
        var paged = 0
        for _ in 0..<200 {
            paged = try await harness.run { core in core.store!.durableTicket >= UInt64(count) ? core.store!.pagedOut : 0 }
            if paged > 0 { break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        #expect(paged > 300, "only \(paged) of \(count) bodies paged out with a 64 KiB limit")
        let mismatches = try await harness.run { core -> [Int] in
            let queue = core.vhosts["/"]!.queues["paged"]!
            var bad: [Int] = []
            for index in 0..<count {
                guard let queued = queue.popFirst() else { bad.append(index); continue }
                var expected = ByteBuffer(string: "message \(index) ")
                expected.writeRepeatingByte(UInt8(ascii: "a") + UInt8(index % 26), count: 1000)
                if queued.message.body != expected || queued.message.isPagedOut { bad.append(index) }
            }
            return bad
        }
        #expect(mismatches.isEmpty, "bodies that did not come back intact: \(mismatches.prefix(10))")
        #expect(try await harness.run { core in core.store!.pagedIn } == paged)
        try await harness.close(clean: true)
    }
}
