import Mesh

/// Every named lock of a coordinator, without I/O: holders (up to each lock's limit) with
/// leases, FIFO waiters, and fencing tokens drawn from a durably reserved range.
///
/// Events are the methods (`acquireRequested`, `releaseRequested`, `timePassed`,
/// `ownerGone`, `tokensReserved`); each returns the actions to carry out in order:
/// store a reservation before any token from it is issued, store a grant before answering
/// it, answer refusals, forget removed holders. `now` is wall-clock milliseconds.
///
/// A holder is more than its token (which `status` shows to anyone): each grant carries
/// the hash of a secret key handed to that holder alone, and a renewal or release must
/// present the key, or be an administrator's forced release.
public struct LockStateMachine: Sendable {
    public typealias WaiterID = UInt64

    public enum Action: Hashable, Sendable {
        /// Store that tokens through this one may be issued, then call `tokensReserved`.
        case reserveTokens(through: Int64)
        /// Store the holder, then answer the waiter with its grant.
        case grant(WaiterID, LockHolderRecord)
        /// Answer the waiter with this exception (timeout, conflict).
        case refuse(WaiterID, ExceptionBody)
        /// The holder no longer holds the lock: delete its record.
        case remove(LockHolderRecord, RemovalReason)
        /// The request names this holder but did not prove to be it: refuse it (403);
        /// nothing changed.
        case forbid(LockHolderRecord)
    }

    public enum RemovalReason: String, Hashable, Sendable {
        case released, leaseExpired = "lease expired", ownerGone = "owner disconnected", forced = "released by force"
    }

    /// What a release shows to be allowed to end a hold.
    public enum HolderProof: Hashable, Sendable {
        /// The hash of the key the request carried (nil: it carried none).
        case key(HolderKeyHash?)
        /// An administrator's forced release (the caller checked who asks).
        case administrator

        func proves(_ holder: LockHolderRecord) -> Bool {
            switch self {
            case .administrator: return true
            case .key(let presented):
                guard let presented, let expected = holder.keyHash else { return false }
                return expected.matches(presented)
            }
        }
    }

    public enum RenewOutcome: Hashable, Sendable {
        /// Store it: the lease now runs to its new `expiresAt`.
        case renewed(LockHolderRecord)
        /// The token does not hold the lock (released, lease over, owner gone).
        case notHeld
        /// The token holds it, but the request did not carry its key: nothing changed.
        case forbidden(LockHolderRecord)
    }

    struct Waiter: Hashable, Sendable {
        var id: WaiterID
        var request: LockAcquireRequest
        var keyHash: HolderKeyHash
        var acquiredBy: String?
        var deadline: Int64
        var enqueuedAt: Int64
    }

    struct Entry: Hashable, Sendable {
        var limit: Int
        var holders: [LockHolderRecord] = []
        var waiters: [Waiter] = []
        var isIdle: Bool { self.holders.isEmpty && self.waiters.isEmpty }
    }

    /// How many tokens one reservation covers: one durable write per this many grants.
    public static let reservationBlock: Int64 = 4096

    private(set) var entries: [String: Entry] = [:]
    /// The next token to issue.
    public private(set) var nextToken: Int64
    /// Tokens up to here are durably reserved.
    public private(set) var reservedThrough: Int64
    private var reservationPending = false

    /// Starts from what the store kept: its holders keep their tokens and leases, and no
    /// token of the reserved range is issued again (some may have been issued before a crash).
    public init(holders: [LockHolderRecord] = [], reservedThrough: Int64 = 0) {
        let highest = holders.map(\.token).max() ?? 0
        self.reservedThrough = max(reservedThrough, highest)
        self.nextToken = self.reservedThrough + 1
        for holder in holders.sorted(by: { $0.token < $1.token }) {
            self.entries[holder.lock, default: Entry(limit: holder.limit)].holders.append(holder)
        }
    }

    // MARK: - Events

    /// `keyHash`: the hash of the key the grant will hand this waiter; `acquiredBy`: the
    /// request's AMQP user, kept with the holder for `status`.
    public mutating func acquireRequested(
        _ request: LockAcquireRequest, waiter: WaiterID, keyHash: HolderKeyHash, acquiredBy: String? = nil, now: Int64
    ) -> [Action] {
        var entry = self.entries[request.lock] ?? Entry(limit: request.limit)
        if entry.isIdle { entry.limit = request.limit }
        guard entry.limit == request.limit else {
            return [.refuse(waiter, ExceptionBody(code: .conflict, text: "lock '\(request.lock)' is in use with limit \(entry.limit), not \(request.limit)"))]
        }
        entry.waiters.append(
            Waiter(id: waiter, request: request, keyHash: keyHash, acquiredBy: acquiredBy, deadline: now + request.waitMilliseconds, enqueuedAt: now))
        self.entries[request.lock] = entry
        var actions = self.promote(request.lock, now: now)
        // Not granted at once and not willing to wait: refused now rather than at the next tick.
        if request.waitMilliseconds == 0, self.entries[request.lock]?.waiters.contains(where: { $0.id == waiter }) == true,
            !self.reservationPending
        {
            actions += self.expireWaiter(waiter, lock: request.lock, now: now)
        }
        return actions
    }

    /// Extends the lease of the holder with this token, if `presented` is the hash of its key.
    public mutating func renewRequested(lock: String, token: Int64, presented: HolderKeyHash?, ttlMilliseconds: Int64?, now: Int64) -> RenewOutcome {
        guard var entry = self.entries[lock], let index = entry.holders.firstIndex(where: { $0.token == token }) else { return .notHeld }
        guard HolderProof.key(presented).proves(entry.holders[index]) else { return .forbidden(entry.holders[index]) }
        guard entry.holders[index].expiresAt > now else { return .notHeld }
        if let ttl = ttlMilliseconds { entry.holders[index].ttlMilliseconds = ttl }
        entry.holders[index].expiresAt = now + entry.holders[index].ttlMilliseconds
        let renewed = entry.holders[index]
        self.entries[lock] = entry
        return .renewed(renewed)
    }

    /// Ends the hold of this token when `proof` allows it (`.forbid` when not); no action
    /// when the token does not hold the lock.
    public mutating func releaseRequested(lock: String, token: Int64, proof: HolderProof, now: Int64) -> [Action] {
        guard var entry = self.entries[lock], let index = entry.holders.firstIndex(where: { $0.token == token }) else { return [] }
        guard proof.proves(entry.holders[index]) else { return [.forbid(entry.holders[index])] }
        let holder = entry.holders.remove(at: index)
        self.entries[lock] = entry
        return [.remove(holder, proof == .administrator ? .forced : .released)] + self.promote(lock, now: now)
    }

    /// Leases that ran out lose their lock; waiters past their deadline are refused.
    public mutating func timePassed(now: Int64) -> [Action] {
        var actions: [Action] = []
        for (lock, entry) in self.entries {
            let expired = entry.holders.filter { $0.expiresAt <= now }
            let late = entry.waiters.filter { $0.deadline <= now }
            guard !expired.isEmpty || !late.isEmpty else { continue }
            var updated = entry
            updated.holders.removeAll { $0.expiresAt <= now }
            self.entries[lock] = updated
            actions += expired.map { .remove($0, .leaseExpired) }
            for waiter in late { actions += self.expireWaiter(waiter.id, lock: lock, now: now) }
            actions += self.promote(lock, now: now)
        }
        return actions
    }

    /// The owner's connection is gone: its holds end and its waiters are dropped.
    public mutating func ownerGone(_ owner: String, now: Int64) -> [Action] {
        var actions: [Action] = []
        for (lock, entry) in self.entries {
            let held = entry.holders.filter { $0.owner == owner }
            let waiting = entry.waiters.filter { $0.request.owner == owner }
            guard !held.isEmpty || !waiting.isEmpty else { continue }
            var updated = entry
            updated.holders.removeAll { $0.owner == owner }
            updated.waiters.removeAll { $0.request.owner == owner }
            self.entries[lock] = updated
            actions += held.map { .remove($0, .ownerGone) }
            actions += waiting.map { .refuse($0.id, ExceptionBody(code: .gone, text: "the requester disconnected")) }
            actions += self.promote(lock, now: now)
        }
        return actions
    }

    /// The reservation asked for by `.reserveTokens` is stored: waiting grants proceed.
    public mutating func tokensReserved(through: Int64, now: Int64) -> [Action] {
        self.reservedThrough = max(self.reservedThrough, through)
        self.reservationPending = false
        var actions: [Action] = []
        for lock in self.entries.keys.sorted() { actions += self.promote(lock, now: now) }
        return actions
    }

    /// A reservation could not be stored: waiters stay queued until the next attempt
    /// (the next event that would grant asks again).
    public mutating func reservationFailed() {
        self.reservationPending = false
    }

    /// A grant could not be stored: take it back as if released.
    public mutating func grantFailed(_ holder: LockHolderRecord, now: Int64) -> [Action] {
        guard var entry = self.entries[holder.lock] else { return [] }
        entry.holders.removeAll { $0.token == holder.token }
        self.entries[holder.lock] = entry
        return self.promote(holder.lock, now: now)
    }

    // MARK: - Reading

    public func status(_ lock: String, now: Int64) -> LockStatus {
        let entry = self.entries[lock]
        return LockStatus(
            lock: lock, limit: entry?.limit ?? 1,
            holders: (entry?.holders ?? []).map {
                LockHolderInfo(token: $0.token, holder: $0.holder, acquiredBy: $0.acquiredBy, leaseRemainingMilliseconds: max(0, $0.expiresAt - now))
            },
            waiters: entry?.waiters.count ?? 0)
    }

    /// Owner queues of holders and waiters, to check their connections.
    public var owners: Set<String> {
        var owners: Set<String> = []
        for entry in self.entries.values {
            for holder in entry.holders { if let owner = holder.owner { owners.insert(owner) } }
            for waiter in entry.waiters { if let owner = waiter.request.owner { owners.insert(owner) } }
        }
        return owners
    }

    public var holders: [LockHolderRecord] { self.entries.values.flatMap(\.holders) }

    /// The holder of `lock` with this token, if it holds it.
    public func holder(lock: String, token: Int64) -> LockHolderRecord? {
        self.entries[lock]?.holders.first { $0.token == token }
    }

    // MARK: - Granting

    /// Grants free slots to waiters in arrival order, as far as reserved tokens go.
    private mutating func promote(_ lock: String, now: Int64) -> [Action] {
        guard var entry = self.entries[lock] else { return [] }
        var actions: [Action] = []
        while entry.holders.count < entry.limit, let first = entry.waiters.first {
            guard self.nextToken <= self.reservedThrough else {
                if !self.reservationPending {
                    self.reservationPending = true
                    actions.append(.reserveTokens(through: self.reservedThrough + Self.reservationBlock))
                }
                break
            }
            entry.waiters.removeFirst()
            let holder = LockHolderRecord(
                lock: lock, token: self.nextToken, limit: entry.limit, owner: first.request.owner, holder: first.request.holder,
                ttlMilliseconds: first.request.ttlMilliseconds, expiresAt: now + first.request.ttlMilliseconds, keyHash: first.keyHash,
                acquiredBy: first.acquiredBy)
            self.nextToken += 1
            entry.holders.append(holder)
            actions.append(.grant(first.id, holder))
        }
        self.entries[lock] = entry.isIdle ? nil : entry
        return actions
    }

    private mutating func expireWaiter(_ id: WaiterID, lock: String, now: Int64) -> [Action] {
        guard var entry = self.entries[lock], let index = entry.waiters.firstIndex(where: { $0.id == id }) else { return [] }
        let waiter = entry.waiters.remove(at: index)
        self.entries[lock] = entry.isIdle ? nil : entry
        let holders = entry.holders.map { "\($0.holder) (token \($0.token), lease \(max(0, $0.expiresAt - now)) ms left)" }
        let waited = Double(now - waiter.enqueuedAt) / 1000
        let text = "lock '\(lock)' not acquired within \(waited) s: held by \(holders.isEmpty ? "nobody (waiters ahead)" : holders.joined(separator: ", "))"
        return [.refuse(id, ExceptionBody(code: .timeout, text: text))]
    }
}
