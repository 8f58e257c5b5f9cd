import AMQPProtocol
import Glibc
import NIOCore

/// The event loop's side of persistence: numbers messages and queues, encodes records
/// into a buffer that is handed to the `MessageLog` writer once per turn of the loop,
/// knows which ticket is on disk (for publisher confirms), and keeps per segment what is
/// alive in it, so drained segments are deleted and a segment pinned by a few live
/// messages is compacted (`CompactionPolicy`). Owned by the broker's loop.
final class BrokerStore {
    /// What is known about one segment file.
    struct Segment {
        /// Bytes of records written to it (handed to the writer).
        var size = 0
        /// (message, queue) pairs still alive in it.
        var livePairs = 0
        /// Record bytes of its messages that some durable queue still holds.
        var liveBytes = 0
        /// Its live messages by `Message.storeSlot`; nil where one has gone (or moved on).
        var messages: [Message?] = []
    }

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
    /// The segment being written (number `segment`), kept apart from the older ones so a
    /// publish touches no dictionary.
    private var current = Segment()
    private var older: [UInt32: Segment] = [:]
    private var oldestSegment: UInt32
    /// Totals over the segments on disk, for `CompactionPolicy`.
    private(set) var diskBytes = 0
    private(set) var liveBytes = 0
    private(set) var failure: String?
    /// Read descriptors of segments, for paging bodies back in.
    private var readers: [UInt32: Int32] = [:]
    /// Bodies dropped from memory and read back, since start (for tests and the log).
    private(set) var pagedOut = 0
    private(set) var pagedIn = 0
    /// Messages copied forward by compaction, since start (for tests and the log).
    private(set) var compacted = 0
    /// Compaction: a slice is scheduled; segments below `compactionEnd` are being emptied,
    /// `compactionSlot` is where the next slice resumes in the oldest one.
    private var compactionScheduled = false
    /// Record bytes one slice copies at most (`CompactionPolicy.sliceBytes`; tests make
    /// it small to interleave slices with other work).
    var compactionSliceBytes = CompactionPolicy.sliceBytes
    private var compactionEnd: UInt32 = 0
    /// A compaction round is under way (for tests and the log).
    var isCompacting: Bool { self.compactionEnd != 0 }
    private var compactionSource: UInt32 = 0
    /// Set if a round found pairs counted that no filed message accounts for (a bug of
    /// ours): compaction stops for good rather than loop; drained segments still go.
    private(set) var compactionStuck = false
    private var compactionSlot = 0
    /// Paged-out messages compacted whose new record is not on disk yet: `pageIn` serves
    /// them from here until it is (their old segment may be gone by then).
    private var copiedBodies: [ObjectIdentifier: (message: Message, body: ByteBuffer)] = [:]

    /// `segments`: the sizes of the segment files kept from before (not the new one).
    init(log: MessageLog, eventLoop: any EventLoop, recovered: RecoveredState, segment: UInt32, oldestSegment: UInt32,
         segments: [UInt32: Int], segmentSize: Int)
    {
        self.log = log
        self.segmentSize = Swift.max(4096, segmentSize)
        self.eventLoop = eventLoop
        self.records = ByteBufferAllocator().buffer(capacity: 64 * 1024)
        self.meta = ByteBufferAllocator().buffer(capacity: 1024)
        self.nextMessageID = recovered.nextMessageID
        self.nextQueueID = recovered.nextQueueID
        self.segment = segment
        self.oldestSegment = oldestSegment
        for (number, size) in segments where number >= oldestSegment && number < segment {
            self.older[number] = Segment(size: size)
            self.diskBytes += size
        }
    }

    func newQueueID() -> UInt64 {
        defer { self.nextQueueID += 1 }
        return self.nextQueueID
    }

    /// A message the store already holds (recovery): counts towards its segment.
    func adopt(_ message: Message, recovered: RecoveredState.Message) {
        message.storeID = recovered.stored.id
        message.segment = recovered.segment
        message.bodyOffset = recovered.bodyOffset
        message.recordSize = recovered.recordSize
        message.storeQueues = StoredQueueSet(recovered.queues)
        message.arrival = recovered.stored.arrival
        guard self.older[recovered.segment] != nil else { return }
        message.storeSlot = Int32(self.older[recovered.segment]!.messages.count)
        self.older[recovered.segment]!.messages.append(message)
        self.older[recovered.segment]!.livePairs += recovered.queues.count
        self.older[recovered.segment]!.liveBytes += recovered.recordSize
        self.liveBytes += recovered.recordSize
    }

    /// Recovery is done: a log left with much garbage starts compacting.
    func restored() {
        self.startCompactionIfNeeded()
    }

    /// Writes a persistent message for the durable queues it reached; returns the ticket
    /// a confirm must wait for.
    func persist(_ message: Message, queues: [UInt64]) -> UInt64 {
        if message.storeID == 0 {
            message.storeID = self.nextMessageID
            self.nextMessageID += 1
        } else if message.storeSlot >= 0 {
            // Written before for other queues: the new record lists them all and replaces it.
            let previous = message.storeQueues
            self.detach(message, from: message.segment)
            let all = previous.array + queues.filter { !previous.contains($0) }
            message.storeQueues = StoredQueueSet(all)
            return self.write(message, body: message.body, queues: all)
        }
        if message.arrival == 0 { message.arrival = RecoveredExpiry.wallClockMilliseconds() }
        message.storeQueues = StoredQueueSet(queues)
        return self.write(message, body: message.body, queues: queues)
    }

    /// Appends `message`'s publish record to the current segment and files it there;
    /// `queues` are `message.storeQueues`.
    private func write(_ message: Message, body: ByteBuffer, queues: [UInt64]) -> UInt64 {
        let offset = self.current.size
        let before = self.records.writerIndex
        LogRecord.publish(StoredMessage(
            id: message.storeID, queues: queues, exchange: message.exchange, routingKey: message.routingKey,
            properties: message.properties, body: body, arrival: message.arrival
        )).encode(into: &self.records)
        let encoded = self.records.writerIndex - before
        message.segment = self.segment
        // The body is the record's last field.
        message.bodyOffset = offset + encoded - message.size
        message.recordSize = encoded
        message.storeSlot = Int32(self.current.messages.count)
        self.current.messages.append(message)
        self.current.size += encoded
        self.current.livePairs += queues.count
        self.current.liveBytes += encoded
        self.diskBytes += encoded
        self.liveBytes += encoded
        self.ticket += 1
        message.ticket = self.ticket
        if self.current.size >= self.segmentSize { self.roll() }
        self.scheduleHandoff()
        return self.ticket
    }

    /// The message left a durable queue for good (acked, dropped, expired, purged ...).
    func remove(_ message: Message, queue: UInt64) {
        guard message.storeQueues.remove(queue) else { return }
        LogRecord.remove(id: message.storeID, queue: queue).encode(into: &self.records)
        self.current.size += 25
        self.diskBytes += 25
        let segment = message.segment
        let gone = message.storeQueues.isEmpty
        if segment == self.segment {
            self.current.livePairs -= 1
            if gone { self.release(message, from: &self.current) }
        } else if self.older.index(forKey: segment) != nil {
            self.older[segment]!.livePairs -= 1
            if gone { self.release(message, from: &self.older[segment]!) }
            if segment == self.oldestSegment, self.older[segment]!.livePairs <= 0 { self.deleteDrainedSegments() }
        }
        if self.current.size >= self.segmentSize {
            // Removal records fill segments too (acks with no publishes in between).
            self.roll()
        } else if gone, self.compactionEnd == 0 {
            // Garbage grew: a burst of acks can leave a pinned log without another roll.
            self.startCompactionIfNeeded()
        }
        self.scheduleHandoff()
    }

    /// No durable queue holds `message` any more: its record is garbage.
    private func release(_ message: Message, from segment: inout Segment) {
        let slot = Int(message.storeSlot)
        if slot >= 0, slot < segment.messages.count { segment.messages[slot] = nil }
        segment.liveBytes -= message.recordSize
        self.liveBytes -= message.recordSize
        message.storeSlot = -1
    }

    /// Takes `message` (all its pairs) out of the segment it is filed in.
    private func detach(_ message: Message, from number: UInt32) {
        let pairs = message.storeQueues.count
        if number == self.segment {
            self.current.livePairs -= pairs
            self.release(message, from: &self.current)
        } else if self.older.index(forKey: number) != nil {
            self.older[number]!.livePairs -= pairs
            self.release(message, from: &self.older[number]!)
        }
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
        self.older[self.segment] = self.current
        self.current = Segment()
        self.segment += 1
        self.operations.append(.roll(self.segment))
        self.deleteDrainedSegments()
        self.startCompactionIfNeeded()
    }

    private func deleteDrainedSegments() {
        while self.oldestSegment < self.segment, (self.older[self.oldestSegment]?.livePairs ?? 0) <= 0 {
            self.flushRecords()
            // The writer unlinks it only after this batch (with any copies of its
            // messages) is fsynced.
            self.operations.append(.delete(self.oldestSegment))
            self.diskBytes -= self.older[self.oldestSegment]?.size ?? 0
            self.older[self.oldestSegment] = nil
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

    // MARK: - Compaction

    /// Starts a round when `CompactionPolicy` says so: it empties the segments older than
    /// the current one, oldest first, a slice per turn of the loop.
    private func startCompactionIfNeeded() {
        guard !self.compactionScheduled, !self.compactionStuck, self.compactionEnd <= self.oldestSegment, self.failure == nil,
            CompactionPolicy.shouldCompact(
                diskBytes: self.diskBytes, liveBytes: self.liveBytes, segmentSize: self.segmentSize,
                segmentsBehind: Int(self.segment - self.oldestSegment)
            )
        else { return }
        self.compactionEnd = self.segment
        self.compactionSlot = 0
        self.scheduleCompaction()
    }

    private func scheduleCompaction() {
        self.compactionScheduled = true
        self.eventLoop.assumeIsolated().execute { self.compactSlice() }
    }

    /// Copies up to `CompactionPolicy.sliceBytes` of the oldest segment's live messages
    /// into the current segment; a segment emptied that way is deleted as any drained one.
    func compactSlice() {
        self.compactionScheduled = false
        var budget = self.compactionSliceBytes
        var stuck = false
        while budget > 0, self.failure == nil, self.oldestSegment < self.compactionEnd, self.older[self.oldestSegment] != nil {
            let source = self.oldestSegment
            if source != self.compactionSource {
                self.compactionSource = source
                self.compactionSlot = 0
            }
            if self.compactionSlot >= self.older[source]!.messages.count {
                // Everything alive in it was copied, so it is drained and goes.
                self.deleteDrainedSegments()
                // Pairs counted that no filed message accounts for: our bug; stop the round.
                if self.oldestSegment == source { stuck = true }
                if stuck { break }
                continue
            }
            let slot = self.compactionSlot
            self.compactionSlot += 1
            // Looking at a slot costs too, so a segment of gone messages is no free pass.
            budget -= 16
            guard let message = self.older[source]!.messages[slot] else { continue }
            budget -= message.recordSize
            self.copyForward(message, from: source)
        }
        if !stuck, self.failure == nil, self.oldestSegment < self.compactionEnd, self.older[self.oldestSegment] != nil {
            self.scheduleCompaction()
        } else {
            self.compactionEnd = 0
            self.compactionStuck = stuck
            self.startCompactionIfNeeded()
        }
    }

    private func copyForward(_ message: Message, from source: UInt32) {
        var body = message.body
        if message.isPagedOut {
            if let copied = self.copiedBodies[ObjectIdentifier(message)], copied.message === message {
                // Copied before and that copy is not on disk yet: the file cannot serve it.
                body = copied.body
            } else {
                guard let stored = self.readBody(message) else { return }
                body = stored
            }
        }
        self.detach(message, from: source)
        _ = self.write(message, body: body, queues: message.storeQueues.array)
        if message.isPagedOut { self.copiedBodies[ObjectIdentifier(message)] = (message, body) }
        self.compacted += 1
    }

    // MARK: - Paging

    /// Drops the body of a persistent message whose record is on disk; false if it cannot.
    func pageOut(_ message: Message) -> Bool {
        guard message.storeID != 0, !message.isPagedOut, message.bodyOffset >= 0, message.ticket <= self.durableTicket,
            message.segment == self.segment || self.older.index(forKey: message.segment) != nil, self.failure == nil
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
        if !self.copiedBodies.isEmpty, let copied = self.copiedBodies.removeValue(forKey: ObjectIdentifier(message)), copied.message === message {
            message.body = copied.body
            return
        }
        // Cannot fail unless the file was changed under us; an empty body is all we have.
        message.body = self.readBody(message) ?? ByteBuffer()
    }

    /// The body of `message` as its current record holds it; nil (and the store failed)
    /// if it cannot be read.
    private func readBody(_ message: Message) -> ByteBuffer? {
        var fd = self.readers[message.segment] ?? -1
        if fd < 0 {
            // A bounded set of open segments: a backlog spread over thousands of them must
            // not run the process out of descriptors.
            if self.readers.count >= 64 { Glibc.close(self.readers.remove(at: self.readers.startIndex).value) }
            fd = Glibc.open(MessageLog.segmentPath(self.log.directory, message.segment), O_RDONLY | O_CLOEXEC)
            if fd >= 0 { self.readers[message.segment] = fd }
        }
        var body = ByteBufferAllocator().buffer(capacity: message.size)
        let read = body.writeWithUnsafeMutableBytes(minimumWritableBytes: message.size) { pointer in
            fd < 0 ? 0 : Swift.max(0, pread(fd, pointer.baseAddress, message.size, off_t(message.bodyOffset)))
        }
        guard read == message.size else {
            self.failure = self.failure ?? "cannot read a paged-out message from segment \(message.segment)"
            return nil
        }
        return body
    }

    /// Hands over what is pending and closes the read descriptors (broker shutdown).
    func shutdown() {
        self.handoff()
        for fd in self.readers.values { Glibc.close(fd) }
        self.readers.removeAll()
    }

    func durable(upTo ticket: UInt64) {
        self.durableTicket = Swift.max(self.durableTicket, ticket)
        if !self.copiedBodies.isEmpty {
            self.copiedBodies = self.copiedBodies.filter { $0.value.message.ticket > self.durableTicket && $0.value.message.isPagedOut }
        }
    }

    func failed(_ reason: String) {
        self.failure = reason
    }
}
