import AMQPProtocol
import Glibc
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
    /// Read descriptors of segments, for paging bodies back in.
    private var readers: [UInt32: Int32] = [:]
    /// Bodies dropped from memory and read back, since start (for tests and the log).
    private(set) var pagedOut = 0
    private(set) var pagedIn = 0

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
        let offset = self.segmentBytes
        let before = self.records.writerIndex
        LogRecord.publish(StoredMessage(
            id: message.storeID, queues: queues, exchange: message.exchange, routingKey: message.routingKey,
            properties: message.properties, body: message.body
        )).encode(into: &self.records)
        let encoded = self.records.writerIndex - before
        self.segmentBytes += encoded
        // The body is the record's last field.
        message.bodyOffset = offset + encoded - message.size
        self.live[self.segment, default: 0] += queues.count
        self.ticket += 1
        message.ticket = self.ticket
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
            if let fd = self.readers.removeValue(forKey: self.oldestSegment) { Glibc.close(fd) }
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

    // MARK: - Paging

    /// Drops the body of a persistent message whose record is on disk; false if it cannot.
    func pageOut(_ message: Message) -> Bool {
        guard message.storeID != 0, !message.isPagedOut, message.bodyOffset >= 0, message.ticket <= self.durableTicket,
            self.live[message.segment] != nil, self.failure == nil
        else { return false }
        message.body = ByteBuffer()
        message.isPagedOut = true
        self.pagedOut += 1
        return true
    }

    /// Reads a paged-out body back from its segment (a read on the loop: the segment was
    /// written recently or is in the page cache; only queues past the threshold pay it).
    func pageIn(_ message: Message) {
        guard message.isPagedOut else { return }
        message.isPagedOut = false
        self.pagedIn += 1
        var fd = self.readers[message.segment] ?? -1
        if fd < 0 {
            fd = Glibc.open(MessageLog.segmentPath(self.log.directory, message.segment), O_RDONLY | O_CLOEXEC)
            if fd >= 0 { self.readers[message.segment] = fd }
        }
        var body = ByteBufferAllocator().buffer(capacity: message.size)
        let read = body.writeWithUnsafeMutableBytes(minimumWritableBytes: message.size) { pointer in
            fd < 0 ? 0 : Swift.max(0, pread(fd, pointer.baseAddress, message.size, off_t(message.bodyOffset)))
        }
        if read != message.size {
            // Cannot happen unless the file was changed under us; an empty body is all we have.
            self.failure = self.failure ?? "cannot read a paged-out message from segment \(message.segment)"
        }
        message.body = body
    }

    /// Hands over what is pending and closes the read descriptors (broker shutdown).
    func shutdown() {
        self.handoff()
        for fd in self.readers.values { Glibc.close(fd) }
        self.readers.removeAll()
    }

    func durable(upTo ticket: UInt64) {
        self.durableTicket = Swift.max(self.durableTicket, ticket)
    }

    func failed(_ reason: String) {
        self.failure = reason
    }
}
