/// The publisher-confirm bookkeeping of one channel in confirm mode, a pure value: which
/// publishes may be acked now. Confirms go out in publish order; a persistent message
/// waits for its store ticket to be on disk, and everything after it waits too (so one
/// `basic.ack multiple` still covers a whole burst). A publish a queue refused
/// (`x-overflow` reject-publish) is nacked in its turn.
struct PublisherConfirms {
    enum Action: Equatable {
        case ack(UInt64, multiple: Bool)
        case nack(UInt64)
    }

    private struct Waiting {
        var tag: UInt64
        /// The store ticket to wait for; 0 for a nack.
        var ticket: UInt64
    }

    /// Delivery tag of the last publish (publish sequence numbers start at 1).
    private(set) var published: UInt64 = 0
    /// Every tag up to this one has been acked or nacked.
    private(set) var confirmed: UInt64 = 0
    private var waiting: [Waiting] = []
    private var head = 0

    /// Something waits for the disk.
    var isWaiting: Bool { self.head < self.waiting.count }

    /// One publish: `ticket` is 0 unless it must reach the disk first; `refused` nacks it.
    mutating func published(ticket: UInt64, refused: Bool) {
        self.published += 1
        if refused {
            self.waiting.append(Waiting(tag: self.published, ticket: 0))
        } else if ticket != 0 {
            self.waiting.append(Waiting(tag: self.published, ticket: ticket))
        }
    }

    /// The disk cannot be written: every publish still waiting for it is nacked (in its
    /// turn), so publishers learn of it instead of waiting forever.
    mutating func diskFailed() -> [Action] {
        for index in self.head..<self.waiting.count { self.waiting[index].ticket = 0 }
        return self.confirmable(durable: .max)
    }

    /// What can be sent now that the store is durable up to `durable`.
    mutating func confirmable(durable: UInt64) -> [Action] {
        var actions: [Action] = []
        while self.head < self.waiting.count {
            let entry = self.waiting[self.head]
            if entry.ticket == 0 {
                if entry.tag - 1 > self.confirmed { actions.append(.ack(entry.tag - 1, multiple: true)) }
                actions.append(.nack(entry.tag))
                self.confirmed = entry.tag
            } else if entry.ticket > durable {
                break
            }
            self.head += 1
        }
        if self.head == self.waiting.count {
            self.waiting.removeAll(keepingCapacity: true)
            self.head = 0
        } else if self.head >= 1024 {
            self.waiting.removeFirst(self.head)
            self.head = 0
        }
        let limit = self.head < self.waiting.count ? self.waiting[self.head].tag - 1 : self.published
        if limit > self.confirmed {
            actions.append(.ack(limit, multiple: true))
            self.confirmed = limit
        }
        return actions
    }
}
