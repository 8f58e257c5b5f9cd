import AMQPProtocol
import NIOCore

/// A published message. The body is a slice of the buffer it arrived in when it fit one
/// frame, so routing to queues and delivering copies no payload bytes until the write.
/// A class: the one instance is shared by every queue and delivery it goes to, so moving
/// it around is one reference count, not a copy of the (large) properties.
final class Message {
    let exchange: String
    let routingKey: String
    let properties: BasicProperties
    /// Empty while paged out (see `BrokerStore.pageOut`).
    var body: ByteBuffer
    /// `body.readableBytes`, what flow control counts.
    let size: Int
    /// Its id in the data directory, 0 while not persisted (see `BrokerStore`).
    var storeID: UInt64 = 0
    /// The segment file holding it (meaningful when `storeID` is not 0), and its index in
    /// that segment's message list (`BrokerStore`; -1 when not filed).
    var segment: UInt32 = 0
    var storeSlot: Int32 = -1
    /// Where the body starts in the segment file, and the store ticket of its record.
    var bodyOffset = -1
    var ticket: UInt64 = 0
    /// The body was dropped from memory; `BrokerStore.pageIn` reads it back.
    var isPagedOut = false
    /// The durable queues (store ids) whose copy of it is still alive on disk; compaction
    /// rewrites its record for exactly these.
    var storeQueues = StoredQueueSet()
    /// The size of its record in the segment.
    var recordSize = 0
    /// When it was first written (wall clock, ms since 1970), so TTLs survive a restart.
    var arrival: Int64 = 0

    var isPersistent: Bool { self.properties.deliveryMode == 2 }

    init(exchange: String, routingKey: String, properties: BasicProperties, body: ByteBuffer) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.properties = properties
        self.body = body
        self.size = body.readableBytes
    }

    /// A message recovered from the data directory whose body stays on disk until it is
    /// delivered (`BrokerStore.pageIn` reads `size` bytes at `bodyOffset` of `segment`).
    init(exchange: String, routingKey: String, properties: BasicProperties, pagedOutSize size: Int) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.properties = properties
        self.body = ByteBuffer()
        self.size = size
        self.isPagedOut = true
    }
}

/// The durable queues a stored message is still in: the first inline, so the usual
/// message in one queue costs no allocation. Queue ids start at 1; 0 means none.
struct StoredQueueSet {
    private var first: UInt64 = 0
    private var rest: [UInt64] = []

    init() {}

    init(_ queues: [UInt64]) {
        guard let head = queues.first else { return }
        self.first = head
        if queues.count > 1 { self.rest = Array(queues.dropFirst()) }
    }

    var count: Int { (self.first == 0 ? 0 : 1) + self.rest.count }
    var isEmpty: Bool { self.first == 0 }
    var array: [UInt64] { self.first == 0 ? [] : [self.first] + self.rest }

    func contains(_ queue: UInt64) -> Bool { queue != 0 && (self.first == queue || self.rest.contains(queue)) }

    /// Removes `queue`; false if it was not in the set.
    mutating func remove(_ queue: UInt64) -> Bool {
        if queue != 0, self.first == queue {
            self.first = self.rest.isEmpty ? 0 : self.rest.removeFirst()
            return true
        }
        guard let index = self.rest.firstIndex(of: queue) else { return false }
        self.rest.remove(at: index)
        return true
    }
}

/// A message in a queue: `sequence` is its position in arrival order, so a requeued
/// message goes back where it was.
struct QueuedMessage {
    var message: Message
    var sequence: UInt64
    var redelivered: Bool
    /// When it expires (milliseconds of `BrokerClock`), 0 for never: the shorter of the
    /// queue's `x-message-ttl` and the message's `expiration`.
    var expiresAt: Int64 = 0
}

/// FIFO of queued messages: an array with a moving head (amortised O(1) both ends) that
/// also takes requeued messages back at their original position.
struct MessageBuffer {
    private var storage: [QueuedMessage?] = []
    private var head = 0

    var count: Int { self.storage.count - self.head }
    var isEmpty: Bool { self.count == 0 }

    mutating func append(_ message: QueuedMessage) {
        self.storage.append(message)
    }

    mutating func popFirst() -> QueuedMessage? {
        guard self.head < self.storage.count else { return nil }
        let message = self.storage[self.head].take()
        self.head += 1
        if self.head == self.storage.count {
            self.storage.removeAll(keepingCapacity: true)
            self.head = 0
        } else if self.head >= 4096, self.head * 2 >= self.storage.count {
            self.storage.removeFirst(self.head)
            self.head = 0
        }
        return message
    }

    /// Puts messages back in sequence order ahead of anything that arrived after them.
    mutating func requeue(_ messages: [QueuedMessage]) {
        guard !messages.isEmpty else { return }
        let returning = messages.sorted { $0.sequence < $1.sequence }
        if let first = self.storage[self.head...].first, let f = first, returning.last!.sequence < f.sequence,
            self.head >= returning.count
        {
            // Common case: all of them precede the current head and there is room before it.
            for (offset, message) in returning.enumerated() {
                self.storage[self.head - returning.count + offset] = message
            }
            self.head -= returning.count
            return
        }
        var merged: [QueuedMessage?] = []
        merged.reserveCapacity(self.count + returning.count)
        var index = 0
        for case let queued? in self.storage[self.head...] {
            while index < returning.count, returning[index].sequence < queued.sequence {
                merged.append(returning[index])
                index += 1
            }
            merged.append(queued)
        }
        merged.append(contentsOf: returning[index...].map { Optional($0) })
        self.storage = merged
        self.head = 0
    }

    var first: QueuedMessage? {
        self.head < self.storage.count ? self.storage[self.head] : nil
    }

    func forEach(_ body: (QueuedMessage) -> Void) {
        for case let queued? in self.storage[self.head...] { body(queued) }
    }

    /// Newest first, while `body` returns true; returns false if it was stopped.
    func reverseWalk(_ body: (QueuedMessage) -> Bool) -> Bool {
        var index = self.storage.count - 1
        while index >= self.head {
            if let queued = self.storage[index], !body(queued) { return false }
            index -= 1
        }
        return true
    }

    mutating func removeAll() -> Int {
        let count = self.count
        self.storage.removeAll()
        self.head = 0
        return count
    }
}

/// The ready messages of a queue: one FIFO per priority level (one level without
/// `x-max-priority`); the highest non-empty level is served first.
struct PriorityMessages {
    private var levels: [MessageBuffer]
    private(set) var count = 0

    init(levels: Int) {
        self.levels = Array(repeating: MessageBuffer(), count: Swift.max(1, levels))
    }

    var isEmpty: Bool { self.count == 0 }

    mutating func append(_ message: QueuedMessage, priority: Int) {
        self.levels[priority].append(message)
        self.count += 1
    }

    mutating func popFirst() -> QueuedMessage? {
        guard self.count > 0 else { return nil }
        if self.levels.count == 1 {
            self.count -= 1
            return self.levels[0].popFirst()
        }
        for level in self.levels.indices.reversed() where !self.levels[level].isEmpty {
            self.count -= 1
            return self.levels[level].popFirst()
        }
        return nil
    }

    /// The message `popFirst` would return.
    var first: QueuedMessage? {
        for level in self.levels.indices.reversed() where !self.levels[level].isEmpty { return self.levels[level].first }
        return nil
    }

    /// The earliest expiry among the heads of the levels (expiry happens at heads).
    var earliestHeadExpiry: Int64? {
        var earliest: Int64?
        for level in self.levels where !level.isEmpty {
            if let at = level.first?.expiresAt, at != 0 { earliest = Swift.min(earliest ?? at, at) }
        }
        return earliest
    }

    mutating func requeue(_ messages: [QueuedMessage], priority: Int) {
        self.levels[priority].requeue(messages)
        self.count += messages.count
    }

    func forEach(_ body: (QueuedMessage) -> Void) {
        for level in self.levels { level.forEach(body) }
    }

    /// The messages served last first (lowest priority, newest), while `body` returns true.
    func reverseWalk(_ body: (QueuedMessage) -> Bool) {
        for level in self.levels where !level.reverseWalk(body) { return }
    }

    mutating func removeAll() -> Int {
        let count = self.count
        for index in self.levels.indices { _ = self.levels[index].removeAll() }
        self.count = 0
        return count
    }
}
