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
    let body: ByteBuffer
    /// `body.readableBytes`, what flow control counts.
    let size: Int

    init(exchange: String, routingKey: String, properties: BasicProperties, body: ByteBuffer) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.properties = properties
        self.body = body
        self.size = body.readableBytes
    }
}

/// A message in a queue: `sequence` is its position in arrival order, so a requeued
/// message goes back where it was.
struct QueuedMessage {
    var message: Message
    var sequence: UInt64
    var redelivered: Bool
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

    mutating func removeAll() -> Int {
        let count = self.count
        self.storage.removeAll()
        self.head = 0
        return count
    }
}
