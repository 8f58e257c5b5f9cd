import AMQPProtocol
import NIOCore

/// The event loop's side of persistence: numbers messages and queues, encodes records
/// into a buffer that is handed to the `MessageLog` writer once per turn of the loop,
/// knows which ticket is on disk (for publisher confirms), and counts what is alive in
/// each segment so drained segments are deleted. Owned by the broker's loop.
final class BrokerStore {
    /// Segments roll over at this size; a segment goes once all its messages are gone.
    let segmentSize: Int

    let log: MessageLog
    private let eventLoop: any EventLoop
    private var operations: [MessageLog.Operation] = []
    private var records: ByteBuffer
    private var meta: ByteBuffer
    private var handoffScheduled = false
    private var nextMessageID: UInt64
    private var nextQueueID: UInt64
    /// Tickets number the publish records; one is durable once the writer says so.
    private(set) var ticket: UInt64 = 0
    private(set) var durableTicket: UInt64 = 0
    private(set) var segment: UInt32
    private var segmentBytes = 0
    private var oldestSegment: UInt32
    private var live: [UInt32: Int]
    private(set) var failure: String?

    init(log: MessageLog, eventLoop: any EventLoop, recovered: RecoveredState, segment: UInt32, oldestSegment: UInt32, segmentSize: Int) {
        self.log = log
        self.segmentSize = Swift.max(4096, segmentSize)
        self.eventLoop = eventLoop
        self.records = ByteBufferAllocator().buffer(capacity: 64 * 1024)
        self.meta = ByteBufferAllocator().buffer(capacity: 1024)
        self.nextMessageID = recovered.nextMessageID
        self.nextQueueID = recovered.nextQueueID
        self.segment = segment
        self.oldestSegment = oldestSegment
        self.live = recovered.live
        self.live[segment] = 0
    }

    func newQueueID() -> UInt64 {
        defer { self.nextQueueID += 1 }
        return self.nextQueueID
    }

    /// A message the store already holds (recovery): counts towards its segment.
    func adopt(_ message: Message, id: UInt64, segment: UInt32) {
        message.storeID = id
        message.segment = segment
    }

    /// Writes a persistent message for the durable queues it reached; returns the ticket
    /// a confirm must wait for.
    func persist(_ message: Message, queues: [UInt64]) -> UInt64 {
        if message.storeID == 0 {
            message.storeID = self.nextMessageID
            self.nextMessageID += 1
        }
        message.segment = self.segment
        let before = self.records.writerIndex
        LogRecord.publish(StoredMessage(
            id: message.storeID, queues: queues, exchange: message.exchange, routingKey: message.routingKey,
            properties: message.properties, body: message.body
        )).encode(into: &self.records)
        self.segmentBytes += self.records.writerIndex - before
        self.live[self.segment, default: 0] += queues.count
        self.ticket += 1
        if self.segmentBytes >= self.segmentSize { self.roll() }
        self.scheduleHandoff()
        return self.ticket
    }

    /// The message left a durable queue for good (acked, dropped, expired, purged ...).
    func remove(_ message: Message, queue: UInt64) {
        LogRecord.remove(id: message.storeID, queue: queue).encode(into: &self.records)
        self.segmentBytes += 25
        let segment = message.segment
        let remaining = (self.live[segment] ?? 1) - 1
        self.live[segment] = remaining
        if remaining <= 0, segment == self.oldestSegment { self.deleteDrainedSegments() }
        self.scheduleHandoff()
    }

    func record(_ record: MetaRecord) {
        self.flushRecords()
        record.encode(into: &self.meta)
        self.operations.append(.meta(self.meta))
        self.meta.clear()
        self.scheduleHandoff()
    }

    private func roll() {
        self.flushRecords()
        self.segment += 1
        self.segmentBytes = 0
        self.live[self.segment] = 0
        self.operations.append(.roll(self.segment))
        self.deleteDrainedSegments()
    }

    private func deleteDrainedSegments() {
        while self.oldestSegment < self.segment, (self.live[self.oldestSegment] ?? 0) <= 0 {
            self.flushRecords()
            self.operations.append(.delete(self.oldestSegment))
            self.live[self.oldestSegment] = nil
            self.oldestSegment += 1
        }
    }

    private func flushRecords() {
        guard self.records.readableBytes > 0 else { return }
        self.operations.append(.log(self.records))
        self.records = ByteBufferAllocator().buffer(capacity: Swift.max(64 * 1024, self.records.capacity))
    }

    private func scheduleHandoff() {
        guard !self.handoffScheduled else { return }
        self.handoffScheduled = true
        self.eventLoop.assumeIsolated().execute { self.handoff() }
    }

    /// Everything encoded this turn of the loop goes to the writer in one hand-over.
    func handoff() {
        self.handoffScheduled = false
        self.flushRecords()
        guard !self.operations.isEmpty else { return }
        let operations = self.operations
        self.operations.removeAll(keepingCapacity: true)
        self.log.submit(operations, ticket: self.ticket)
    }

    func durable(upTo ticket: UInt64) {
        self.durableTicket = Swift.max(self.durableTicket, ticket)
    }

    func failed(_ reason: String) {
        self.failure = reason
    }
}
