/// Publisher-confirm bookkeeping of one channel: sequence numbers handed out at publish
/// time, which are still unconfirmed, which the broker nacked, and who waits for what.
/// `Waiter` is opaque (a continuation); the tracker only tells the caller whom to resume.
struct ConfirmTracker<Waiter> {
    /// The sequence number the next publish gets (the broker counts from 1 per channel).
    private(set) var nextSequence: UInt64 = 1
    /// Unconfirmed sequence numbers, ascending.
    private var unconfirmed: [UInt64] = []
    private var unconfirmedHead = 0
    /// Nacked sequence numbers not yet reported by `waitForAll`.
    private var nackedSinceLastWait: [UInt64] = []
    private var messageWaiters: [UInt64: Waiter] = [:]
    /// Batch waiters: resolved when everything up to `upTo` is confirmed.
    private var batchWaiters: [(upTo: UInt64, waiter: Waiter)] = []

    enum Resolution {
        /// One message confirmed: true for ack, false for nack.
        case message(Waiter, acked: Bool)
        /// Everything a batch waiter covered is confirmed; these were nacked.
        case batch(Waiter, nacked: [UInt64])
    }

    init() {}

    var unconfirmedCount: Int { self.unconfirmed.count - self.unconfirmedHead }

    /// A message was published; returns its sequence number.
    mutating func published(waiter: Waiter? = nil) -> UInt64 {
        let sequence = self.nextSequence
        self.nextSequence += 1
        self.unconfirmed.append(sequence)
        if let waiter { self.messageWaiters[sequence] = waiter }
        return sequence
    }

    /// Waits for everything published so far; resolves at once when nothing is pending.
    mutating func waitForAll(_ waiter: Waiter) -> Resolution? {
        if self.unconfirmedCount == 0 {
            defer { self.nackedSinceLastWait.removeAll() }
            return .batch(waiter, nacked: self.nackedSinceLastWait)
        }
        self.batchWaiters.append((self.nextSequence - 1, waiter))
        return nil
    }

    /// basic.ack or basic.nack from the broker.
    mutating func confirmReceived(deliveryTag: UInt64, multiple: Bool, ack: Bool) -> [Resolution] {
        var resolutions: [Resolution] = []
        func resolve(_ sequence: UInt64, _ tracker: inout ConfirmTracker) {
            if !ack { tracker.nackedSinceLastWait.append(sequence) }
            if let waiter = tracker.messageWaiters.removeValue(forKey: sequence) {
                resolutions.append(.message(waiter, acked: ack))
            }
        }
        if multiple {
            while self.unconfirmedHead < self.unconfirmed.count, self.unconfirmed[self.unconfirmedHead] <= deliveryTag {
                resolve(self.unconfirmed[self.unconfirmedHead], &self)
                self.unconfirmedHead += 1
            }
        } else if self.unconfirmedHead < self.unconfirmed.count, self.unconfirmed[self.unconfirmedHead] == deliveryTag {
            resolve(deliveryTag, &self)
            self.unconfirmedHead += 1
        } else if let index = self.unconfirmed[self.unconfirmedHead...].firstIndex(of: deliveryTag) {
            resolve(deliveryTag, &self)
            self.unconfirmed.remove(at: index)
        }
        if self.unconfirmedHead > 1024, self.unconfirmedHead * 2 > self.unconfirmed.count {
            self.unconfirmed.removeFirst(self.unconfirmedHead)
            self.unconfirmedHead = 0
        }
        let lowestPending = self.unconfirmedHead < self.unconfirmed.count ? self.unconfirmed[self.unconfirmedHead] : UInt64.max
        if !self.batchWaiters.isEmpty {
            var remaining: [(upTo: UInt64, waiter: Waiter)] = []
            for entry in self.batchWaiters {
                if entry.upTo < lowestPending {
                    let nacked = self.nackedSinceLastWait.filter { $0 <= entry.upTo }
                    resolutions.append(.batch(entry.waiter, nacked: nacked))
                } else {
                    remaining.append(entry)
                }
            }
            if remaining.count != self.batchWaiters.count {
                let reportedUpTo = self.batchWaiters.filter { $0.upTo < lowestPending }.map(\.upTo).max() ?? 0
                self.nackedSinceLastWait.removeAll { $0 <= reportedUpTo }
            }
            self.batchWaiters = remaining
        }
        return resolutions
    }

    /// The channel or connection is gone: every waiter must fail.
    mutating func failAll() -> [Waiter] {
        defer {
            self.messageWaiters.removeAll()
            self.batchWaiters.removeAll()
            self.unconfirmed.removeAll()
            self.unconfirmedHead = 0
        }
        return Array(self.messageWaiters.values) + self.batchWaiters.map(\.waiter)
    }
}

extension ConfirmTracker: Sendable where Waiter: Sendable {}
