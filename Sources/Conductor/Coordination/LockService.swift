import Logging
import Mesh

/// Runs the `LockStateMachine` against a `CoordinationStore`: the one owner of the lock
/// table. Acquires wait here (a continuation per waiter) until granted or refused.
///
/// Order of effects: a token range is stored before tokens from it are issued, a grant
/// is stored before it is answered. A removal is stored late, in the transaction of the
/// next grant or renewal, or at the next tick (`timePassed`, every 20 ms) if none comes
/// first: a release then costs no write, and a grant one transaction. Each event passes
/// through a `SerialGate` while it decides and awaits its store calls, so no other event
/// can slip between a decision and its record, whether the store answers at once (SQLite)
/// or over the network (PostgreSQL). The table is loaded by the first event
/// (`CoordinatorService` calls `load()` before it serves).
///
/// Each acquire gets a fresh `HolderKey`; the machine and the store see only its hash, and
/// the grant hands the key to that waiter alone. A renewal or release without it is
/// refused (403) and logged with the requester's AMQP user; an administrator's forced
/// release is audited in the store before the holder is let go.
public actor LockService {
    private struct Waiting {
        /// Nil until the acquire has left the gate; an answer that comes before waits in `answer`.
        var continuation: CheckedContinuation<Result<LockGrant, ExceptionBody>, Never>?
        var key: HolderKey
        var answer: Result<LockGrant, ExceptionBody>?
    }

    private var machine = LockStateMachine()
    private var loaded = false
    private var gate = SerialGate()
    private let store: any CoordinationStore
    private let clock: CoordinationClock
    private let logger: Logger
    private var waiting: [LockStateMachine.WaiterID: Waiting] = [:]
    private var nextWaiter: LockStateMachine.WaiterID = 0
    private var closed = false
    /// Holders removed from the machine whose rows are still in the store.
    private var unstoredRemovals: [LockHolderKey] = []

    public init(store: any CoordinationStore, clock: CoordinationClock = .system, logger: Logger) {
        self.store = store
        self.clock = clock
        self.logger = logger
    }

    /// Reads the holders and the reserved token range from the store, once.
    public func load() async throws(CoordinationError) {
        await self.enter()
        defer { self.leave() }
        if let failure = await self.loadIfNeeded() { throw CoordinationError(.store, failure.text) }
    }

    /// Nil once loaded, else the exception that says why it could not be.
    private func loadIfNeeded() async -> ExceptionBody? {
        if self.loaded { return nil }
        do {
            let snapshot = try await self.store.loadCoordination()
            self.machine = LockStateMachine(holders: snapshot.holders, reservedThrough: snapshot.reservedThrough)
            self.loaded = true
            return nil
        } catch {
            return ExceptionBody(code: .internalError, text: "cannot load the lock table: \(error)")
        }
    }

    private func enter() async {
        if self.gate.tryEnter() { return }
        await withCheckedContinuation { self.gate.wait($0) }
    }

    private func leave() {
        self.gate.leave()?.resume()
    }

    private static let stopping = ExceptionBody(code: .gone, text: "the coordinator is stopping")

    /// Waits for the lock (up to `waitMilliseconds`); the grant with its holder key, or 408
    /// with who holds it. `user`: the request's broker-validated AMQP user.
    public func acquire(_ request: LockAcquireRequest, by user: String? = nil) async -> Result<LockGrant, ExceptionBody> {
        if self.closed { return .failure(Self.stopping) }
        let id = self.nextWaiter
        self.nextWaiter += 1
        let key = HolderKey.random()
        await self.enter()
        if self.closed {
            self.leave()
            return .failure(Self.stopping)
        }
        if let failure = await self.loadIfNeeded() {
            self.leave()
            return .failure(failure)
        }
        self.waiting[id] = Waiting(continuation: nil, key: key, answer: nil)
        await self.carry(self.machine.acquireRequested(request, waiter: id, keyHash: key.hash, acquiredBy: user, now: self.clock.now()))
        self.leave()
        return await withCheckedContinuation { continuation in
            guard let entry = self.waiting[id] else { return continuation.resume(returning: .failure(Self.stopping)) }
            if let answer = entry.answer {
                self.waiting[id] = nil
                continuation.resume(returning: answer)
            } else {
                self.waiting[id]?.continuation = continuation
            }
        }
    }

    /// Extends the lease; refused (403) unless the request carries the holder's key.
    public func renew(_ request: LockTokenRequest, by user: String? = nil) async -> Result<LockTokenResult, ExceptionBody> {
        if let ttl = request.ttlMilliseconds, !(100...86_400_000).contains(ttl) {
            return .failure(ExceptionBody(code: .invalidRequest, text: "ttl must be between 0.1 s and 24 h, not \(ttl) ms"))
        }
        await self.enter()
        defer { self.leave() }
        if let failure = await self.loadIfNeeded() { return .failure(failure) }
        let now = self.clock.now()
        let presented = request.holderKey.map(HolderKeyHash.init(presented:))
        let renewed: LockHolderRecord
        switch self.machine.renewRequested(lock: request.lock, token: request.token, presented: presented, ttlMilliseconds: request.ttlMilliseconds, now: now) {
        case .notHeld:
            return .success(LockTokenResult(lock: request.lock, token: request.token, leaseMilliseconds: 0, held: false))
        case .forbidden(let holder):
            return .failure(self.notTheHolder(holder, request: request, method: Coordinator.Method.lockRenew, user: user))
        case .renewed(let holder):
            renewed = holder
        }
        do {
            try await self.store.saveLockHolder(renewed, removing: self.unstoredRemovals)
            self.unstoredRemovals = []
        } catch {
            // The lease is extended in memory; a restart would fall back to the old lease.
            self.logger.warning("renewed lease not stored", metadata: ["lock": "\(request.lock)", "error": "\(error)"])
        }
        return .success(LockTokenResult(lock: request.lock, token: request.token, leaseMilliseconds: renewed.ttlMilliseconds, held: true))
    }

    /// Ends the hold; refused (403) unless the request carries the holder's key.
    public func release(_ request: LockTokenRequest, by user: String? = nil) async -> Result<LockTokenResult, ExceptionBody> {
        await self.enter()
        defer { self.leave() }
        if let failure = await self.loadIfNeeded() { return .failure(failure) }
        let proof = LockStateMachine.HolderProof.key(request.holderKey.map(HolderKeyHash.init(presented:)))
        let actions = self.machine.releaseRequested(lock: request.lock, token: request.token, proof: proof, now: self.clock.now())
        if case .forbid(let holder)? = actions.first {
            return .failure(self.notTheHolder(holder, request: request, method: Coordinator.Method.lockRelease, user: user))
        }
        let held = actions.contains { if case .remove = $0 { return true } else { return false } }
        await self.carry(actions)
        return .success(LockTokenResult(lock: request.lock, token: request.token, leaseMilliseconds: 0, held: held))
    }

    /// An administrator's release of someone else's hold, without its key. The caller has
    /// checked that `user` may; the audit record (and the row's deletion) is stored before
    /// the holder is let go, so a forced release that cannot be audited does not happen.
    public func forceRelease(_ request: LockTokenRequest, by user: String) async -> Result<LockTokenResult, ExceptionBody> {
        await self.enter()
        defer { self.leave() }
        if let failure = await self.loadIfNeeded() { return .failure(failure) }
        guard let holder = self.machine.holder(lock: request.lock, token: request.token) else {
            return .success(LockTokenResult(lock: request.lock, token: request.token, leaseMilliseconds: 0, held: false))
        }
        do {
            try await self.store.recordForcedRelease(holder, by: user, removing: self.unstoredRemovals)
            self.unstoredRemovals = []
        } catch {
            self.logger.error("forced release not audited; not done", metadata: ["lock": "\(holder.lock)", "token": "\(holder.token)", "error": "\(error)"])
            return .failure(ExceptionBody(code: .internalError, text: "the forced release could not be recorded in the audit trail, so it was not done: \(error)"))
        }
        self.logger.warning(
            "lock released by force",
            metadata: [
                "lock": "\(holder.lock)", "token": "\(holder.token)", "holder": "\(holder.holder)", "acquired_by": "\(holder.acquiredBy ?? "-")",
                "user_id": "\(user)",
            ])
        await self.carry(self.machine.releaseRequested(lock: request.lock, token: request.token, proof: .administrator, now: self.clock.now()))
        return .success(LockTokenResult(lock: request.lock, token: request.token, leaseMilliseconds: 0, held: true))
    }

    /// The 403 for a renewal or release that names a holder without its key, logged with
    /// who asked.
    private func notTheHolder(_ holder: LockHolderRecord, request: LockTokenRequest, method: String, user: String?) -> ExceptionBody {
        let why: String
        if holder.keyHash == nil {
            why = "it was granted before holder keys existed, so only its lease, its owner's connection or a forced release ends it"
        } else if request.holderKey == nil {
            why = "the request carried no holder_key (the key its grant handed to the holder)"
        } else {
            why = "the request's holder_key is not the one its grant handed to the holder"
        }
        self.logger.warning(
            "lock request refused: not the holder",
            metadata: [
                "method": "\(method)", "lock": "\(holder.lock)", "token": "\(holder.token)", "user_id": "\(user ?? "-")",
                "holder": "\(holder.holder)",
            ])
        // Callers name the method before the text (`lock_release: token 17 holds ...`).
        return ExceptionBody(code: .forbidden, text: "token \(holder.token) holds lock '\(holder.lock)' and only its holder may renew or release it; \(why)")
    }

    public func status(_ lock: String) -> LockStatus {
        self.machine.status(lock, now: self.clock.now())
    }

    public func timePassed() async {
        await self.enter()
        defer { self.leave() }
        guard self.loaded else { return }
        await self.carry(self.machine.timePassed(now: self.clock.now()))
        await self.storeRemovals()
    }

    public func ownerGone(_ owner: String) async {
        await self.enter()
        defer { self.leave() }
        guard self.loaded else { return }
        await self.carry(self.machine.ownerGone(owner, now: self.clock.now()))
    }

    public func owners() -> Set<String> { self.machine.owners }

    /// Every current holder (tests and status).
    public func holders() -> [LockHolderRecord] { self.machine.holders }

    public var nextToken: Int64 { self.machine.nextToken }

    /// Refuses every waiter, and every acquire from now on: the coordinator is stopping.
    public func close() async {
        await self.enter()
        defer { self.leave() }
        self.closed = true
        if self.loaded { await self.storeRemovals() }
        let waiting = self.waiting
        self.waiting = [:]
        for waiter in waiting.values {
            waiter.continuation?.resume(returning: .failure(Self.stopping))
        }
    }

    // MARK: - Effects

    private func carry(_ actions: [LockStateMachine.Action]) async {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .reserveTokens(let through):
                do {
                    try await self.store.reserveTokens(through: through)
                    queue.append(contentsOf: self.machine.tokensReserved(through: through, now: self.clock.now()))
                } catch {
                    self.logger.error("fencing tokens not reserved; grants wait", metadata: ["error": "\(error)"])
                    self.machine.reservationFailed()
                }
            case .grant(let waiter, let holder):
                do {
                    try await self.store.saveLockHolder(holder, removing: self.unstoredRemovals)
                    self.unstoredRemovals = []
                } catch {
                    self.logger.error("grant not stored; refused", metadata: ["lock": "\(holder.lock)", "error": "\(error)"])
                    self.answer(waiter, .failure(ExceptionBody(code: .internalError, text: "the grant could not be stored: \(error)")))
                    queue.append(contentsOf: self.machine.grantFailed(holder, now: self.clock.now()))
                    continue
                }
                // The key goes to this waiter only, and is kept nowhere else (after `close()`
                // nobody waits for it).
                guard let key = self.waiting[waiter]?.key else { continue }
                self.answer(
                    waiter,
                    .success(LockGrant(lock: holder.lock, token: holder.token, leaseMilliseconds: holder.ttlMilliseconds, limit: holder.limit, holderKey: key.hex)))
            case .refuse(let waiter, let exception):
                self.answer(waiter, .failure(exception))
            case .remove(_, .forced):
                // `forceRelease` stored its removal with the audit record.
                continue
            case .forbid:
                // Answered by `release`, which returns before carrying anything.
                continue
            case .remove(let holder, let reason):
                if reason != .released {
                    self.logger.info("lock lost", metadata: ["lock": "\(holder.lock)", "token": "\(holder.token)", "holder": "\(holder.holder)", "reason": "\(reason.rawValue)"])
                }
                self.unstoredRemovals.append(LockHolderKey(lock: holder.lock, token: holder.token))
            }
        }
    }

    /// Stores the removals no grant has carried yet.
    private func storeRemovals() async {
        guard !self.unstoredRemovals.isEmpty else { return }
        let removals = self.unstoredRemovals
        self.unstoredRemovals = []
        do {
            try await self.store.removeLockHolders(removals)
        } catch {
            // A stale row endangers nothing: on restart its token is below every new one and its lease runs out.
            self.logger.warning("released holders not removed from the store", metadata: ["count": "\(removals.count)", "error": "\(error)"])
        }
    }

    /// Resumes the waiter, or keeps the answer for it when its acquire is still in the gate.
    private func answer(_ waiter: LockStateMachine.WaiterID, _ result: Result<LockGrant, ExceptionBody>) {
        guard var entry = self.waiting[waiter] else { return }
        if let continuation = entry.continuation {
            self.waiting[waiter] = nil
            continuation.resume(returning: result)
        } else {
            entry.answer = result
            self.waiting[waiter] = entry
        }
    }
}
